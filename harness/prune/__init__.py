"""From a plan to a pruned model: target allocation, plan validation, random twins, surgery (physical channel
removal or masks), counting (fvcore params and MACs), latency, and saving pruned models."""
