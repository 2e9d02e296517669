"""How numbers and tables read in every Markdown the harness writes -- the report, the leaderboard
page, ``bench`` output: accuracies in percent, differences in percentage points (pp), p-values,
intervals, verdict marks, pipe tables, collapsed blocks and section headings."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

VERDICT_MARK = {"better": "**better**", "worse": "**worse**", "tie": "tie", "equivalent": "equivalent"}
VERDICT_SYMBOL = {"better": "▲", "worse": "▼", "equivalent": "≈", "tie": "○"}
"""The first character of a matrix cell; report.html colours the cell by it."""
FAIL_MARK = "⚠"


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def pp(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:+.{digits}f}"


def pvalue(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "<1e-4" if value < 1e-4 else f"{value:.3g}"


def interval(low: float | None, high: float | None) -> str:
    return f"[{pct(low)}, {pct(high)}]"


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l or r (default l)."""
    marks = [":---" if (align[i:i + 1] or "l") == "l" else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(escape(str(cell)) for cell in row) + " |" for row in rows]
    return lines + [""]


def collapsed(summary: str, body: list[str]) -> list[str]:
    """A ``<details>`` block (GitHub renders the Markdown inside; report.html keeps it collapsed)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "</details>", ""]


def section(title: str, *paragraphs: str, level: int = 2) -> list[str]:
    """A heading and the paragraphs under it, each followed by a blank line, as every section starts."""
    return [f"{'#' * level} {title}", "", *(line for paragraph in paragraphs for line in (paragraph, ""))]
