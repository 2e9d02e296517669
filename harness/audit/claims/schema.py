"""Claims: what someone says about pruning methods, judged against the records.

A claims file (TOML shown; JSON with a top-level ``"claim"`` list works too)::

    [[claim]]
    name = "L1-norm beats random pruning"   # optional; default "claim N"
    kind = "beats"                          # or "no-loss"
    method = "l1-norm"
    baseline = "random"      # a method, "twin" (the method's random twin), or "dense" (no-loss only)
    track = "digits-cnn"     # "*": across all tracks (beats only); optional with one track
    target = "uniform-50"    # optional: every target both entries have
    schedule = "ft"          # optional: the claimant's schedule and budget for `method` ...
    budget = 20
    baseline_schedule = "ft" # ... and for the baseline (default: the same as `method`)
    baseline_budget = 10
    margin = 0.005           # no-loss: the accuracy drop (a fraction) that still counts as none
    source = "Our paper, Table 3"           # where the reported numbers below come from
    [claim.reported]                        # optional: the claimant's own numbers (fractions)
    method = 0.962                          # or [0.96, 0.97, ...] or {test_acc = 0.962, std = 0.003, n = 3}
    baseline = 0.951

How a claim is matched to cells is in :mod:`harness.audit.claims.matching`, how it is judged in
:mod:`harness.audit.claims.judging`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.audit.documents import describe, read_document
from harness.audit.reported import ReportedResult, to_records
from harness.core.errors import BenchError
from harness.run.record import Protocol, RunRecord

ALL_TRACKS = "*"
DENSE = "dense"
TWIN_NAMES = ("twin", "random twin")


class ReportedNumbers(BaseModel):
    """The claimant's numbers for one side: a number, a list (one per seed), or a table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test_acc: float | None = None
    values: tuple[float, ...] | None = None
    std: float | None = Field(None, ge=0)
    n: int | None = Field(None, ge=1)
    dense_test_acc: float | None = None
    params_after: int | None = Field(None, ge=0)
    macs_after: int | None = Field(None, ge=0)
    sparsity: float | None = None
    retrain_steps: int | None = Field(None, ge=0)
    protocol: Protocol | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return {"test_acc": raw}
        if isinstance(raw, (list, tuple)):
            return {"values": raw}
        return raw


