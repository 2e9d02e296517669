"""``bench verify``: are the records on the leaderboard the ones the harness produced?

Four checks, each problem reported with the file and what differs:

1. every record parses, matches its id, and its ``content_digest`` matches its content;
2. its ``method_digest`` matches the method's source file as it is now (records that cannot be
   checked -- no digest, a method not registered here -- fail too);
3. its ``dense_weights_sha256`` matches the dense baseline cached here for its dense hash, when there
   is one (a record retrained from other weights is another run); ``harness_digest`` is compared with
   this harness and counted, not failed (records are made by many versions of the harness);
4. ``rerun`` records, drawn with ``numpy.random.default_rng(seed)`` from the successful reproduced
   ones (or all of them, of one ``method`` and its twin if given), are run again and must give the
   stored test accuracy: bit-exact when both runs are on the
   CPU (a run is deterministic given its seed on one intra-op thread, and a rerun uses the thread
   count the record states), within ``CUDA_TOLERANCE`` (or the tolerance given) otherwise. A
   record of the fused engine is rerun with its whole group, in the group's order, since the
   group's grouped kernels set its rounding.

A rerun writes no record; it trains a dense baseline only if the results directory lacks it.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.dense.baseline import dense_hash, recorded_weights_digest
from harness.methods.exchange import Limits
from harness.methods.isolation import Isolation
from harness.methods.provenance import MethodSources
from harness.methods.sources import harness_digest
from harness.run.execution import execute, execute_group
from harness.run.pipeline import Workspace
from harness.run.record import RunConfig, RunRecord, read_record
from harness.track.definition import load_track
from harness.train.engines import EngineSettings

CUDA_TOLERANCE = 0.01
"""Default tolerance (accuracy as a fraction: one percentage point) when the stored run or the rerun used CUDA."""
ALL = "all"
"""``rerun_count`` that reruns every candidate record instead of a seeded draw."""


@dataclass(frozen=True)
class Problem:
    path: Path
    check: str
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.check}: {self.message}"


@dataclass(frozen=True)
class Rerun:
    path: Path
    label: str
    device: str
    stored: float | None
    reproduced: float | None
    tolerance: float
    status: str
    stored_dense_sha256: str | None = None
    rerun_dense_sha256: str | None = None

    @property
    def same_dense(self) -> bool | None:
        """Whether the rerun retrained from the dense weights the record did (None: the record does not say)."""
        if self.stored_dense_sha256 is None or self.rerun_dense_sha256 is None:
            return None
        return self.stored_dense_sha256 == self.rerun_dense_sha256

    @property
    def difference(self) -> float | None:
        if self.stored is None or self.reproduced is None:
            return None
        return self.reproduced - self.stored

    @property
    def matches(self) -> bool:
        difference = self.difference
        return difference is not None and math.isfinite(difference) and abs(difference) <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "label": self.label, "device": self.device, "stored_test_acc": self.stored,
                "rerun_test_acc": self.reproduced, "difference": self.difference, "tolerance": self.tolerance,
                "rerun_status": self.status, "matches": self.matches, "same_dense_weights": self.same_dense}


@dataclass(frozen=True)
class Verification:
    layout: ResultsLayout
    checked: int
    problems: tuple[Problem, ...]
    reruns: tuple[Rerun, ...]
    seed: int
    other_harness: int = 0
    """Valid records made by harness code other than this one (or not saying which)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def as_dict(self) -> dict[str, Any]:
        return {"results": str(self.layout.root), "checked": self.checked, "seed": self.seed, "ok": self.ok,
                "other_harness": self.other_harness,
                "problems": [{"path": str(p.path), "check": p.check, "message": p.message} for p in self.problems],
                "reruns": [r.as_dict() for r in self.reruns]}


def check_records(layout: ResultsLayout) -> tuple[list[tuple[Path, RunRecord]], list[Problem], int]:
    """Every record file: those that parse with valid digests, the problems, and how many files were read."""
    sources = MethodSources()
    cached: dict[tuple[str, str], str | None] = {}  # each baseline's digest, read once
    valid, problems, files = [], [], 0
    for track in layout.tracks():
        for path in layout.records(track):
            files += 1
            try:
                record = read_record(path)
            except ValueError as exc:
                check = "content digest" if str(exc).startswith(("content digest", "not sealed")) else "record"
                problems.append(Problem(path, check, str(exc)))
                continue
            method = sources.problem(record)
            if method:
                problems.append(Problem(path, "method digest", method))
            key = (record.track, record.dense_hash)
            if key not in cached:
                cached[key] = recorded_weights_digest(layout, *key)
            dense = _dense_problem(layout, path, record, cached[key])
            if dense:
                problems.append(dense)
            valid.append((path, record))
    return valid, problems, files


def _dense_problem(layout: ResultsLayout, path: Path, record: RunRecord, cached: str | None) -> Problem | None:
    """A record whose dense weights are not the baseline cached here, whose digest is ``cached`` (None: no
    cache, or no digest; nothing to check)."""
    if record.dense_weights_sha256 is None or cached is None or cached == record.dense_weights_sha256:
        return None
    weights, _ = layout.dense_files(record.track, record.dense_hash)
    return Problem(path, "dense weights", f"retrained from dense weights {record.dense_weights_sha256[:16]}..., but "
                                          f"the baseline {weights} holds {cached[:16]}...; the record "
                                          "was made from other weights: restore its baseline, or rerun it here")


