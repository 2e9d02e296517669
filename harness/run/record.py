"""Run records: one JSON file per run, named by the hash of the run's configuration.

Records are the leaderboard's ground truth, so they are written atomically (a crash
never leaves half a file), validated on load, and a record whose content no longer
matches its name is reported rather than used.

Every record is sealed when written: ``content_digest`` is the SHA-256 of its canonical content
without the digest itself, so an edited number no longer matches and the record is refused on
load. ``method_digest`` is the SHA-256 of the method's source file at the time of the run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.core.atomic import write_json_atomic
from harness.core.errors import BenchError
from harness.core.identity import config_hash, digest
from harness.core.layout import ResultsLayout
from harness.core.signing import machine_key, sign, signed_by
from harness.prune.latency import Latency

SCHEMA_VERSION = 1


def twin_suffix(twin: bool, trains: bool) -> str:
    """How labels name an entry: ``+twin`` for the random twin, ``+trained-twin`` for one that trains."""
    return "+trained-twin" if trains else "+twin" if twin else ""


class RunConfig(BaseModel):
    """Everything that determines a run's outcome; its hash is the run's identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    track: str
    dense_hash: str
    dense_seed: int = 0
    method: str
    method_params: dict[str, Any] = Field(default_factory=dict)
    twin: bool = False
    twin_trains: bool = False
    """A twin that runs its method's own training (phase and rounds), drawing units at random at every pruning;
    the plain twin (False) prunes the dense model once and retrains the whole budget."""
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

    @model_validator(mode="after")
    def _trained_twin_is_a_twin(self) -> "RunConfig":
        if self.twin_trains and not self.twin:
            raise ValueError("twin_trains describes a random twin; set twin too")
        return self

    @property
    def label(self) -> str:
        method = f"{self.method}{twin_suffix(self.twin, self.twin_trains)}"
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


class Phases(BaseModel):
    """How a method that trains spent its budget (``harness.methods.training.split_budget``): epochs and steps
    before pruning, then each pruning round's retraining (the last round's follow the final pruning). The
    budget is their total; a run without phases spent it all retraining after one pruning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pre_pruning_epochs: int = Field(ge=0)
    pre_pruning_steps: int = Field(ge=0)
    pre_pruning_loss: list[float | None] = Field(default_factory=list)
    """Each pre-pruning epoch's mean training objective: cross-entropy plus the method's penalty."""
    round_epochs: list[int] = Field(min_length=1)
    round_steps: list[int] = Field(min_length=1)
    total_epochs: int = Field(ge=0)
    """The run's budget: pre-pruning epochs plus every round's."""
    total_steps: int = Field(ge=0)
    """Every optimizer step the budget paid for: pre-pruning steps plus every round's."""

    @model_validator(mode="after")
    def _totals_add_up(self) -> "Phases":
        if len(self.round_steps) != len(self.round_epochs):
            raise ValueError("round_steps and round_epochs must name the same rounds")
        if self.total_epochs != self.pre_pruning_epochs + sum(self.round_epochs):
            raise ValueError("total_epochs must be the pre-pruning epochs plus every round's")
        if self.total_steps != self.pre_pruning_steps + sum(self.round_steps):
            raise ValueError("total_steps must be the pre-pruning steps plus every round's")
        return self

    def with_final_round(self, steps: int) -> "Phases":
        """These phases once the retraining after the final pruning took ``steps``."""
        round_steps = [*self.round_steps[:-1], steps]
        return Phases.model_validate({**self.model_dump(), "round_steps": round_steps,
                                      "total_steps": self.pre_pruning_steps + sum(round_steps)})


def split_name(split: tuple[int, ...]) -> str:
    """A budget split (``RunRecord.budget_split``) as findings and tables name it: ``pre+r1+...+rN`` in epochs."""
    return "+".join(map(str, split))


REPRODUCED = "reproduced"
"""The source of runs of this harness; numbers quoted from papers are ``reported``."""


