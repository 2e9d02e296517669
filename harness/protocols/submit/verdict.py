"""A submission's outcome as people read it: per cell, the new method against its random twin and the
baselines, the audit's findings that involve it, and the runs that failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from harness import stats
from harness.audit import AuditConfig
from harness.audit.comparisons import Comparison
from harness.audit.engine import AuditResult
from harness.audit.findings import Finding, rule_ids, touching
from harness.core.errors import BenchError
from harness.protocols.clean import StaleRecord
from harness.publish.leaderboard import MIRRORED
from harness.run.record import (
    RunRecord,
)
from harness.track.recipe import Recipe
from harness.track.schedules import same_rates


@dataclass(frozen=True)
class Versus:
    """The new method against one other entry of its cell (its random twin, or a reference method), as the
    audit compared them: the difference (the new method minus the other, accuracy as a fraction), its
    interval, the verdict, the minimum detectable difference at the seeds at hand, and how many seeds
    would detect the observed difference (None when it is zero or needs over 1,000)."""

    against: str
    difference: float
    ci_low: float
    ci_high: float
    verdict: str
    minimum_detectable_difference: float
    seeds_to_detect: int | None


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
    versus: tuple[Versus, ...] = ()
    """Against the twin first, then each reference method by name."""
    same_as: tuple[str, ...] = ()
    """Schedules that train identically at this budget (the same per-step rates), shown in this row."""

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
    stale: tuple[StaleRecord, ...] = ()
    """Records of the track that do not count (listed, never held against the submission)."""
    protocol: dict[str, Any] | None = None
    """The leaderboard protocol the submission ran (``LeaderboardProtocol.as_dict``)."""
    others_compared: int = 0
    """Comparisons of other methods in the track, audited before and after the submission's runs."""
    others_changed: tuple[str, ...] = ()
    """Those whose verdict or p-values the submission changed (none, by the audit's fixed families)."""

    @property
    def passed(self) -> bool:
        return not self.failures and not any(f.severity == "fail" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "passed": self.passed, "targets": list(self.targets),
                "skipped_targets": self.skipped_targets, "seeds": list(self.seeds), "tune_trials": self.tune_trials,
                "planned": self.planned, "ran": self.ran, "failures": list(self.failures),
                "rows": [asdict(row) for row in self.rows], "findings": [f.as_dict() for f in self.findings],
                "report": str(self.report), "protocol": self.protocol,
                "other_verdicts": {"compared": self.others_compared, "changed": list(self.others_changed)},
                "stale": [{"path": str(item.path), "reason": item.reason} for item in self.stale]}

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

def failures(records: Sequence[RunRecord]) -> tuple[str, ...]:
    lines = []
    for record in records:
        if record.status != "ok":
            reason = (record.error or "non-finite training loss").strip().splitlines()[-1]
            lines.append(f"{record.status}: {record.config().label}: {reason}")
    return tuple(lines)

def _versus(comparison: Comparison, mine: bool, against: str, config: AuditConfig) -> Versus:
    """``comparison`` seen from the new method's side (``mine``: it is the comparison's ``a``)."""
    sign = 1 if mine else -1
    low, high = (comparison.ci_low, comparison.ci_high) if mine else (-comparison.ci_high, -comparison.ci_low)
    seeds = None
    if comparison.difference != 0:
        try:
            seeds = stats.seeds_needed(comparison.difference, comparison.noise_std, config.alpha, config.power,
                                       max_n=1000, paired=comparison.paired)
        except BenchError:
            seeds = None
    return Versus(against, sign * comparison.difference, low, high,
                  comparison.verdict if mine else MIRRORED[comparison.verdict],
                  comparison.minimum_detectable_difference, seeds)


def verdict_rows(result: AuditResult, method: str, counted: set[tuple[str, str, int]] | None = None,
                 recipe: Recipe | None = None) -> tuple[VerdictRow, ...]:
    """One row per cell of the new method, in the audit's display order: only the (target, schedule, budget)
    cells that ``counted`` names (default: all). With the track's ``recipe``, a schedule that trains exactly
    as an earlier one at the same target and budget is folded into that row (``same_as``)."""
    cells = {c.label: c for c in result.cells}
    config = AuditConfig()
    rows: list[VerdictRow] = []
    params: list[dict] = []  # each row's schedule hyperparameters (tuned cells have their own)
    for cell in result.cells:
        key = cell.key
        if key.method != method or key.twin or not cell.reproduced:
            continue
        if counted is not None and (key.target, key.schedule, key.budget_epochs) not in counted:
            continue
        mine = dict(cell.records[0].schedule_params) if cell.records else {}
        if recipe is not None and cell.records and _fold(rows, params, key, mine, recipe,
                                                         cell.records[0].steps_per_epoch):
            continue
        twin_label = next((c.label for c in result.cells if c.reproduced and c.key == key.as_twin()), None)
        twin = next((c for c in result.comparisons if c.kind == "twin" and c.a == cell.label), None)
        against: dict[str, list[str]] = {"better": [], "tie": [], "equivalent": [], "worse": []}
        versus = [_versus(twin, True, "random twin", config)] if twin else []
        others = []
        for c in result.comparisons:
            if c.kind == "methods" and cell.label in (c.a, c.b):
                other = cells[c.b if c.a == cell.label else c.a].key.method
                against[c.verdict if c.a == cell.label else MIRRORED[c.verdict]].append(other)
                others.append(_versus(c, c.a == cell.label, other, config))
        versus += sorted(others, key=lambda v: v.against)
        fails = rule_ids(touching(result.findings, {cell.label, twin_label}))
        summary = cell.summary
        rows.append(VerdictRow(
            target=key.target, schedule=key.schedule, budget_epochs=key.budget_epochs, n=cell.n,
            failed=cell.n_failed, mean=summary.mean if summary else None,
            ci_low=summary.ci_low if summary else None, ci_high=summary.ci_high if summary else None,
            twin_difference=twin.difference if twin else None, twin_verdict=twin.verdict if twin else None,
            better_than=tuple(sorted(against["better"])),
            tied_with=tuple(sorted(against["tie"] + against["equivalent"])),
            worse_than=tuple(sorted(against["worse"])), fails=tuple(fails), versus=tuple(versus),
        ))
        params.append(mine)
    return tuple(rows)


