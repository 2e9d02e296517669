"""What is benchmarked: a track (data set, model, original training recipe, targets, budgets, seeds), read from
TOML, and the retraining schedules derived from its recipe."""
