"""Stale records: records in a track's folder that do not count on its leaderboard, and setting them aside.

A record is stale when it is unreadable, when a different harness version made it, when its method's
file has changed since (another ``method_digest``), or when its cell -- target, schedule, budget, seed,
twin -- is outside the leaderboard's protocol (an interrupted attempt under another protocol leaves
those). Stale records never fail a submission: they are listed by path with the reason, and
``bench results clean`` moves them to the layout's quarantine folder, which the audit never reads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness import __version__
from harness.core.layout import ResultsLayout
from harness.methods.plugins import registered_digest
from harness.run.record import read_record
from harness.track.leaderboard import LeaderboardProtocol

CLEAN_COMMAND = "bench results clean"


@dataclass(frozen=True)
class StaleRecord:
    path: Path
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


def stale_records(layout: ResultsLayout, protocol: LeaderboardProtocol) -> list[StaleRecord]:
    """The track's records that do not count, each with why, in file-name order."""
    counted = {cell[1:] for cell in protocol.cells(("",))}
    digests: dict[str, str | None] = {}
    found = []
    for path in layout.records(protocol.track):
        try:
            record = read_record(path)
        except ValueError as exc:
            found.append(StaleRecord(path, f"unreadable record: {exc}"))
            continue
        if record.harness_version != __version__:
            found.append(StaleRecord(path, f"made by harness {record.harness_version}, this is {__version__}"))
            continue
        if record.method not in digests:
            digests[record.method] = registered_digest(record.method)
        current = digests[record.method]
        if record.method_digest is not None and current is not None and record.method_digest != current:
            found.append(StaleRecord(path, f"made by another version of {record.method}'s file "
                                           f"(method digest {record.method_digest[:12]}, now {current[:12]})"))
            continue
        cell = (record.target, record.schedule, record.budget_epochs, record.twin, record.seed)
        if cell not in counted or record.twin_trains:  # the protocol counts plain twins only
            where = "" if protocol.source is None else f" ({protocol.source})"
            found.append(StaleRecord(path, f"{record.config().label} is outside the "
                                           f"leaderboard protocol v{protocol.version}{where}"))
    return found


def quarantine(layout: ResultsLayout, track: str, stale: list[StaleRecord]) -> list[Path]:
    """Move the stale records into ``layout.quarantine(track)``; where each one went."""
    folder = layout.quarantine(track)
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for item in stale:
        destination = folder / item.path.name
        os.replace(item.path, destination)
        moved.append(destination)
    return moved
