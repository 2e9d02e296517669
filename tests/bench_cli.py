"""Benchmark of the CLI's start-up (run with ``pytest tests/bench_cli.py --benchmark-enable``).

``bench --help`` is what a user waits for first; it loads typer, rich and the command table only,
never torch or the statistics stack. Nothing here asserts a time: shared machines vary too much.
"""

import subprocess
import sys

HELP = [sys.executable, "-c", "from harness.cli import app; app(prog_name='bench')", "--help"]


def test_bench_help_as_a_fresh_process(benchmark):
    result = benchmark(subprocess.run, HELP, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage: bench" in result.stdout and "leaderboard" in result.stdout
