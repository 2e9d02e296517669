"""A grid of runs: selection and expansion into configurations, the driver that skips finished runs and writes
records, and the executors (local, process pool, Ray, fused groups)."""