class RunRecord(RunConfig):
    """A run's configuration plus what it measured."""

    schema_version: int = SCHEMA_VERSION
    id: str
    source: Literal["reproduced", "reported"] = REPRODUCED
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
    """Optimizer steps after pruning: every round's retraining, for a method that prunes in rounds."""
    phases: Phases | None = None
    """How a method that trains split its budget; None for a run that spent it all retraining after one pruning."""
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
    isolation: str | None = None
    """Where the method's plan was computed: ``in-process`` (a built-in method, the harness's own code) or
    the sandbox level a plugin ran at (``bwrap``, ``landlock``, ``rlimits``); None in records made before
    levels were recorded."""
    unsafe_isolation: bool = False
    """The run was made below the level its leaderboard requires, by request (``--unsafe-isolation``)."""
    method_file: str | None = None
    """A plugin's file, relative to the methods folder it was found in (absolute for a file outside it), so
    ``bench verify``, ``flops`` and ``latency`` can find it again; None for built-in methods and older records."""
    dense_weights_sha256: str | None = None
    """SHA-256 of the dense weights the run pruned and retrained from (``harness.methods.sources.weights_digest``)."""
    harness_digest: str | None = None
    """SHA-256 of the harness source tree that made the record (``harness.methods.sources.harness_digest``)."""

    @model_validator(mode="after")
    def _phases_spend_the_budget(self) -> "RunRecord":
        if self.phases is not None and self.phases.total_epochs != self.budget_epochs:
            raise ValueError(f"phases total {self.phases.total_epochs} epochs, the budget is {self.budget_epochs}")
        return self

    def __eq__(self, other: object) -> bool:
        """Records are equal when their content is: the seal (``content_digest``) is not content."""
        if not isinstance(other, RunRecord):
            return NotImplemented
        return type(self) is type(other) and _content(self) == _content(other)

    __hash__ = None

    @property
    def total_steps(self) -> int | None:
        """Every optimizer step the run's budget paid for: before pruning, between rounds and after."""
        return self.phases.total_steps if self.phases is not None else self.retrain_steps

    @property
    def budget_split(self) -> tuple[int, ...]:
        """``(pre-pruning epochs, each round's retraining epochs)``: a run without phases retrained its whole
        budget after one pruning."""
        if self.phases is None:
            return 0, self.budget_epochs
        return self.phases.pre_pruning_epochs, *self.phases.round_epochs

    @property
    def reproduced(self) -> bool:
        """Run by this harness (not a number quoted from a paper)."""
        return self.source == REPRODUCED

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
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"not readable JSON ({exc})") from None
    return _check_record(path, data)


def _parse_record(data: bytes) -> RunRecord:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not readable JSON ({exc})") from None
    try:
        return RunRecord.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"fails the record schema at '{key}': {first['msg']}") from None


def _check_record(path: Path, data: bytes) -> RunRecord:
    record = _parse_record(data)
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


INDEX_FORMAT = 1


@lru_cache(maxsize=1)
def _checker() -> str:
    """What the index's verdicts depend on: the checking code and the schema library; an index written
    under other code is ignored."""
    import pydantic

    from harness.core import identity
    from harness.prune import latency

    sources = b"".join(Path(f).read_bytes() for f in (__file__, identity.__file__, latency.__file__))
    return digest({"format": INDEX_FORMAT, "pydantic": pydantic.VERSION, "schema": SCHEMA_VERSION,
                   "code": hashlib.sha256(sources).hexdigest()})


def _signed(files: dict[str, str]) -> bytes:
    """What an index's signature covers: the checking code and every verified file's digest."""
    return json.dumps([_checker(), sorted(files.items())], separators=(",", ":")).encode()


def _read_index(path: Path, key: bytes | None) -> dict[str, str]:
    """File name -> SHA-256 of the bytes whose schema, id and seal were verified; empty when there is
    no key, or the index is missing, unreadable, corrupt, unsigned by this machine's key or written
    under other checking code."""
    if key is None:
        return {}
    try:
        index = json.loads(path.read_bytes())
        files = {k: v for k, v in index["files"].items() if isinstance(k, str) and isinstance(v, str)}
        return files if signed_by(key, _signed(files), str(index["signature"])) else {}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _write_index(path: Path, key: bytes | None, files: dict[str, str]) -> None:
    if key is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"files": files, "signature": sign(key, _signed(files))})
    except (OSError, BenchError):
        pass  # a read-only results folder: the index only saves time


@dataclass(frozen=True)
class RecordFile:
    """A record file's bytes and their SHA-256, read once per call (or why they could not be read)."""

    path: Path
    data: bytes = b""
    sha256: str = ""
    error: str | None = None


def read_record_files(layout: ResultsLayout, track: str) -> list[RecordFile]:
    """Every record file of a track, in name order, read whole."""
    files = []
    for path in layout.records(track):
        try:
            data = path.read_bytes()
        except OSError as exc:
            files.append(RecordFile(path, error=f"not readable JSON ({exc})"))
            continue
        files.append(RecordFile(path, data, hashlib.sha256(data).hexdigest()))
    return files


def load_records(layout: ResultsLayout, track: str | None = None,
                 files: dict[str, list[RecordFile]] | None = None) -> tuple[list[RunRecord], list[RecordProblem]]:
    """Every valid record in the layout (or of one track), plus the files that were refused; ``files``
    gives the tracks' files already read (:func:`read_record_files`).

    Every file is read on every call. A file whose bytes hash to the digest the track's index lists
    for its name was verified before (schema, id, file name, seal) and is only parsed; any other is
    fully checked, and the index is rewritten when what was verified changed. The index is a cache,
    signed with this machine's key (:func:`harness.core.signing.machine_key`): deleting it, corrupting
    it or copying it from elsewhere only costs time."""
    records, problems = [], []
    key = machine_key()
    for name in [track] if track else layout.tracks():
        index_path = layout.record_index(name)
        verified = _read_index(index_path, key)
        now: dict[str, str] = {}
        for file in files[name] if files is not None else read_record_files(layout, name):
            if file.error is not None:
                problems.append(RecordProblem(file.path, file.error))
                continue
            try:
                record = (_parse_record(file.data) if verified.get(file.path.name) == file.sha256
                          else _check_record(file.path, file.data))
            except ValueError as exc:
                problems.append(RecordProblem(file.path, str(exc)))
                continue
            records.append(record)
            now[file.path.name] = file.sha256
        if now != verified:
            _write_index(index_path, key, now)
    return records, problems
