"""The results layout: the one place that knows the folder and file names under a results root.

```
<root>/<track>/<run id>.json             one sealed record per run
<root>/<track>/dense/<dense hash>.pt     cached dense baselines (+ .json metadata)
<root>/<track>/checkpoints/<run id>.pt   per-epoch training state of unfinished runs
<root>/<track>/checkpoints/dense-<hash>.pt  per-epoch state of a dense baseline in training
<root>/<track>/locks/<name>.lock         advisory locks of runs and dense baselines being computed
<root>/<track>/tuning/<study>.json       exported tuning histories (R10 reads them)
<root>/<track>/optuna.db                 the default Optuna storage
<root>/<track>/report/                   that track's audit report
<root>/<track>/submissions/<method>/     a submission's verdict and report
<root>/report/                           the audit report across tracks
<root>/leaderboard/index.html            the leaderboard web page
<root>/quarantine/<track>/<run id>.json  stale records set aside (``bench results clean``); never audited
<root>/.bench-cache/records-<track>.json  digests of the record files whose seal was verified (a cache)
<root>/.bench-cache/plots/<key>.json      rendered plots, keyed by a digest of their inputs and code
<root>/.bench-cache/audit-<track>.pickle  the last audit of a track (``audit-all`` for every track),
                                          kept with the digest of its inputs and code (signed)
<root>/.bench-cache/audit-<track>.json.pickle  that audit's ``audit.json`` text (signed)
<root>/.bench-cache/leaderboard-<track>.pickle  that audit's leaderboard (signed)
```

The cache is never a source of truth: every record file is read on every call and fully re-checked
unless its bytes hash to a digest the index lists as verified, a kept audit is used only when the
digest of every input's bytes and of the code is the one it was computed from, and a missing,
corrupt or foreign cache is ignored.

Everything else asks a ``ResultsLayout`` for a path, so a new kind of output is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPORT = "report"
"""The report folder's name, at the root and in every track; never a track's name."""

LEADERBOARD = "leaderboard"
"""The leaderboard web page's folder at the root; never a track's name."""

CACHE = ".bench-cache"
"""The cache folder at the root (ignored by git); never a track's name, like every dot-folder."""

QUARANTINE = "quarantine"
"""The folder of set-aside stale records at the root; never a track's name, so the audit never reads it."""


@dataclass(frozen=True)
class ResultsLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def track(self, track: str) -> Path:
        return self.root / track

    def record(self, track: str, run_id: str) -> Path:
        return self.track(track) / f"{run_id}.json"

    def records(self, track: str) -> list[Path]:
        """The track's record files, in name order (only records sit at a track folder's top level)."""
        return sorted(self.track(track).glob("*.json"))

    def dense(self, track: str) -> Path:
        return self.track(track) / "dense"

    def dense_files(self, track: str, dense_hash: str) -> tuple[Path, Path]:
        """A dense baseline's weights and its metadata."""
        return self.dense(track) / f"{dense_hash}.pt", self.dense(track) / f"{dense_hash}.json"

    def checkpoints(self, track: str) -> Path:
        return self.track(track) / "checkpoints"

    def dense_checkpoint(self, track: str, dense_hash: str) -> Path:
        """Per-epoch training state of a dense baseline not yet finished."""
        return self.checkpoints(track) / f"dense-{dense_hash}.pt"

    def locks(self, track: str) -> Path:
        return self.track(track) / "locks"

    def lock(self, track: str, name: str) -> Path:
        """The advisory lock file of a run id (or of ``dense-<hash>``), held while it is being computed."""
        return self.locks(track) / f"{name}.lock"

    def tuning(self, track: str) -> Path:
        return self.track(track) / "tuning"

    def history(self, track: str, study: str) -> Path:
        return self.tuning(track) / f"{study}.json"

    def storage(self, track: str) -> str:
        """The default Optuna storage URL of a track (an SQLite file beside its records)."""
        return f"sqlite:///{(self.track(track) / 'optuna.db').resolve()}"

    def report(self, track: str | None = None) -> Path:
        return (self.track(track) if track else self.root) / REPORT

    def submission(self, track: str, method: str) -> Path:
        return self.track(track) / "submissions" / method

    def leaderboard(self) -> Path:
        return self.root / LEADERBOARD

    def quarantine(self, track: str) -> Path:
        """Where ``bench results clean`` moves a track's stale records (outside every track folder)."""
        return self.root / QUARANTINE / track

    def cache(self) -> Path:
        return self.root / CACHE

    def record_index(self, track: str) -> Path:
        """Digests of the track's record files whose schema, id and seal were verified (a cache)."""
        return self.cache() / f"records-{track}.json"

    def audit_memo(self, track: str | None = None) -> Path:
        """The last audit of one track (or of every track), with the digest of what it was computed from."""
        return self.cache() / f"audit-{track or 'all'}.pickle"

    def payload_memo(self, track: str | None = None) -> Path:
        """The text of the last audit's ``audit.json`` (of one track or of every track)."""
        return self.cache() / f"audit-{track or 'all'}.json.pickle"

    def leaderboard_memo(self, track: str | None = None) -> Path:
        """The leaderboard of the last audit (of one track or of every track)."""
        return self.cache() / f"leaderboard-{track or 'all'}.pickle"

    def plot_cache(self) -> Path:
        return self.cache() / "plots"

    def tracks(self) -> list[str]:
        """Track folders under the root, in name order."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and p.name not in (REPORT, LEADERBOARD, QUARANTINE)
                      and not p.name.startswith("."))
