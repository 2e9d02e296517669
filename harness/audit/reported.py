"""Numbers quoted from papers, imported as ``source="reported"`` run records.

A paper's table is evidence of a different kind than a run of this harness: its protocol is
whatever the paper says, its seeds unknown. Reported records therefore form cells of their own,
one per citation, and are compared with the reproduced cell of the same configuration (rule R11)
-- never pooled with reproduced runs, never ranked on the leaderboard.

File format (``bench import-reported FILE``; TOML shown, JSON with the same keys works)::

    source = "Li et al. 2017, Pruning Filters for Efficient ConvNets, Table 2"

    [[result]]
    track = "cifar10-resnet56"
    method = "l1-norm"
    target = "uniform-50"
    schedule = "ft"
    budget_epochs = 40
    test_acc = 0.9306            # or values = [...] (one per seed), optionally std and n
    dense_test_acc = 0.9304      # optional, like macs_after, params_after, sparsity, protocol

Accuracies are fractions (0.9306, not 93.06).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness import __version__
from harness.audit.documents import describe, read_document
from harness.core.identity import digest
from harness.core.layout import ResultsLayout
from harness.run.record import Protocol, RunConfig, RunRecord, write_record

CITATION = "citation"
"""Key of a reported record's ``env`` that holds where the number comes from."""


def citation(record: RunRecord) -> str:
    return str(record.env.get(CITATION) or record.dense_hash)


def _fraction(value: float | None, name: str) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1] (write 93.06% as 0.9306)")


class ReportedResult(BaseModel):
    """One configuration's reported accuracy: a single number (usually a mean) or one per seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    track: str
    method: str
    twin: bool = False
    target: str
    schedule: str
    budget_epochs: int = Field(ge=0)
    test_acc: float | None = None
    values: tuple[float, ...] | None = Field(None, min_length=1)
    std: float | None = Field(None, ge=0)
    n: int | None = Field(None, ge=1)
    dense_test_acc: float | None = None
    params_before: int | None = Field(None, ge=0)
    params_after: int | None = Field(None, ge=0)
    macs_before: int | None = Field(None, ge=0)
    macs_after: int | None = Field(None, ge=0)
    sparsity: float | None = None
    steps_per_epoch: int | None = Field(None, ge=0)
    retrain_steps: int | None = Field(None, ge=0)
    protocol: Protocol | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ReportedResult":
        if (self.test_acc is None) == (self.values is None):
            raise ValueError("give exactly one of test_acc (one number) or values (one per seed)")
        for value in self.values or (self.test_acc,):
            _fraction(value, "test accuracy")
        _fraction(self.dense_test_acc, "dense_test_acc")
        _fraction(self.sparsity, "sparsity")
        return self


class ReportedFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    result: tuple[ReportedResult, ...] = Field(min_length=1)


def to_records(result: ReportedResult, source: str) -> list[RunRecord]:
    """One record per reported value; a single number is one record whose ``env`` keeps the
    paper's std and number of runs (the audit cannot test with them, but shows them)."""
    values = result.values or (result.test_acc,)
    measured = result.model_dump(include={"dense_test_acc", "params_before", "params_after", "macs_before",
                                          "macs_after", "sparsity", "steps_per_epoch", "retrain_steps"})
    env: dict[str, Any] = {CITATION: source}
    if result.std is not None:
        env["reported_std"] = result.std
    if result.n is not None:
        env["reported_n"] = result.n
    records = []
    for index, value in enumerate(values):
        config = RunConfig(
            track=result.track, dense_hash=f"reported-{digest(source)[:12]}", method=result.method, twin=result.twin,
            target=result.target, schedule=result.schedule, budget_epochs=result.budget_epochs, seed=index,
            harness_version=__version__,
        )
        records.append(RunRecord(
            **config.model_dump(), id=config.run_id, source="reported", status="ok", test_acc=value,
            protocol=result.protocol, env=env, **measured,
        ))
    return records


def load_reported(path: str | Path) -> list[RunRecord]:
    """Parse a reported-results file into records (nothing is written)."""
    document = read_document(path)
    try:
        parsed = ReportedFile.model_validate(document)
    except ValidationError as exc:
        raise describe(path, "reported results", exc) from None
    return [record for result in parsed.result for record in to_records(result, parsed.source)]


def import_reported(path: str | Path, layout: ResultsLayout) -> list[Path]:
    """Write the file's records into the layout (one folder per track); importing twice is a no-op."""
    return [write_record(layout, record) for record in load_reported(path)]

