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
its file (another ``method_digest``) is stale and is run again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.audit import AuditConfig, audit_results
from harness.audit.engine import AuditResult
from harness.audit.findings import Finding, rule_ids, touching
from harness.core.atomic import write_json_atomic
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import new_model
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import Selection, expand
from harness.methods import Method
from harness.methods.isolation import Isolation, Limits
from harness.methods.plugins import load_plugin, method_digest
from harness.prune.allocation import resolve_target
from harness.publish.leaderboard import MIRRORED, build_leaderboard
from harness.publish.report import write_report
from harness.run.pipeline import Workspace
from harness.run.record import (
    RunRecord,
    read_record,
    record_path,
)
from harness.track.definition import DEFAULT_TRACK, Track, load_track
from harness.tune.history import (
    StudyHistory,
    check_reusable,
    load_histories,
    study_name,
    unreadable,
)
from harness.tune.search import TuneOptions, tune_cells, tuning_cells
from harness.tune.tuned import TunedExecutor, load_tuning, tuned_params

MIN_SEEDS = AuditConfig().recommended_seeds
"""A submission runs enough seeds that the audit does not warn of too few (R5)."""


@dataclass(frozen=True)
class VerdictRow:
    """The new method in one cell: its accuracy, its random twin, and the existing entries it beats,
    ties with or loses to (Benjamini-Hochberg corrected, as in the audit's tables)."""

    target: str
    schedule: str
    budget_epochs: int
    n: int
    failed: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    twin_difference: float | None
    twin_verdict: str | None
    better_than: tuple[str, ...]
    tied_with: tuple[str, ...]
    worse_than: tuple[str, ...]
    fails: tuple[str, ...]


@dataclass(frozen=True)
class TrackSubmission:
    track: str
    targets: tuple[str, ...]
    skipped_targets: dict[str, str]
    seeds: tuple[int, ...]
    tune_trials: int | None
    planned: int
    ran: int
    failures: tuple[str, ...]
    rows: tuple[VerdictRow, ...]
    findings: tuple[Finding, ...]
    report: Path

    @property
    def passed(self) -> bool:
        return not self.failures and not any(f.severity == "fail" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "passed": self.passed, "targets": list(self.targets),
                "skipped_targets": self.skipped_targets, "seeds": list(self.seeds), "tune_trials": self.tune_trials,
                "planned": self.planned, "ran": self.ran, "failures": list(self.failures),
                "rows": [asdict(row) for row in self.rows], "findings": [f.as_dict() for f in self.findings],
                "report": str(self.report)}


@dataclass(frozen=True)
class Submission:
    method: str
    kind: str
    source: Path
    method_digest: str
    tracks: tuple[TrackSubmission, ...]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tracks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "source": str(self.source),
                "method_digest": self.method_digest, "passed": self.passed,
                "tracks": [t.as_dict() for t in self.tracks]}


def submission_seeds(track: Track, count: int) -> tuple[int, ...]:
    """The track's run seeds first (so runs pair with the baselines'), then the next integers."""
    if count < MIN_SEEDS:
        raise BenchError(f"--seeds {count} is too few: a submission runs at least {MIN_SEEDS} seeds "
                         "(the audit fails cells under 3 and warns under 5)")
    seeds = list(track.seeds.runs[:count])
    while len(seeds) < count:
        seeds.append(max(seeds) + 1)
    return tuple(seeds)