def choose_reruns(records: list[tuple[Path, RunRecord]], count: int | Literal["all"], seed: int,
                  method: str | None = None) -> list[tuple[Path, RunRecord]]:
    """``count`` successful reproduced records (of ``method`` and its twin when given) drawn without
    replacement, in path order; every one of them for ``ALL``."""
    candidates = [(p, r) for p, r in records if r.reproduced and r.status == "ok"
                  and (method is None or r.method == method)]
    if count == ALL:
        return candidates
    if count <= 0 or not candidates:
        return []
    picks = np.random.default_rng(seed).choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(int(i) for i in picks)]


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fused_partners(path: Path, record: RunRecord) -> list[RunConfig] | Problem:
    """The configurations of a fused record's group, in order, from their records beside it (none if unfused)."""
    if len(record.fused_group) < 2:
        return []
    configs = []
    for run_id in record.fused_group:
        try:
            member = record if run_id == record.id else read_record(path.parent / f"{run_id}.json")
            configs.append(member.config())
        except ValueError as exc:
            partner = path.parent / f"{run_id}.json"
            return Problem(path, "rerun", f"it was trained in a fused group with {run_id}, whose record {partner} "
                                          f"is unusable ({exc}); restore it to rerun")
    return configs


def rerun(path: Path, record: RunRecord, workspace: Workspace, tolerance: float | None,
          groups: dict[tuple[str, ...], list[RunRecord]]) -> Rerun | Problem:
    """Run the record's configuration again; a changed track is a problem, not a rerun. A fused group
    repeated once is kept in ``groups``, so its other drawn records reuse it instead of retraining it."""
    track = workspace.track
    expected = dense_hash(track, record.dense_seed)
    if expected != record.dense_hash:
        return Problem(path, "rerun", f"track '{track.name}' has changed since the run (dense hash "
                                      f"{record.dense_hash}, now {expected}), so the run cannot be repeated")
    device = str(record.env.get("device_type", "cpu"))
    allowed = tolerance if tolerance is not None else \
        0.0 if device == "cpu" and workspace.device == "cpu" else CUDA_TOLERANCE
    partners = _fused_partners(path, record)
    if isinstance(partners, Problem):
        return partners
    with _threads(int(record.env.get("threads", 1))):
        if partners:
            group = tuple(record.fused_group)
            if group not in groups:
                groups[group] = execute_group(workspace, partners)
            again = next(r for r in groups[group] if r.id == record.id)
        else:
            again = execute(workspace, record.config())
    return Rerun(path, record.config().label, workspace.device, record.test_acc, again.test_acc, allowed, again.status,
                 record.dense_weights_sha256, again.dense_weights_sha256)


def _rerun_problem(result: Rerun) -> Problem | None:
    if result.matches:
        return None
    if result.reproduced is None:
        return Problem(result.path, "rerun", f"stored test accuracy {result.stored!r}, but the rerun ended "
                                             f"'{result.status}' without one")
    exact = "bit-exact" if result.tolerance == 0 else f"tolerance {result.tolerance:g}"
    cause = ("; the rerun retrained from other dense weights than the record (another machine's dense baseline): "
             "rerun where the baseline was trained, or restore its weights") if result.same_dense is False else ""
    return Problem(result.path, "rerun", f"test accuracy differs: stored {result.stored!r}, rerun "
                                         f"{result.reproduced!r} ({100 * result.difference:+.4f} pp; {exact} on "
                                         f"{result.device}){cause}")


def verify_results(
    layout: ResultsLayout,
    rerun_count: int | Literal["all"] = 0,
    seed: int = 0,
    tolerance: float | None = None,
    device: str = "cpu",
    tracks_dir: str | Path | None = None,
    limits: Limits = Limits(),
    on_rerun: Callable[[Rerun | Problem], None] | None = None,
    method: str | None = None,
) -> Verification:
    """Check every record in the layout and rerun ``rerun_count`` of them (seeded; ``ALL``: every one),
    only records of ``method`` and its twin when given."""
    root = layout.root
    if not root.is_dir():
        raise BenchError(f"results directory {root} does not exist; pass --results DIR")
    if rerun_count != ALL and not (isinstance(rerun_count, int) and rerun_count >= 0):
        raise BenchError(f"--rerun must be zero or more, or 'all', got {rerun_count!r}")
    if tolerance is not None and not tolerance >= 0:
        raise BenchError(f"--tolerance must be zero or more (accuracy as a fraction), got {tolerance}")
    valid, problems, files = check_records(layout)
    if not files:
        raise BenchError(f"nothing to verify: {root} holds no run records; pass --results DIR, the folder "
                         "bench run wrote its records to")
    if method is not None and not any(r.method == method for _, r in valid):
        raise BenchError(f"no record of method '{method}' in {root}; pass a method that has records (see "
                         "`bench leaderboard`)")
    workspaces: dict[tuple[str, str, str], Workspace] = {}
    reruns = []
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    isolation = Isolation(limits)
    for path, record in choose_reruns(valid, rerun_count, seed, method):
        try:
            key = (record.track, record.engine, record.precision)
            if key not in workspaces:
                engine = EngineSettings.of_run(record.engine, record.precision)
                workspaces[key] = Workspace(load_track(record.track, tracks_dir), layout, device=device, engine=engine,
                                            isolation=isolation)
            result = rerun(path, record, workspaces[key], tolerance, groups)
        except BenchError as exc:
            result = Problem(path, "rerun", str(exc))
        if isinstance(result, Rerun):
            reruns.append(result)
            problem = _rerun_problem(result)
            if problem:
                problems.append(problem)
        else:
            problems.append(result)
        if on_rerun is not None:
            on_rerun(result)
    here = harness_digest()
    other = sum(record.harness_digest != here for _, record in valid)
    return Verification(layout, files, tuple(problems), tuple(reruns), seed, other)
