"""``python -m harness`` is the ``bench`` command."""

from harness.cli import app

app(prog_name="bench")
