"""``bench results clean``: setting aside the records that do not count on a track's leaderboard."""

from __future__ import annotations

import typer

from harness.cli import common
from harness.core.layout import ResultsLayout


@common.user_errors
def clean(
    results: common.ResultsDir = common.DEFAULT_RESULTS,
    track: common.TrackName = common.DEFAULT_TRACK,
    dry_run: bool = typer.Option(False, "--dry-run", help="List the stale records and why; move nothing."),
    as_json: common.AsJson = False,
) -> None:
    """Move the track's stale records to RESULTS/quarantine/TRACK, which the audit never reads. A record is
    stale when it is unreadable, from another harness version or method version, or outside the
    leaderboard's protocol; each is listed by path with the reason."""
    from harness.protocols.clean import quarantine, stale_records
    from harness.track.definition import load_track
    from harness.track.leaderboard import load_protocol

    layout = ResultsLayout(results)
    loaded = load_track(track)
    stale = stale_records(layout, load_protocol(loaded))
    moved = [] if dry_run else quarantine(layout, loaded.name, stale)
    if as_json:
        common.print_json({"track": loaded.name, "dry_run": dry_run, "quarantine": str(layout.quarantine(loaded.name)),
                           "stale": [{"path": str(s.path), "reason": s.reason} for s in stale],
                           "moved": [str(p) for p in moved]})
        return
    for item in stale:
        common.out.print(f"{item.line()}", highlight=False, soft_wrap=True)
    verb = "would move" if dry_run else "moved"
    common.out.print(f"{loaded.name}: {len(stale)} stale records; {verb} them to {layout.quarantine(loaded.name)}",
                     highlight=False)