def _fold(rows: list[VerdictRow], params: list[dict], key, mine: dict, recipe: Recipe,
          steps_per_epoch: int | None) -> bool:
    """Name ``key``'s schedule in an earlier row that trains identically (same target and budget, each with its
    own hyperparameters), if any."""
    if not steps_per_epoch or key.schedule == "none":
        return False
    for index, row in enumerate(rows):
        if (row.target, row.budget_epochs) == (key.target, key.budget_epochs) and row.schedule != "none" \
                and same_rates(recipe, row.schedule, key.schedule, key.budget_epochs, steps_per_epoch,
                               (params[index] or None, mine or None)):
            rows[index] = replace(row, same_as=row.same_as + (key.schedule,))
            return True
    return False


def method_findings(result: AuditResult, method: str,
                    counted: set[tuple[str, str, int]] | None = None) -> tuple[Finding, ...]:
    """The audit's fail and warn findings that involve the new method or its twin, in the cells that
    ``counted`` names (default: all): a finding only about a cell outside the protocol never fails it."""
    labels = {c.label for c in result.cells if c.key.method == method
              and (counted is None or (c.key.target, c.key.schedule, c.key.budget_epochs) in counted)}
    return tuple(touching(result.findings, labels, ("fail", "warn")))


OtherVerdicts = dict[tuple[str, str], tuple[str, str, str]]


def other_verdicts(result: AuditResult, method: str) -> OtherVerdicts:
    """Every comparison involving neither the method nor its twin: its verdict and p-values (raw and
    corrected, as ``float.hex`` so that NaN equals NaN), keyed by the two cells' labels."""
    mine = {c.label for c in result.cells if c.key.method == method}
    return {(c.a, c.b): (c.verdict, float(c.pvalue).hex(), float(c.pvalue_adjusted).hex())
            for c in result.comparisons if c.a not in mine and c.b not in mine}


def changed_verdicts(before: OtherVerdicts, after: OtherVerdicts) -> tuple[str, ...]:
    """The comparisons that differ between two audits, appeared or disappeared ones included, as lines."""
    def state(verdicts: OtherVerdicts, key: tuple[str, str]) -> str:
        return verdicts[key][0] if key in verdicts else "absent"

    return tuple(f"{a} vs {b}: {state(before, (a, b))} -> {state(after, (a, b))}"
                 for a, b in sorted(before.keys() | after.keys()) if before.get((a, b)) != after.get((a, b)))


VERDICT_COLUMNS = ("target", "schedule", "budget", "n", "against", "difference (pp)", "interval (pp)", "verdict",
                   "MDE (pp)", "seeds to detect")


def verdict_table(rows: Sequence[VerdictRow]) -> list[tuple[str, ...]]:
    """The verdict table's cells as text: one line per cell and entry compared with (the twin, then each
    reference), schedules that train identically shown once as ``ft = lrw``."""
    lines = []
    for row in rows:
        schedule = " = ".join((row.schedule, *row.same_as))
        for v in row.versus:
            seeds = "-" if v.seeds_to_detect is None else str(v.seeds_to_detect)
            lines.append((row.target, schedule, str(row.budget_epochs), str(row.n), v.against,
                          f"{100 * v.difference:+.2f}", f"[{100 * v.ci_low:+.2f}, {100 * v.ci_high:+.2f}]", v.verdict,
                          f"{100 * v.minimum_detectable_difference:.2f}", seeds))
    return lines


def verdict_markdown(method: str, track: TrackSubmission) -> str:
    """The submission report's opening section: the verdict table."""
    head = [f"# Submission of {method} to {track.track}: {'passed' if track.passed else 'failed'}", "",
            f"{len(track.seeds)} seeds per cell; each line is {method} minus the entry named, in percentage "
            "points of test accuracy, with its 95% interval, the audit's verdict, the minimum detectable "
            "difference (MDE) at these seeds and the seeds per cell that would detect the observed difference "
            "(80% power). Schedules joined by `=` train identically at that budget.", "",
            "| " + " | ".join(VERDICT_COLUMNS) + " |", "|" + "---|" * len(VERDICT_COLUMNS)]
    body = ["| " + " | ".join(line) + " |" for line in verdict_table(track.rows)]
    notes = [f"- stale, does not count: `{item.path}`: {item.reason}" for item in track.stale]
    return "\n".join(head + body + [""] + notes + (["", ""] if notes else [""]))


def verdict_html(method: str, track: TrackSubmission) -> str:
    import html

    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>"
                    for line in verdict_table(track.rows))
    header = "".join(f"<th>{html.escape(c)}</th>" for c in VERDICT_COLUMNS)
    verdict = "passed" if track.passed else "failed"
    return (f'<section id="submission"><h1>Submission of {html.escape(method)} to {html.escape(track.track)}: '
            f"{verdict}</h1><table><thead><tr>{header}</tr></thead><tbody>{cells}</tbody></table></section>")
