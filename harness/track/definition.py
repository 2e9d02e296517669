"""Tracks: everything a benchmark fixes -- data, model, original recipe, budgets, targets, seeds.

A track is a TOML file under ``bench/tracks``. It is parsed into frozen, validated models so
that a typo is one clear line naming the file and the key, never a crash halfway through a grid.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from harness.core.errors import BenchError
from harness.track.recipe import Recipe
from harness.track.schedules import SCHEDULES

TRACKS_ENV = "PRUNE_BENCH_TRACKS"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSection(_Strict):
    dataset: str
    root: str | None = None
    split_seed: int = 0
    val_size: float | None = Field(None, gt=0)
    test_size: float | None = Field(None, gt=0)
    train_size: int | None = Field(None, gt=0)
    protocol: Literal["held-out", "paper"] = "held-out"
    """``held-out`` (default): validation carved out of training, normalization from the training images.
    ``paper``: the official code's CIFAR protocol, whole training split and fixed constants
    (``harness.data.spec.PROTOCOLS``). Part of the dense configuration, so of every run's identity;
    the default is left out of the hash, so existing tracks keep their ids."""


class ModelSection(_Strict):
    name: str
    num_classes: int = Field(gt=1)
    input_shape: tuple[int, int, int]


TargetKind = Literal["ratio", "layers", "fixed", "macs", "params", "channels"]
_TARGET_FIELDS: dict[str, tuple[str, ...]] = {
    "ratio": ("ratio",),
    "layers": ("ratios",),
    "fixed": ("config",),
    "macs": ("reduction", "tolerance"),
    "params": ("reduction", "tolerance"),
    "channels": ("fraction",),
}
_REQUIRED_FIELDS = {"ratio": "ratio", "layers": "ratios", "fixed": "config", "macs": "reduction", "params": "reduction",
                    "channels": "fraction"}
_KIND_FIELDS = tuple(dict.fromkeys(field for fields in _TARGET_FIELDS.values() for field in fields))


class Target(_Strict):
    """How much to prune; ``harness.prune.allocation`` turns it into per-layer counts for one model.

    ``ratio``: the fraction removed from every prunable layer. ``layers``: a fraction per named
    layer (others untouched). ``fixed``: a named published configuration such as ``pfec-a``.
    ``macs`` / ``params``: a global reduction the harness reaches by choosing per-layer counts,
    achieved within ``tolerance`` (absolute, as a fraction of the dense count). ``channels``: a
    ``fraction`` of all the prunable layers' output channels removed in total (Network Slimming's
    global percentage), which globally ranking methods spread by their own ranking.
    Fields a kind does not use are left out of the dump, so a ratio target hashes as it always did.
    """

    name: str
    kind: TargetKind = "ratio"
    ratio: float | None = Field(None, gt=0, lt=1)
    ratios: dict[str, float] | None = None
    config: str | None = None
    reduction: float | None = Field(None, gt=0, lt=1)
    tolerance: float | None = Field(None, gt=0, lt=1)
    fraction: float | None = None

    @field_validator("fraction")
    @classmethod
    def _fraction_in_range(cls, fraction: float | None) -> float | None:
        if fraction is not None and not 0 < fraction < 1:
            raise ValueError("fraction must be in (0, 1): the share of all prunable channels to remove, e.g. 0.5")
        return fraction

    @model_validator(mode="after")
    def _fields_match_kind(self) -> "Target":
        required = _REQUIRED_FIELDS[self.kind]
        if getattr(self, required) is None:
            raise ValueError(f"a target of kind '{self.kind}' needs '{required}'")
        allowed = set(_TARGET_FIELDS[self.kind])
        stray = [f for f in _KIND_FIELDS if f not in allowed and getattr(self, f) is not None]
        if stray:
            raise ValueError(f"a target of kind '{self.kind}' takes no '{stray[0]}'")
        bad = [layer for layer, value in (self.ratios or {}).items() if not 0 <= value < 1]
        if bad:
            raise ValueError(f"ratio of layer '{bad[0]}' must be in [0, 1)")
        return self

    @model_serializer(mode="wrap")
    def _drop_unused(self, handler):
        return {key: value for key, value in handler(self).items() if value is not None}


class RetrainingSection(_Strict):
    budgets: tuple[int, ...] = Field(min_length=1)
    schedules: tuple[str, ...] = tuple(SCHEDULES)

    @model_validator(mode="after")
    def _known_schedules(self) -> "RetrainingSection":
        unknown = [s for s in self.schedules if s not in SCHEDULES]
        if unknown:
            raise ValueError(f"unknown schedule {unknown[0]!r}; choose from {', '.join(SCHEDULES)}")
        if any(b <= 0 for b in self.budgets):
            raise ValueError("budgets must be positive epoch counts")
        return self


class PruningSection(_Strict):
    methods: tuple[str, ...] = Field(min_length=1)
    targets: tuple[Target, ...] = Field(min_length=1)


class SeedsSection(_Strict):
    dense: tuple[int, ...] = Field(min_length=1)
    runs: tuple[int, ...] = Field(min_length=1)


class QuickSection(_Strict):
    """A smaller grid for a first look; any field left out falls back to the full grid's."""

    methods: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    schedules: tuple[str, ...] | None = None
    budgets: tuple[int, ...] | None = None
    seeds: tuple[int, ...] | None = None


