"""Each method's colour and marker, one pair per method across every plot of a report, so a reader
follows a method from figure to figure.

The palette is colour-blind safe (Okabe & Ito's eight, then six of Paul Tol's muted colours) and
pairs with fourteen distinct markers, so fourteen methods -- the digits leaderboard's -- stay apart in colour
*and* shape, more in the pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255",
           "#999933", "#332288", "#44AA99", "#CC6677", "#117733", "#F0E442")
"""Okabe & Ito's colour-blind-safe eight with Paul Tol's wine, olive, indigo, teal, rose and green (the pale
yellow last)."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*", "d", "8")
DENSE_COLOR = "0.45"
"""The grey of the dense model's reference line."""


@dataclass(frozen=True)
class Look:
    color: str
    marker: str


def looks(methods: Sequence[str]) -> dict[str, Look]:
    """One colour and marker per method (sorted by name), the same in every plot of a report."""
    return {m: Look(PALETTE[i % len(PALETTE)], MARKERS[(i + i // len(MARKERS)) % len(MARKERS)])
            for i, m in enumerate(sorted(set(methods)))}
