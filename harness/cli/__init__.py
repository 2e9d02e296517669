"""The ``bench`` command: a thin Typer + rich layer over the library.

Each module here holds the commands of one concept as plain functions; this file is the
table of contents that registers them. Every command is a call into ``harness`` that tests
can make directly; a user-fixable problem is one line on stderr and a non-zero exit.
"""

import typer

from harness.cli import audit, catalog, methods, perf, run, submit, tune

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="prune-bench: fair, audited benchmarks of neural-network pruning methods.")
app.command("run")(run.run)
app.command("tune")(tune.tune)
app.command("tracks")(catalog.tracks)
app.command("methods")(methods.methods)
app.command("flops")(methods.flops)
app.command("latency")(methods.latency)
app.command("audit")(audit.audit)
app.command("leaderboard")(audit.leaderboard)
app.command("import-reported")(audit.import_reported)
app.command("perf")(perf.perf)
app.command("perf-equivalence")(perf.perf_equivalence)
app.callback()(submit.load_method_plugins)
app.command("submit")(submit.submit)
app.command("verify")(submit.verify)

schedules_app = typer.Typer(help="Retraining schedules.")
schedules_app.callback(invoke_without_command=True)(catalog.schedules)
schedules_app.command("show")(catalog.schedules_show)
app.add_typer(schedules_app, name="schedules")
