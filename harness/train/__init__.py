"""Training: the loop every retraining and dense run uses, per-epoch checkpoints, the fast engines (graph,
compile) and the fused engine that trains several runs of one architecture as one network."""
