"""Submitting a method: the protocol that puts a new method on the leaderboard, then its audit.

For each requested track the method and its random twin run the cells of the track's leaderboard
protocol (``bench/leaderboards/<track>.toml``: targets, schedules, budgets, seeds, twins; without one,
the track's full grid) and no others -- the targets that apply to the method's kind, on at least
``MIN_SEEDS`` seeds -- tuned, if asked, with exactly the trial budget and protocol the baselines on the
leaderboard were tuned with. Records that do not count (``harness.protocols.clean``) are listed, never
held against the submission: only findings on the protocol's cells can fail it. Then the whole
track is audited, the new entries against the existing ones, and the report is written to
``<results>/<track>/submissions/<method>/`` (``REPORT.md``, ``report.html``, ``audit.json``, plots,
and ``submission.json`` with the verdict table).

The method's plans are computed in an isolated child (``harness.methods.isolation``); a method that
crashes, hangs, runs out of memory or returns an invalid plan gets ``failed`` records naming the
cause, and no other record is touched. A record of this method written by a different version of
its file (another ``method_digest``) is stale and is run again."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from harness.audit import audit_results
from harness.audit.findings import Finding
from harness.core.atomic import write_json_atomic, write_text_atomic
from harness.core.choices import DEFAULT_TRACK
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.driver import pending, run_grid
from harness.grid.local import LocalExecutor
from harness.grid.pool import PoolExecutor
from harness.grid.selection import Selection, expand
from harness.methods import Method
from harness.methods.exchange import Limits
from harness.methods.isolation import Isolation
from harness.methods.plugins import load_plugin, method_digest
from harness.protocols.clean import CLEAN_COMMAND, StaleRecord, stale_records
from harness.protocols.submit.policy import (
    MIN_SEEDS,
    applicable_targets,
    equal_tuning,
    submission_seeds,
)
from harness.protocols.submit.verdict import (
    Submission,
    TrackSubmission,
    changed_verdicts,
    failures,
    method_findings,
    other_verdicts,
    verdict_html,
    verdict_markdown,
    verdict_rows,
)
from harness.publish.report import write_report
from harness.run.cells import cell_key
from harness.run.pipeline import Workspace
from harness.run.record import (
    RunConfig,
    RunRecord,
    load_records,
    read_record,
    record_path,
)
from harness.track.definition import Track, load_track
from harness.track.leaderboard import LeaderboardProtocol, load_protocol
from harness.train.engines import EngineSettings
from harness.tune.search import tune_cells, tuning_cells
from harness.tune.tuned import TunedExecutor, load_tuning, tuned_params


@dataclass(frozen=True)
class Execution:
    """How a submission's runs are computed: on ``device`` with ``threads`` intra-op threads each, ``workers``
    at a time (one process each beyond one), with ``engine``'s training steps."""

    device: str = "cpu"
    threads: int = 1
    workers: int = 1
    engine: str = "eager"

    def executor(self, layout: ResultsLayout, limits: Limits, isolation: Isolation) -> Any:
        steps = EngineSettings(self.engine)
        if self.workers < 1:
            raise BenchError(f"--workers must be at least 1, got {self.workers}")
        if self.workers == 1:
            return LocalExecutor(layout, self.device, self.threads, engine=steps, isolation=isolation)
        torch.set_num_threads(self.threads)  # the dense baselines train here first, beside nothing else of ours
        return PoolExecutor(layout, self.device, self.workers, self.threads, engine=steps, limits=limits)


@dataclass(frozen=True)
class SubmissionPlan:
    """What a submission to one track would do: its protocol, targets and seeds, the runs it has to make
    and those already done, an estimate of the wall time, and the records that do not count."""

    track: Track
    protocol: LeaderboardProtocol
    targets: tuple[str, ...]
    skipped_targets: dict[str, str]
    seeds: tuple[int, ...]
    configs: tuple[RunConfig, ...]
    to_run: tuple[RunConfig, ...]
    estimated_seconds: float | None
    stale: tuple[StaleRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track.name, "protocol": self.protocol.as_dict(), "targets": list(self.targets),
                "skipped_targets": self.skipped_targets, "seeds": list(self.seeds), "planned": len(self.configs),
                "to_run": len(self.to_run), "done": len(self.configs) - len(self.to_run),
                "estimated_seconds": self.estimated_seconds,
                "stale": [{"path": str(s.path), "reason": s.reason} for s in self.stale],
                "clean": f"{CLEAN_COMMAND} --results {self.stale[0].path.parents[1]} --track {self.track.name}"
                         if self.stale else None}


