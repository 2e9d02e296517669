"""The ``bench`` command: a thin Typer + rich layer over the library.

Each module here holds the commands of one concept as plain functions; this file is the
table of contents that registers them. Every command is a call into ``harness`` that tests
can make directly; a user-fixable problem is one line on stderr and a non-zero exit.
Command modules import the library inside their functions, so ``bench --help`` answers at once.
"""

import typer

from harness.cli import audit, catalog, methods, perf, results, run, submit, tune
from harness.cli.common import BenchCommand, BenchGroup, with_option_groups

app = typer.Typer(cls=BenchGroup, add_completion=False, no_args_is_help=True,
                  help="prune-bench: fair, audited benchmarks of neural-network pruning methods.")


def command(name: str, function, group: typer.Typer = app) -> None:
    """Register ``function`` as ``bench NAME``, its option groups as options; the command list shows the first
    sentence of its docstring."""
    summary = " ".join((function.__doc__ or "").split()).split(". ")[0].rstrip(".") + "."
    group.command(name, cls=BenchCommand, short_help=summary)(with_option_groups(function))


command("run", run.run)
command("tune", tune.tune)
command("tracks", catalog.tracks)
command("methods", methods.methods)
command("flops", methods.flops)
command("latency", methods.latency)
command("audit", audit.audit)
command("leaderboard", audit.leaderboard)
command("import-reported", audit.import_reported)
command("perf", perf.perf)
command("perf-equivalence", perf.perf_equivalence)
app.callback()(submit.load_method_plugins)
command("submit", submit.submit)
command("verify", submit.verify)

schedules_app = typer.Typer(cls=BenchGroup, help="Retraining schedules.")
schedules_app.callback(invoke_without_command=True)(catalog.schedules)
schedules_app.command("show", cls=BenchCommand)(catalog.schedules_show)
app.add_typer(schedules_app, name="schedules")

results_app = typer.Typer(cls=BenchGroup, no_args_is_help=True, help="Results folders: setting stale records aside.")
command("clean", results.clean, results_app)
app.add_typer(results_app, name="results")
