"""Submitting a method: the protocol that puts a new method on the leaderboard, then its audit.

For each requested track the method and its random twin run at every target of the track that
applies to the method's kind, under every schedule at every budget (the track's full grid,
restricted to the new method), on at least ``MIN_SEEDS`` seeds -- tuned, if asked, with exactly
the trial budget and protocol the baselines on the leaderboard were tuned with. Then the whole
track is audited, the new entries against the existing ones, and the report is written to
``<results>/<track>/submissions/<method>/`` (``REPORT.md``, ``report.html``, ``audit.json``, plots,
and ``submission.json`` with the verdict table).

The method's plans are computed in an isolated child (``harness.methods.isolation``); a method that
crashes, hangs, runs out of memory or returns an invalid plan gets ``failed`` records naming the
cause, and no other record is touched. A record of this method written by a different version of
its file (another ``method_digest``) is stale and is run again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from harness.audit import audit_results
from harness.core.atomic import write_json_atomic
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import Selection, expand
from harness.methods import Method
from harness.methods.isolation import Isolation, Limits
from harness.methods.plugins import load_plugin, method_digest
from harness.protocols.submit.policy import (
    MIN_SEEDS,
    applicable_targets,
    equal_tuning,
    submission_seeds,
)
from harness.protocols.submit.verdict import (
    Submission,
    TrackSubmission,
    failures,
    method_findings,
    verdict_rows,
)
from harness.publish.leaderboard import build_leaderboard
from harness.publish.report import write_report
from harness.run.pipeline import Workspace
from harness.run.record import (
    RunRecord,
    read_record,
    record_path,
)
from harness.track.definition import DEFAULT_TRACK, Track, load_track
from harness.tune.search import tune_cells, tuning_cells
from harness.tune.tuned import TunedExecutor, load_tuning, tuned_params


def submit_track(
    method: Method, digest: str, track: Track, layout: ResultsLayout, seeds: int, tune_trials: int | None,
    device: str, threads: int, limits: Limits, on_record: Callable[[RunRecord], None] | None,
) -> TrackSubmission:
    """Run, audit and report one track."""
    targets, skipped_targets = applicable_targets(track, method.kind)
    run_seeds = submission_seeds(track, seeds)
    selection = Selection(methods=(method.name,), targets=targets, schedules=track.retraining.schedules,
                          budgets=track.retraining.budgets, seeds=run_seeds, twins=True)
    isolation = Isolation(limits)
    executor: Any = LocalExecutor(layout, device, threads, isolation=isolation)
    histories = {}
    if tune_trials is not None:
        options, prefix = equal_tuning(layout, track, method.name, tune_trials)
        cells, _ = tuning_cells(track, selection)
        tune_cells(Workspace(track, layout, device=device, isolation=isolation), cells, options)
        histories = load_tuning(layout, track, selection, prefix)
        executor = TunedExecutor(executor, histories)
    configs = expand(track, selection, cell_params=tuned_params(histories))
    outcome = run_grid(track, configs, layout, executor, on_record=on_record)
    records = [read_record(record_path(layout, c)) for c in configs]
    result = audit_results(layout, track.name)
    folder = layout.submission(track.name, method.name)
    write_report(result, build_leaderboard(result), folder)
    submission = TrackSubmission(
        track=track.name, targets=targets, skipped_targets=skipped_targets, seeds=run_seeds, tune_trials=tune_trials,
        planned=len(configs), ran=len(outcome.written), failures=failures(records), rows=verdict_rows(result, method.name),
        findings=method_findings(result, method.name), report=folder / "REPORT.md",
    )
    write_json_atomic(folder / "submission.json", {"method": method.name, "method_digest": digest,
                                                   **submission.as_dict()})
    return submission

def submit(
    file: str | Path,
    tracks: Sequence[str] = (),
    seeds: int = MIN_SEEDS,
    tune_trials: int | None = None,
    layout: ResultsLayout = ResultsLayout(Path("results")),
    device: str = "cpu",
    threads: int = 1,
    limits: Limits = Limits(),
    tracks_dir: str | Path | None = None,
    on_record: Callable[[RunRecord], None] | None = None,
) -> Submission:
    """Submit the method defined in ``file`` to each track (default: the default track)."""
    methods = load_plugin(file)
    if len(methods) != 1:
        raise BenchError(f"{file} defines {len(methods)} methods ({', '.join(m.name for m in methods)}); "
                         "submit one method per file")
    method = methods[0]
    if tune_trials is not None and tune_trials < 1:
        raise BenchError(f"--tune-trials must be at least 1, got {tune_trials}")
    loaded = [load_track(name, tracks_dir) for name in (tracks or (DEFAULT_TRACK,))]
    for track in loaded:
        submission_seeds(track, seeds)
    digest = method_digest(method)
    done = tuple(submit_track(method, digest, track, layout, seeds, tune_trials, device, threads, limits, on_record)
                 for track in loaded)
    return Submission(method.name, method.kind, method.select.path, digest, done)
