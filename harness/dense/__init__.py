"""Dense baselines: trained once per track and dense seed, cached by the hash of their configuration."""