class Track(_Strict):
    name: str
    description: str
    data: DataSection
    model: ModelSection
    recipe: Recipe
    retraining: RetrainingSection
    pruning: PruningSection
    seeds: SeedsSection
    quick: QuickSection = QuickSection()

    def target(self, name: str) -> Target:
        for target in self.pruning.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.pruning.targets)
        raise BenchError(f"track '{self.name}' has no target '{name}'; its targets are: {known}")


def tracks_dir(explicit: str | Path | None = None) -> Path:
    """Where track files live: an explicit dir (which must exist), $PRUNE_BENCH_TRACKS, ./bench/tracks,
    or the checkout's."""
    named = explicit or os.environ.get(TRACKS_ENV)
    if named:
        if not Path(named).is_dir():
            raise BenchError(f"track directory {named} does not exist; point --tracks-dir or {TRACKS_ENV} at a folder")
        return Path(named)
    for candidate in (Path.cwd() / "bench" / "tracks", Path(__file__).resolve().parents[1] / "bench" / "tracks"):
        if candidate.is_dir():
            return candidate
    raise BenchError(
        f"no track directory found (looked at {explicit or '$' + TRACKS_ENV}, ./bench/tracks); "
        f"run from the repository root or set {TRACKS_ENV}=DIR"
    )


def _describe_error(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    got = "" if first["type"] == "missing" else f", got {first['input']!r}"
    return f"{path}: key '{key}': {message}{got}"


def load_track_file(path: str | Path) -> Track:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BenchError(f"cannot read track file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    try:
        track = Track.model_validate(raw)
    except ValidationError as exc:
        raise BenchError(_describe_error(path, exc)) from None
    if track.name != path.stem:
        raise BenchError(f"{path}: key 'name': must equal the file name '{path.stem}', got {track.name!r}")
    return track


def list_tracks(directory: str | Path | None = None) -> list[Track]:
    return [load_track_file(p) for p in sorted(tracks_dir(directory).glob("*.toml"))]


SHIPPED_TRACKS = Path(__file__).resolve().parents[2] / "bench" / "tracks"
"""The checkout's own track files."""


def check_not_shadowing(path: Path, explicit: str | Path | None = None) -> None:
    """A track file found in the working directory's ``bench/tracks`` that differs from the shipped file of
    the same name is refused, naming both: it would silently replace the official track. Named on purpose
    (``--tracks-dir`` or $PRUNE_BENCH_TRACKS), it is used."""
    if explicit or os.environ.get(TRACKS_ENV):
        return
    shipped = SHIPPED_TRACKS / path.name
    if shipped.exists() and shipped.resolve() != path.resolve() and shipped.read_bytes() != path.read_bytes():
        raise BenchError(f"{path} shadows the shipped track {shipped} and differs from it; remove or rename it, or "
                         f"use it on purpose with {TRACKS_ENV}={path.parent}")


def load_track(name: str, directory: str | Path | None = None) -> Track:
    folder = tracks_dir(directory)
    path = folder / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
        raise BenchError(f"unknown track '{name}' (no {path}); known tracks: {known}")
    check_not_shadowing(path, directory)
    return load_track_file(path)
