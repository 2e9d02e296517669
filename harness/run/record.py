"""Run records: one JSON file per run, named by the hash of the run's configuration.

Records are the leaderboard's ground truth, so they are written atomically (a crash
never leaves half a file), validated on load, and a record whose content no longer
matches its name is reported rather than used.

Every record is sealed when written: ``content_digest`` is the SHA-256 of its canonical content
without the digest itself, so an edited number no longer matches and the record is refused on
load. ``method_digest`` is the SHA-256 of the method's source file at the time of the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.core.atomic import write_json_atomic
from harness.core.identity import config_hash, digest
from harness.core.layout import ResultsLayout
from harness.prune.latency import Latency

SCHEMA_VERSION = 1


class RunConfig(BaseModel):
    """Everything that determines a run's outcome; its hash is the run's identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    track: str
    dense_hash: str
    dense_seed: int = 0
    method: str
    method_params: dict[str, Any] = Field(default_factory=dict)
    twin: bool = False
    target: str
    target_spec: dict[str, Any] = Field(default_factory=dict)
    schedule: str
    schedule_params: dict[str, float] = Field(default_factory=dict)
    budget_epochs: int = Field(ge=0)
    seed: int
    harness_version: str
    engine: str = "eager"
    precision: str = "fp32"
    data_protocol: str = "held-out"
    """The track's data protocol (``held-out`` or ``paper``): runs of the two are never pooled."""

    @property
    def run_id(self) -> str:
        return config_hash(self, set(RunConfig.model_fields))

    @property
    def label(self) -> str:
        method = f"{self.method}+twin" if self.twin else self.method
        return f"{self.track}/{method}/{self.target}/{self.schedule}@{self.budget_epochs}/seed{self.seed}"


class Curves(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    train_loss: list[float | None] = Field(default_factory=list)
    val_acc: list[float] = Field(default_factory=list)
    lr: list[float] = Field(default_factory=list)


class Protocol(BaseModel):
    """What the audit compares for schedule fairness (R2), stored so reported records can carry it too."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimizer: str
    momentum: float
    nesterov: bool
    weight_decay: float
    batch_size: int
    crop_padding: int
    horizontal_flip: bool
    peak_lr: float | None = None
    warmup_epochs: int | None = None


class RunRecord(RunConfig):
    """A run's configuration plus what it measured."""

    schema_version: int = SCHEMA_VERSION
    id: str
    source: Literal["reproduced", "reported"] = "reproduced"
    status: Literal["ok", "diverged", "failed"]
    error: str | None = None
    test_acc: float | None = None
    val_acc: float | None = None
    dense_test_acc: float | None = None
    dense_val_acc: float | None = None
    params_before: int | None = None
    params_after: int | None = None
    macs_before: int | None = None
    macs_after: int | None = None
    macs_total_before: int | None = None
    macs_total_after: int | None = None
    kept: dict[str, int] = Field(default_factory=dict)
    steps_per_epoch: int | None = None
    retrain_steps: int | None = None
    protocol: Protocol | None = None
    curves: Curves = Curves()
    synthetic_data: bool = False
    wall_seconds: float | None = None
    env: dict[str, Any] = Field(default_factory=dict)
    sparsity: float | None = None
    nonzero_params_after: int | None = None
    theoretical_macs_after: int | None = None
    latency: Latency | None = None
    tuning: dict[str, Any] | None = None
    fused_group: list[str] = Field(default_factory=list)
    """Ids of the runs the fused engine trained as one network with this one, itself included, in the
    group's order: the group's kernels set the rounding, so a rerun repeats the whole group."""
    content_digest: str | None = None
    method_digest: str | None = None

    def __eq__(self, other: object) -> bool:
        """Records are equal when their content is: the seal (``content_digest``) is not content."""
        if not isinstance(other, RunRecord):
            return NotImplemented
        return type(self) is type(other) and _content(self) == _content(other)

    __hash__ = None

    def config(self) -> RunConfig:
        return RunConfig.model_validate(self.model_dump(include=set(RunConfig.model_fields)))


def _content(record: RunRecord) -> dict[str, Any]:
    return {name: value for name, value in record.__dict__.items() if name != "content_digest"}


def record_path(layout: ResultsLayout, config: RunConfig) -> Path:
    return layout.record(config.track, config.run_id)


def content_digest(record: RunRecord) -> str:
    """SHA-256 of the canonical content without the digest itself; fields at their defaults are left
    out (as in the run's id), so adding an optional field later keeps every digest valid."""
    return digest(record.model_dump(mode="json", exclude={"content_digest"}, exclude_defaults=True))


def seal(record: RunRecord) -> RunRecord:
    return record.model_copy(update={"content_digest": content_digest(record)})


def write_record(layout: ResultsLayout, record: RunRecord) -> Path:
    """Seal the record with its content digest and write it atomically."""
    path = record_path(layout, record)
    write_json_atomic(path, seal(record).model_dump(mode="json"))
    return path


@dataclass(frozen=True)
class RecordProblem:
    path: Path
    reason: str


def read_record(path: Path) -> RunRecord:
    """Parse and check one record (schema, id, file name, content digest); raises ValueError naming what is wrong."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"not readable JSON ({exc})") from None
    try:
        record = RunRecord.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"fails the record schema at '{key}': {first['msg']}") from None
    if record.id != record.run_id:
        raise ValueError(f"content does not match its id (id {record.id}, content hashes to {record.run_id})")
    if path.stem != record.id:
        raise ValueError(f"file name does not match the record id {record.id}")
    if record.content_digest is None:
        raise ValueError("not sealed (no content digest): the harness seals every record it writes, so this one "
                         "was written or stripped by hand; rerun it")
    if record.content_digest != content_digest(record):
        raise ValueError(f"content digest mismatch: the record says {record.content_digest[:16]}, its content hashes "
                         f"to {content_digest(record)[:16]} (a result was edited after the run; its configuration "
                         "still matches the id)")
    return record


def load_records(layout: ResultsLayout, track: str | None = None) -> tuple[list[RunRecord], list[RecordProblem]]:
    """Every valid record in the layout (or of one track), plus the files that were refused."""
    records, problems = [], []
    for name in [track] if track else layout.tracks():
        for path in layout.records(name):
            try:
                records.append(read_record(path))
            except ValueError as exc:
                problems.append(RecordProblem(path, str(exc)))
    return records, problems
