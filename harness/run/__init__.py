"""One run, start to finish: its configuration (whose hash is its identity), its sealed record, the workspace of
shared state, the pipeline from dense checkpoint to record, and cells (the unit every comparison is made in)."""