def estimate_seconds(layout: ResultsLayout, track: Track, configs: Sequence[RunConfig], workers: int) -> float | None:
    """Wall time of ``configs`` from the recorded ``wall_seconds`` of the track's runs of the same schedule and
    budget (their mean), spread over ``workers``; None when no record of the track says."""
    times: dict[tuple[str, int], list[float]] = {}
    for record in load_records(layout, track.name)[0]:
        if record.status == "ok" and record.wall_seconds is not None:
            times.setdefault((record.schedule, record.budget_epochs), []).append(record.wall_seconds)
    if not times:
        return None
    overall = statistics.mean(t for values in times.values() for t in values)
    total = sum(statistics.mean(times[key]) if (key := (c.schedule, c.budget_epochs)) in times else overall
                for c in configs)
    return total / max(1, workers)


def plan_track(method: Method, track: Track, layout: ResultsLayout, seeds: int, workers: int = 1,
               tracks_dir: str | Path | None = None, cell_params: Any = None, engine: str = "eager") -> SubmissionPlan:
    """The cells the leaderboard's protocol counts for ``method``, what of them is done, and what would run."""
    protocol = load_protocol(track, tracks_dir)
    usable, skipped_targets = applicable_targets(track, method.kind)
    targets = tuple(t for t in protocol.targets if t in usable)
    skipped_targets = {t: r for t, r in skipped_targets.items() if t in protocol.targets}
    if not targets:
        raise BenchError(f"no target of the {track.name} leaderboard applies to a {method.kind} method "
                         f"({'; '.join(skipped_targets.values())})")
    run_seeds = submission_seeds(track, seeds, protocol.seeds)
    selection = Selection(methods=(method.name,), targets=targets, schedules=protocol.schedules,
                          budgets=protocol.budgets, seeds=run_seeds, twins=protocol.twins)
    configs = tuple(expand(track, selection, cell_params=cell_params, engine=engine))
    todo = tuple(pending(configs, layout))
    stale = tuple(stale_records(layout, protocol)) if layout.track(track.name).is_dir() else ()
    return SubmissionPlan(track, protocol, targets, skipped_targets, run_seeds, configs, todo,
                          estimate_seconds(layout, track, todo, workers), stale)


def submit_track(
    method: Method, digest: str, track: Track, layout: ResultsLayout, seeds: int, tune_trials: int | None,
    execution: Execution, limits: Limits, on_record: Callable[[RunRecord], None] | None,
    tracks_dir: str | Path | None = None, on_start: Callable[[SubmissionPlan], None] | None = None,
) -> TrackSubmission:
    """Run, audit and report one track."""
    plan = plan_track(method, track, layout, seeds, execution.workers, tracks_dir, engine=execution.engine)
    selection = Selection(methods=(method.name,), targets=plan.targets, schedules=plan.protocol.schedules,
                          budgets=plan.protocol.budgets, seeds=plan.seeds, twins=plan.protocol.twins)
    isolation = Isolation(limits)
    executor: Any = execution.executor(layout, limits, isolation)
    histories = {}
    if tune_trials is not None:
        options, prefix = equal_tuning(layout, track, method.name, tune_trials)
        cells, _ = tuning_cells(track, selection)
        tune_cells(Workspace(track, layout, device=execution.device, isolation=isolation), cells, options)
        histories = load_tuning(layout, track, selection, prefix)
        executor = TunedExecutor(executor, histories)
        plan = plan_track(method, track, layout, seeds, execution.workers, tracks_dir,
                          cell_params=tuned_params(histories), engine=execution.engine)
    configs = list(plan.configs)
    before = other_verdicts(audit_results(layout, track.name), method.name) if layout.records(track.name) else {}
    if on_start is not None:
        on_start(plan)
    outcome = run_grid(track, configs, layout, executor, on_record=on_record)
    records = [read_record(record_path(layout, c)) for c in configs]
    result = audit_results(layout, track.name)
    after = other_verdicts(result, method.name)
    folder = layout.submission(track.name, method.name)
    write_report(result, folder)
    counted = {(t, s, 0 if s == "none" else b) for t in plan.targets for s in plan.protocol.schedules
               for b in plan.protocol.budgets}
    findings = method_findings(result, method.name, counted)
    if plan.stale:
        findings = tuple(_naming_clean(f, plan, layout) for f in findings)
    submission = TrackSubmission(
        track=track.name, targets=plan.targets, skipped_targets=plan.skipped_targets, seeds=plan.seeds,
        tune_trials=tune_trials, planned=len(configs), ran=len(outcome.written), failures=failures(records),
        rows=verdict_rows(result, method.name, counted, track.recipe), findings=findings,
        report=folder / "REPORT.md", stale=plan.stale, protocol=plan.protocol.as_dict(),
        others_compared=len(after), others_changed=changed_verdicts(before, after),
    )
    write_json_atomic(folder / "submission.json", {"method": method.name, "method_digest": digest,
                                                   **submission.as_dict()})
    _open_with_verdicts(folder, method.name, submission)
    return submission


