"""Heading anchors as GitHub makes them (lower case, punctuation dropped, spaces to hyphens, repeats
numbered) and the table of contents that links to them, so the links in REPORT.md, report.html and
the leaderboard page work the same on GitHub and offline."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from harness.publish.report.formatting import section

_NOT_SLUG = re.compile(r"[^\w\- ]", re.UNICODE)
_MARKUP = re.compile(r"[*`]|\[([^\]]*)\]\([^)]*\)")


def slug(text: str) -> str:
    """GitHub's heading anchor: markup removed, lower case, punctuation dropped, spaces to hyphens."""
    plain = _MARKUP.sub(lambda m: m.group(1) or "", text)
    return _NOT_SLUG.sub("", plain.strip().lower()).replace(" ", "-")


def anchors(headings: Iterable[str]) -> list[str]:
    """Unique anchors in order of appearance (a repeat gets ``-1``, ``-2``, ... as on GitHub)."""
    seen: Counter[str] = Counter()
    out = []
    for heading in headings:
        base = slug(heading)
        out.append(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def headings(lines: Sequence[str]) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading, in order."""
    found = []
    for line in lines:
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            found.append((level, line[level:].strip()))
    return found


def _shorter(links: list[str]) -> list[str]:
    """Subsection links without the words they all start with (``digits-cnn · ``), when they share some."""
    texts = [link[1:link.index("](")] for link in links]
    prefix = texts[0].split(" · ")[0] + " · "
    if len(texts) < 2 or not all(t.startswith(prefix) and len(t) > len(prefix) for t in texts):
        return links
    return [f"[{t[len(prefix):]}]({link[link.index('](') + 2:-1]})" for t, link in zip(texts, links)]


def contents(lines: Sequence[str], before: Sequence[str]) -> list[str]:
    """The table of contents: one item per section, its subsections linked on the same line;
    ``before`` are the headings above it (they take part in numbering repeated anchors)."""
    found = headings(lines)
    ids = anchors([*before, *(text for _, text in found)])[len(before):]
    items: list[tuple[str, list[str]]] = []
    for (level, text), anchor in zip(found, ids):
        if level == 2:
            items.append((f"[{text}](#{anchor})", []))
        elif level == 3 and items:
            items[-1][1].append(f"[{text}](#{anchor})")
    body = [f"- {head}" + (": " + " · ".join(_shorter(subs)) if subs else "") for head, subs in items]
    return [*section("Contents"), *body, ""]
