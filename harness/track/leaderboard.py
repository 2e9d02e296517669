"""A leaderboard's protocol as data: the targets, schedules, budgets, seeds and twins that count.

A track says what *can* be run; its leaderboard file (``bench/leaderboards/<track>.toml``, beside the
tracks folder) says what a submission runs -- those cells and no others -- and which reference methods
it is compared with. The file is versioned: changing the cells that count is a new ``version``. A track
without a leaderboard file counts its whole grid (every target, schedule, budget and run seed, twins)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import BenchError
from harness.track.definition import Track, tracks_dir

_KEYS = {"track", "version", "targets", "schedules", "budgets", "seeds", "twins", "references"}


@dataclass(frozen=True)
class LeaderboardProtocol:
    track: str
    version: int
    targets: tuple[str, ...]
    schedules: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    twins: bool
    references: tuple[str, ...]
    source: Path | None
    """The protocol file, or None when the track has none (its whole grid counts)."""

    def cells(self, methods: tuple[str, ...] | None = None) -> set[tuple[str, str, str, int, bool, int]]:
        """(method, target, schedule, budget, twin, seed) of every run that counts, for ``methods``
        (default: the references); ``none`` runs at budget 0."""
        found = set()
        for method in self.references if methods is None else methods:
            for target in self.targets:
                for schedule in self.schedules:
                    for budget in (0,) if schedule == "none" else self.budgets:
                        for twin in (False, True) if self.twins else (False,):
                            found |= {(method, target, schedule, budget, twin, seed) for seed in self.seeds}
        return found

    def as_dict(self) -> dict:
        return {"track": self.track, "version": self.version, "targets": list(self.targets),
                "schedules": list(self.schedules), "budgets": list(self.budgets), "seeds": list(self.seeds),
                "twins": self.twins, "references": list(self.references),
                "source": None if self.source is None else str(self.source)}


def leaderboards_dir(tracks: str | Path | None = None) -> Path:
    """``leaderboards/`` beside the tracks folder in use."""
    return tracks_dir(tracks).parent / "leaderboards"


def load_protocol(track: Track, tracks: str | Path | None = None) -> LeaderboardProtocol:
    """The track's leaderboard protocol, checked against the track (every cell must be one it can run)."""
    path = leaderboards_dir(tracks) / f"{track.name}.toml"
    if not path.exists():
        return LeaderboardProtocol(track.name, 0, tuple(t.name for t in track.pruning.targets),
                                   tuple(track.retraining.schedules), tuple(track.retraining.budgets),
                                   tuple(track.seeds.runs), True, tuple(track.pruning.methods), None)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    unknown = sorted(set(raw) - _KEYS)
    missing = sorted(_KEYS - set(raw))
    if unknown or missing:
        raise BenchError(f"{path}: " + (f"unknown keys {unknown}" if unknown else f"missing keys {missing}")
                         + f"; a leaderboard file has exactly {sorted(_KEYS)}")
    protocol = LeaderboardProtocol(
        track=raw["track"], version=int(raw["version"]), targets=tuple(raw["targets"]),
        schedules=tuple(raw["schedules"]), budgets=tuple(int(b) for b in raw["budgets"]),
        seeds=tuple(int(s) for s in raw["seeds"]), twins=bool(raw["twins"]), references=tuple(raw["references"]),
        source=path)
    _check(protocol, track, path)
    return protocol


def _check(protocol: LeaderboardProtocol, track: Track, path: Path) -> None:
    def outside(name: str, given: tuple, allowed) -> None:
        extra = [value for value in given if value not in allowed]
        if extra or not given:
            raise BenchError(f"{path}: key '{name}': {extra or 'empty'} not among track '{track.name}''s "
                             f"{list(allowed)}; name only what the track defines")

    if protocol.track != track.name:
        raise BenchError(f"{path}: key 'track': must be '{track.name}', got {protocol.track!r}")
    outside("targets", protocol.targets, [t.name for t in track.pruning.targets])
    outside("schedules", protocol.schedules, track.retraining.schedules)
    outside("budgets", protocol.budgets, track.retraining.budgets)
    outside("references", protocol.references, track.pruning.methods)
    if len(set(protocol.seeds)) != len(protocol.seeds) or not protocol.seeds:
        raise BenchError(f"{path}: key 'seeds': give distinct run seeds, got {list(protocol.seeds)}")