def _open_with_verdicts(folder: Path, method: str, submission: TrackSubmission) -> None:
    """REPORT.md and report.html open with the submission's verdict table, then the track's audit."""
    report = folder / "REPORT.md"
    write_text_atomic(report, verdict_markdown(method, submission) + report.read_text())
    page = folder / "report.html"
    if page.exists():
        text = page.read_text()
        at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
        write_text_atomic(page, text[:at] + verdict_html(method, submission) + text[at:])


def _naming_clean(finding: Finding, plan: SubmissionPlan, layout: ResultsLayout) -> Finding:
    """A finding about a cell that holds a stale record says how to set such records aside."""
    stale_cells = set()
    for item in plan.stale:
        try:
            stale_cells.add(cell_key(read_record(item.path)).label)
        except ValueError:
            continue
    if stale_cells.isdisjoint(finding.cells):
        return finding
    return replace(finding, message=f"{finding.message} (the cell holds stale records: "
                                    f"{CLEAN_COMMAND} --results {layout.root} --track {plan.track.name} "
                                    "sets them aside)")


def _load(file: str | Path, tracks: Sequence[str], seeds: int, tune_trials: int | None,
          tracks_dir: str | Path | None) -> tuple[Method, list[Track]]:
    methods = load_plugin(file)
    if len(methods) != 1:
        raise BenchError(f"{file} defines {len(methods)} methods ({', '.join(m.name for m in methods)}); "
                         "submit one method per file")
    if tune_trials is not None and tune_trials < 1:
        raise BenchError(f"--tune-trials must be at least 1, got {tune_trials}")
    loaded = [load_track(name, tracks_dir) for name in (tracks or (DEFAULT_TRACK,))]
    for track in loaded:
        submission_seeds(track, seeds)
    return methods[0], loaded


def plan(
    file: str | Path,
    tracks: Sequence[str] = (),
    seeds: int = MIN_SEEDS,
    layout: ResultsLayout = ResultsLayout(Path("results")),
    workers: int = 1,
    tracks_dir: str | Path | None = None,
    engine: str = "eager",
) -> tuple[Method, tuple[SubmissionPlan, ...]]:
    """What ``submit`` would run for the method in ``file`` (``bench submit --dry-run``); nothing runs."""
    method, loaded = _load(file, tracks, seeds, None, tracks_dir)
    return method, tuple(plan_track(method, track, layout, seeds, workers, tracks_dir, engine=engine)
                         for track in loaded)


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
    workers: int = 1,
    engine: str = "eager",
    on_start: Callable[[SubmissionPlan], None] | None = None,
) -> Submission:
    """Submit the method defined in ``file`` to each track (default: the default track)."""
    method, loaded = _load(file, tracks, seeds, tune_trials, tracks_dir)
    execution = Execution(device, threads, workers, engine)
    digest = method_digest(method)
    done = tuple(submit_track(method, digest, track, layout, seeds, tune_trials, execution, limits, on_record,
                              tracks_dir, on_start) for track in loaded)
    return Submission(method.name, method.kind, method.select.path, digest, done)