def applicable_targets(track: Track, kind: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The track's targets a method of ``kind`` can be held to, and why the others cannot."""
    model = new_model(track, track.seeds.dense[0])
    usable, skipped = [], {}
    for target in track.pruning.targets:
        try:
            resolve_target(target, kind, track.model.name, model, track.model.input_shape)
            usable.append(target.name)
        except BenchError as exc:
            skipped[target.name] = str(exc)
    if not usable:
        raise BenchError(f"track '{track.name}' has no target a {kind} method can be held to "
                         f"({'; '.join(skipped.values())})")
    return tuple(usable), skipped


def baseline_histories(layout: ResultsLayout, track: Track, method: str) -> list[StudyHistory]:
    """The tuning histories of the entries already on the leaderboard (every method but ``method``);
    any history of the track that cannot be reused is refused."""
    histories, problems = load_histories(layout, track.name)
    if problems:
        raise unreadable(problems[0].path, problems[0].reason)
    reusable = [check_reusable(history, path) for path, history in histories.items()]
    return [history for history in reusable if history.method != method]


def _prefix(history: StudyHistory) -> str | None:
    plain = study_name(history.cell)
    return history.study.removesuffix("." + plain) if history.study != plain else None


def equal_tuning(layout: ResultsLayout, track: Track, method: str, trials: int) -> tuple[TuneOptions, str | None]:
    """Options that tune the new method exactly as the baselines were: trials, seeds, sampler, seed, pruner."""
    histories = baseline_histories(layout, track, method)
    if not histories:
        raise BenchError(f"--tune-trials: no entry on track '{track.name}' was tuned (no histories under "
                         f"{layout.tuning(track.name)}); submit untuned so every entry keeps its "
                         "schedule defaults")
    budgets = sorted({h.trials_requested for h in histories})
    if len(budgets) > 1:
        raise BenchError(f"the baselines on track '{track.name}' were tuned with unequal budgets {budgets}; "
                         "retune them equally before submitting a tuned method")
    if trials != budgets[0]:
        raise BenchError(f"--tune-trials {trials} differs from the {budgets[0]} trials every baseline on track "
                         f"'{track.name}' was tuned with; pass --tune-trials {budgets[0]}")
    protocols = Counter((tuple(h.seeds), h.sampler, h.seed, h.pruner, _prefix(h)) for h in histories)
    if len(protocols) > 1:
        raise BenchError(f"the baselines on track '{track.name}' were tuned under different protocols (seeds, sampler, "
                         "seed, pruner or study prefix); retune them alike before submitting a tuned method")
    (seeds, sampler, seed, pruner, prefix), = protocols
    return TuneOptions(trials=trials, seeds=seeds, sampler=sampler, seed=seed, pruner=pruner,
                       study_prefix=prefix), prefix


def _failures(records: Sequence[RunRecord]) -> tuple[str, ...]:
    lines = []
    for record in records:
        if record.status != "ok":
            reason = (record.error or "non-finite training loss").strip().splitlines()[-1]
            lines.append(f"{record.status}: {record.config().label}: {reason}")
    return tuple(lines)


def verdict_rows(result: AuditResult, method: str) -> tuple[VerdictRow, ...]:
    """One row per cell of the new method, in the audit's display order."""
    cells = {c.label: c for c in result.cells}
    rows = []
    for cell in result.cells:
        key = cell.key
        if key.method != method or key.twin or not cell.reproduced:
            continue
        twin_label = next((c.label for c in result.cells if c.reproduced and c.key == key.as_twin()), None)
        twin = next((c for c in result.comparisons if c.kind == "twin" and c.a == cell.label), None)
        against: dict[str, list[str]] = {"better": [], "tie": [], "equivalent": [], "worse": []}
        for c in result.comparisons:
            if c.kind == "methods" and cell.label in (c.a, c.b):
                other = cells[c.b if c.a == cell.label else c.a].key.method
                against[c.verdict if c.a == cell.label else MIRRORED[c.verdict]].append(other)
        fails = rule_ids(touching(result.findings, {cell.label, twin_label}))
        summary = cell.summary
        rows.append(VerdictRow(
            target=key.target, schedule=key.schedule, budget_epochs=key.budget_epochs, n=cell.n,
            failed=cell.n_failed, mean=summary.mean if summary else None,
            ci_low=summary.ci_low if summary else None, ci_high=summary.ci_high if summary else None,
            twin_difference=twin.difference if twin else None, twin_verdict=twin.verdict if twin else None,
            better_than=tuple(sorted(against["better"])),
            tied_with=tuple(sorted(against["tie"] + against["equivalent"])),
            worse_than=tuple(sorted(against["worse"])), fails=tuple(fails),
        ))
    return tuple(rows)


def method_findings(result: AuditResult, method: str) -> tuple[Finding, ...]:
    """The audit's fail and warn findings that involve the new method or its twin."""
    labels = {c.label for c in result.cells if c.key.method == method}
    return tuple(touching(result.findings, labels, ("fail", "warn")))


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
        planned=len(configs), ran=len(outcome.written), failures=_failures(records), rows=verdict_rows(result, method.name),
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
