"""The leaderboard as Markdown: one ranked table per track, target, budget and family, printed by
``bench leaderboard --markdown`` and, in REPORT.md, with only each target's largest budget open."""

from __future__ import annotations

from typing import Callable

from harness.publish.leaderboard import Leaderboard, Table
from harness.publish.report.formatting import (
    FAIL_MARK,
    collapsed,
    interval,
    pct,
    pp,
    section,
    table,
)
from harness.publish.report.labels import budget_label


def _leaderboard_table(board: Table) -> list[str]:
    detectable = board.detectable
    note = (f"Detectable difference between entries: {pct(detectable[0])}–{pct(detectable[1])} pp."
            if detectable else "Detectable difference: – (fewer than two entries, or too few seeds).")
    rows = []
    for e in board.entries:
        rank = f"{e.rank}=" if e.tied else str(e.rank)
        flags = f"{FAIL_MARK} fail: {', '.join(e.flags)}" if e.flags else ""
        twin = f"{pp(e.twin_gap)} {interval(*e.twin_gap_ci) if e.twin_gap_ci else ''} {e.twin_verdict or ''}".strip() \
            if e.twin_gap is not None else "no twin"
        rows.append((rank, e.method, e.schedule_shown, str(e.n), f"{pct(e.mean)} ± {pct(e.std)}", interval(e.ci_low, e.ci_high),
                     twin, flags))
    return section(f"{board.track} · {board.target} · {budget_label(board.budget)} · {board.family}", note,
                   level=3) + table(
        ("rank", "method", "best schedule (val)", "n", "test acc ± std", "95% CI", "gap to random twin (pp)", "marked"),
        rows, "lllrrrll")


def leaderboard_markdown(leaderboard: Leaderboard) -> list[str]:
    """Every table open, as ``bench leaderboard --markdown`` prints it."""
    return _leaderboard(leaderboard, lambda board: True)


def leaderboard_section(leaderboard: Leaderboard) -> list[str]:
    """The leaderboard in the report: the largest budget of each target open, the others collapsed."""
    largest: dict[tuple[str, str], int] = {}
    for board in leaderboard.tables:
        key = (board.track, board.target)
        largest[key] = max(largest.get(key, board.budget), board.budget)
    return _leaderboard(leaderboard, lambda board: board.budget == largest[(board.track, board.target)])


def _leaderboard(leaderboard: Leaderboard, is_open: Callable[[Table], bool]) -> list[str]:
    lines = section(
        "Leaderboard",
        "Ranked by mean test accuracy under each method's best schedule (chosen on validation accuracy) at "
        "equal budget; structured and unstructured (masked) methods are ranked apart. An entry's rank is one more "
        "than the number of reference methods the audit's verdicts find better than it (Holm within each "
        "method's family, as in the comparison tables); `2=` marks a shared rank. Only references move ranks, "
        "so no other submission changes an entry's rank. Entries touched by a fail finding are marked, not "
        "hidden. The budget is each run's total training; a method that spends part of it itself shows the split "
        "in epochs beside its schedule, e.g. `ft (5+5)`: before pruning, then after (R15).")
    if not leaderboard.tables:
        return lines + ["No reproduced entries to rank.", ""]
    for board in leaderboard.tables:
        body = _leaderboard_table(board)
        lines += body if is_open(board) else [body[0], ""] + collapsed(f"{len(board.entries)} entries", body[2:])
    return lines