class ClaimReported(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: ReportedNumbers | None = None
    baseline: ReportedNumbers | None = None


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    kind: Literal["beats", "no-loss"] = "beats"
    method: str
    baseline: str | None = None
    track: str | None = None
    target: str | None = None
    schedule: str | None = None
    budget: int | None = Field(None, ge=0)
    baseline_schedule: str | None = None
    baseline_budget: int | None = Field(None, ge=0)
    margin: float | None = Field(None, gt=0, lt=1)
    source: str | None = None
    reported: ClaimReported | None = None

    @field_validator("baseline")
    @classmethod
    def _known_baseline_word(cls, value: str | None) -> str | None:
        return "twin" if value in TWIN_NAMES else value

    @model_validator(mode="after")
    def _consistent(self) -> "Claim":
        if self.kind == "beats" and not self.baseline:
            raise ValueError("a 'beats' claim names its baseline (a method, or 'twin')")
        if self.kind == "beats" and self.baseline == DENSE:
            raise ValueError("'dense' is a baseline of no-loss claims; for 'beats' name a method or 'twin'")
        if self.kind == "beats" and self.margin is not None:
            raise ValueError("margin belongs to no-loss claims")
        if self.track == ALL_TRACKS and (self.kind != "beats" or self.reported or self.schedule or self.budget is not None):
            raise ValueError("a claim across all tracks ('*') is a 'beats' claim without schedule, budget or reported numbers")
        if self.reported and (self.schedule is None or self.budget is None or self.target is None or self.track is None):
            raise ValueError("reported numbers need the claim's track, target, schedule and budget")
        if self.baseline_schedule and not self.schedule:
            raise ValueError("baseline_schedule needs the method's schedule too")
        if self.reported and self.reported.baseline and self.baseline_side_is_dense:
            raise ValueError("a no-loss claim against dense reports the dense accuracy as method.dense_test_acc")
        return self

    @property
    def baseline_side_is_dense(self) -> bool:
        return self.kind == "no-loss" and (self.baseline or DENSE) == DENSE

    def baseline_entry(self) -> tuple[str, bool]:
        """(method, twin) of the baseline side."""
        return (self.method, True) if self.baseline == "twin" else (str(self.baseline), False)

    def statement(self) -> str:
        """The claim in one sentence, as the report prints it."""
        where = " across all tracks" if self.track == ALL_TRACKS else f" on {self.track}" if self.track else ""
        at = f" at {self.target}" if self.target else ""
        setting = ""
        if self.schedule or self.budget is not None:
            setting = " " + _setting_text(self.schedule, self.budget)
            baseline_side = (self.baseline_schedule or self.schedule,
                             self.budget if self.baseline_budget is None else self.baseline_budget)
            if baseline_side != (self.schedule, self.budget):
                setting += f" (the baseline {_setting_text(*baseline_side)})"
        baseline = "its random twin" if self.baseline == "twin" else self.baseline or DENSE
        if self.kind == "beats":
            return f"{self.method} beats {baseline}{where}{at}{setting}"
        margin = f"margin {self.margin}" if self.margin is not None else "no margin stated"
        return f"{self.method} loses no accuracy against {baseline}{where}{at}{setting} ({margin})"


def _setting_text(schedule: str | None, budget: int | None) -> str:
    under = f"under {schedule}" if schedule else "under its best schedule"
    return f"{under} at {budget} epochs" if budget is not None else f"{under} at every shared budget"


class ClaimsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: tuple[Claim, ...] = Field(min_length=1)


def load_claims(path: str | Path) -> list[Claim]:
    """Parse a claims file; unnamed claims are called "claim N" and names must be unique."""
    try:
        parsed = ClaimsFile.model_validate(read_document(path))
    except ValidationError as exc:
        raise describe(path, "claims", exc) from None
    claims = [c if c.name else c.model_copy(update={"name": f"claim {i + 1}"}) for i, c in enumerate(parsed.claim)]
    names = [c.name for c in claims]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BenchError(f"{path}: claim name {duplicates[0]!r} is used twice; give every claim its own name")
    claim_records(claims, path)
    return claims


def check_names(claims: Sequence[Claim], records: Sequence[RunRecord], path: str | Path = "claims") -> None:
    """Refuse a claim that names a track, target or method none of the audited records (nor the claim's own
    reported numbers) has: a typo would otherwise be judged, silently, as a claim without evidence."""
    known = [*records, *claim_records(claims, path)]
    tracks = {r.track for r in known}
    for claim in claims:
        where = f"{path}: claim {claim.name!r}"
        if claim.track not in (None, ALL_TRACKS) and claim.track not in tracks:
            raise BenchError(f"{where} names track {claim.track!r}, which has no records here "
                             f"(tracks: {', '.join(sorted(tracks))}); fix the claim's track")
        scope = [r for r in known if claim.track in (None, ALL_TRACKS) or r.track == claim.track]
        targets, methods = {r.target for r in scope}, {r.method for r in scope}
        if claim.target is not None and claim.target not in targets:
            raise BenchError(f"{where} names target {claim.target!r}, which has no records here "
                             f"(targets: {', '.join(sorted(targets))}); fix the claim's target")
        named = [claim.method] + ([claim.baseline] if claim.baseline not in (None, "twin", DENSE) else [])
        for method in named:
            if method not in methods:
                raise BenchError(f"{where} names method {method!r}, which has no records here "
                                 f"(methods: {', '.join(sorted(methods))}); fix the claim's method")


def claim_source(claim: Claim) -> str:
    return claim.source or f"claim: {claim.name}"


def claim_records(claims: Sequence[Claim], path: str | Path = "claims") -> list[RunRecord]:
    """The claimants' own numbers as reported records, one cell per claim side."""
    records = []
    for claim in claims:
        if not claim.reported:
            continue
        sides = [(claim.reported.method, claim.method, False, claim.schedule, claim.budget)]
        if claim.reported.baseline:
            method, twin = claim.baseline_entry()
            sides.append((claim.reported.baseline, method, twin, claim.baseline_schedule or claim.schedule,
                          claim.budget if claim.baseline_budget is None else claim.baseline_budget))
        for numbers, method, twin, schedule, budget in sides:
            if numbers is None:
                continue
            try:
                result = ReportedResult(track=claim.track, method=method, twin=twin, target=claim.target,
                                        schedule=schedule, budget_epochs=budget, **numbers.model_dump(exclude_none=True))
            except ValidationError as exc:
                raise describe(path, f"claim {claim.name!r}: reported numbers", exc) from None
            records.extend(to_records(result, claim_source(claim)))
    return records
