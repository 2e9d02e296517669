"""One audit, start to finish: records -> cells -> comparisons -> claims -> rules -> verdicts.

The result is a plain value: the same records, claims, tuning histories, configuration and seed
always give an equal result (every random draw is seeded from ``config.seed`` and the cell or
comparison it belongs to, never from the order of work), so reports built from it are
byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from harness import __version__
from harness.audit import memo
from harness.audit.aggregate import (
    MethodAggregate,
    PairAggregate,
    method_aggregates,
    pair_aggregates,
    task_entries,
)
from harness.audit.claims import (
    Claim,
    ClaimVerdict,
    check_names,
    claim_records,
    judge,
    load_claims,
    prepare_claims,
)
from harness.audit.comparisons import Comparison, build_cells
from harness.audit.config import AuditConfig
from harness.audit.families import table_comparisons
from harness.audit.findings import Finding, sort_key
from harness.audit.rules import RULE_FUNCTIONS, AuditInput
from harness.audit.tuning import TuningStudy, load_studies
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.methods.provenance import MethodSources
from harness.run.cells import Cell, one_configuration_per_cell
from harness.run.record import (
    RecordFile,
    RecordProblem,
    RunRecord,
    load_records,
    read_record_files,
    record_path,
)

"""Where reports go by default: ``<results>/<track>/report`` or, for every track, ``<results>/report``."""


@dataclass(frozen=True)
class AuditResult:
    version: str
    config: AuditConfig
    tracks: tuple[str, ...]
    cells: tuple[Cell, ...]
    comparisons: tuple[Comparison, ...]
    findings: tuple[Finding, ...]
    claims: tuple[ClaimVerdict, ...]
    method_aggregates: tuple[MethodAggregate, ...]
    pair_aggregates: tuple[PairAggregate, ...]
    problems: tuple[RecordProblem, ...]
    studies: tuple[TuningStudy, ...]
    inputs: str | None = field(default=None, compare=False)
    """The digest of the files this audit was computed from (:func:`memo.inputs_digest`); None when it
    was audited from records in memory. It names what is kept derived from it, never its content."""

    @property
    def seed(self) -> int:
        """The audit seed (``config.seed``)."""
        return self.config.seed

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when any finding fails (CI gates on it)."""
        return 1 if any(f.severity == "fail" for f in self.findings) else 0

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for f in self.findings)


def audit(
    records: Iterable[RunRecord],
    *,
    config: AuditConfig = AuditConfig(),
    claims: Sequence[Claim] = (),
    studies: Sequence[TuningStudy] = (),
    problems: Sequence[RecordProblem] = (),
) -> AuditResult:
    """Audit records (reproduced and reported) and claims; ``config.seed`` seeds every random draw."""
    cells = build_cells([*records, *claim_records(claims)], config)
    comparisons = table_comparisons(cells, config)
    tests = prepare_claims(claims, cells, config)
    audit_input = AuditInput(tuple(cells), tuple(comparisons), tuple(tests), tuple(studies))
    findings = sorted((f for rule in RULE_FUNCTIONS for f in rule(audit_input, config)), key=sort_key)
    tracks = tuple(sorted({c.key.track for c in cells if c.reproduced}))
    entries = task_entries(cells) if len(tracks) > 1 else {}
    return AuditResult(
        version=__version__, config=config, tracks=tracks, cells=tuple(cells),
        comparisons=tuple(comparisons), findings=tuple(findings),
        claims=tuple(judge(test, findings, config) for test in tests),
        method_aggregates=tuple(method_aggregates(entries, config)),
        pair_aggregates=tuple(pair_aggregates(entries, config)),
        problems=tuple(problems), studies=tuple(studies),
    )


@dataclass(frozen=True)
class AuditInputs:
    """What an audit of a results folder is computed from: the record files, read once, and the digest
    of every input (:func:`memo.inputs_digest`), which keys the audit and what is derived from it."""

    layout: ResultsLayout
    track: str | None
    claims_path: str | Path | None
    config: AuditConfig
    files: dict[str, list[RecordFile]]
    key: str | None


def audit_inputs(
    layout: ResultsLayout,
    track: str | None = None,
    claims_path: str | Path | None = None,
    config: AuditConfig = AuditConfig(),
) -> AuditInputs:
    """Read a results folder's record files (one track's, or every track's) and digest the audit's inputs."""
    root = layout.root
    if not root.is_dir():
        raise BenchError(f"results directory {root} does not exist; run `bench run` first or pass --results DIR")
    present = layout.tracks()
    if track and track not in present:
        raise BenchError(f"no results for track '{track}' in {root} (tracks there: {', '.join(present) or 'none'}); "
                         "check --track")
    files = {name: read_record_files(layout, name) for name in ([track] if track else present)}
    return AuditInputs(layout, track, claims_path, config, files, memo.inputs_digest(layout, files, claims_path, config))


def audit_results(
    layout: ResultsLayout,
    track: str | None = None,
    claims_path: str | Path | None = None,
    config: AuditConfig = AuditConfig(),
) -> AuditResult:
    """Audit a results directory (one folder per track, tuning histories beside the records); records
    that fail their digests, or whose method file changed since the run, are refused as problems.
    An unchanged audit is read from the memo (:mod:`harness.audit.memo`) instead of computed again."""
    return audit_from(audit_inputs(layout, track, claims_path, config))


def audit_from(inputs: AuditInputs) -> AuditResult:
    """The audit of what :func:`audit_inputs` read: the kept one when its inputs are unchanged."""
    layout, track, claims_path, config = inputs.layout, inputs.track, inputs.claims_path, inputs.config
    kept = memo.recall(layout.audit_memo(track), inputs.key)
    if kept is not None:
        return kept
    records, problems, studies, study_problems = [], [], [], []
    for name in inputs.files:
        found, refused = load_records(layout, name, inputs.files)
        found, changed = refuse_changed_methods(layout, found)
        found, mixed = one_configuration_per_cell(found)
        changed += [RecordProblem(record_path(layout, record), reason) for record, reason in mixed]
        tuned, unreadable = load_studies(layout, name)
        records += found
        problems += refused + changed
        studies += tuned
        study_problems += unreadable
    if not records:
        where = layout.root / track if track else layout.root
        skipped = f" ({len(problems)} invalid record files skipped)" if problems else ""
        raise BenchError(f"no valid run records in {where}{skipped}; run `bench run` first or point --results at them")
    claims = load_claims(claims_path) if claims_path else []
    check_names(claims, records, claims_path or "claims")
    result = replace(audit(records, config=config, claims=claims, studies=studies,
                           problems=[*problems, *study_problems]), inputs=inputs.key)
    memo.remember(layout.audit_memo(track), inputs.key, result)
    return result


def refuse_changed_methods(layout: ResultsLayout, records: Iterable[RunRecord]
                           ) -> tuple[list[RunRecord], list[RecordProblem]]:
    """Split records into those whose method file is unchanged (or uncheckable) and refused ones."""
    sources = MethodSources()
    kept, refused = [], []
    reasons: dict[tuple[str, str | None], str | None] = {}  # one check per method and digest
    for record in records:
        if (record.method, record.method_digest) not in reasons:
            reasons[record.method, record.method_digest] = sources.changed(record)
        reason = reasons[record.method, record.method_digest]
        if reason is None:
            kept.append(record)
        else:
            refused.append(RecordProblem(record_path(layout, record), reason))
    return kept, refused
