"""``report.html``: the Markdown report as one self-contained page (inline CSS, plots as inline SVG,
no script, nothing fetched).

The page is rendered from the Markdown text itself, so the two never disagree. The converter
handles exactly the Markdown the report writes -- headings (each with the anchor GitHub would give
it), paragraphs, bullet lists one level deep, pipe tables, images, inline code, bold, italics,
links and ``<details>``/``<summary>`` blocks -- and escapes everything else. A table cell that
starts with a verdict symbol (▲ ▼ ≈ ○) is coloured by it.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from harness.publish.report.anchors import anchors
from harness.publish.report.formatting import VERDICT_SYMBOL

if TYPE_CHECKING:
    from harness.publish.report.plots.canvas import Plot

CSS = """
:root { --better: #d7f0dd; --worse: #f8d4d0; --equivalent: #d8e8f6; --tie: #f1f1f1; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; line-height: 1.4; font-size: 15px; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; margin-bottom: .6rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin: 1.6rem 0 .6rem; }
h3 { margin: 1.1rem 0 .4rem; font-size: 1.05rem; }
h1 a.anchor, h2 a.anchor, h3 a.anchor { color: #b0b7bf; text-decoration: none; margin-left: .35rem;
       font-size: .8em; visibility: hidden; }
h1:hover a.anchor, h2:hover a.anchor, h3:hover a.anchor { visibility: visible; }
p { margin: .4rem 0; }
table { border-collapse: collapse; margin: .4rem 0 .9rem; font-size: .82rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .18rem .45rem; }
th { background: #f6f8fa; }
td.r, th.r { text-align: right; }
tr:nth-child(even) td { background: #fbfcfd; }
td.v-better { background: var(--better) !important; }
td.v-worse { background: var(--worse) !important; }
td.v-equivalent { background: var(--equivalent) !important; }
td.v-tie { background: var(--tie) !important; color: #57606a; }
code { background: #f6f8fa; padding: .1rem .25rem; border-radius: 4px; font-size: .85em; }
ul { margin: .3rem 0; padding-left: 1.4rem; }
li { margin: .15rem 0; }
details { margin: .3rem 0 .8rem; border: 1px solid #d0d7de; border-radius: 6px; padding: .3rem .6rem; }
summary { cursor: pointer; color: #0969da; }
figure { margin: .6rem 0; }
figure svg { width: 100%; height: auto; }
nav.contents li { margin: .1rem 0; }
"""
_INLINE = [
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\.svg\)$")
_PNG_LINK = re.compile(r"^\(\[PNG\]\([^)]+\)\)$")
_SVG_START = re.compile(r"<svg\b")
_SUMMARY = re.compile(r"^<summary>(.*)</summary>$")
_VERDICT_CLASS = {symbol: f"v-{verdict}" for verdict, symbol in VERDICT_SYMBOL.items()}


_MARKUP = frozenset("`*[")
"""What inline markup starts with; text with none of it is only escaped."""


@lru_cache(maxsize=None)
def inline(text: str) -> str:
    """Escape, then apply the inline markup (code spans first so their content stays literal). Cached: a
    report repeats the same cells (verdicts, numbers, names) thousands of times."""
    if _MARKUP.isdisjoint(text):
        return html.escape(text, quote=False)
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        escaped = html.escape(part, quote=False)
        for pattern, replacement in _INLINE:
            escaped = pattern.sub(replacement, escaped)
        out.append(escaped)
    return "".join(out)


def _row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
    return [c.strip().replace("\\|", "|") for c in cells]


def _table(lines: list[str]) -> str:
    header, marks, rows = _row(lines[0]), _row(lines[1]), [_row(line) for line in lines[2:]]
    align = ["r" if m.endswith(":") and not m.startswith(":") else "" for m in marks]

    def cell(tag: str, text: str, column: int) -> str:
        classes = [align[column]] if column < len(align) and align[column] else []
        if tag == "td" and text[:1] in _VERDICT_CLASS:
            classes.append(_VERDICT_CLASS[text[:1]])
        css = f' class="{" ".join(classes)}"' if classes else ""
        return f"<{tag}{css}>{inline(text)}</{tag}>"

    head = "".join(cell("th", text, i) for i, text in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", text, i) for i, text in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _list(lines: list[str]) -> str:
    """Bullet items, ``  - `` items nested one level under the item before them."""
    out = ["<ul>"]
    nested = False
    for line in lines:
        if line.startswith("  - "):
            if not nested:
                out[-1] = out[-1].removesuffix("</li>")
                out.append("<ul>")
                nested = True
            out.append(f"<li>{inline(line[4:])}</li>")
            continue
        if nested:
            out.append("</ul></li>")
            nested = False
        out.append(f"<li>{inline(line[2:])}</li>")
    if nested:
        out.append("</ul></li>")
    out.append("</ul>")
    return "\n".join(out)


def inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone (no XML prolog or doctype), ready to embed."""
    match = _SVG_START.search(svg)
    return svg[match.start():].strip() if match else ""


def _is_list(line: str, first: bool) -> bool:
    return line.startswith("- ") or (not first and line.startswith("  - "))


def markdown_to_html(markdown: str, plots: Sequence["Plot"]) -> str:
    svgs = {plot.name: plot for plot in plots}
    blocks: list[str] = []
    lines = markdown.splitlines()
    heading_ids = iter(anchors(line.lstrip("#").strip() for line in lines if line.startswith("#")))
    index = 0
    in_contents = False
    while index < len(lines):
        line = lines[index]
        if not line.strip() or _PNG_LINK.match(line):
            index += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            anchor = next(heading_ids)
            blocks.append(f'<h{level} id="{anchor}">{inline(line[level:].strip())}'
                          f'<a class="anchor" href="#{anchor}" aria-label="link to this section">#</a></h{level}>')
            in_contents = anchor == "contents"
            index += 1
        elif line == "<details>" or line == "</details>":
            blocks.append(line)
            index += 1
        elif _SUMMARY.match(line):
            blocks.append(f"<summary>{inline(_SUMMARY.match(line).group(1))}</summary>")
            index += 1
        elif line.startswith("|"):
            end = index
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            blocks.append(_table(lines[index:end]))
            index = end
        elif line.startswith("- "):
            end = index + 1
            while end < len(lines) and _is_list(lines[end], False):
                end += 1
            rendered = _list(lines[index:end])
            blocks.append(f'<nav class="contents">\n{rendered}\n</nav>' if in_contents else rendered)
            index = end
        elif _IMAGE.match(line):
            alt, name = _IMAGE.match(line).groups()
            plot = svgs.get(name)
            blocks.append(f'<figure aria-label="{html.escape(alt)}">\n{inline_svg(plot.svg)}\n</figure>' if plot
                          else f"<p>{inline(alt)}</p>")
            index += 1
        else:
            end = index + 1
            while end < len(lines) and lines[end].strip() and not lines[end].startswith(("#", "|", "- ", "![", "<")):
                end += 1
            blocks.append(f"<p>{inline(' '.join(lines[index:end]))}</p>")
            index = end
    return "\n".join(blocks)


def render_html(markdown: str, plots: Sequence["Plot"], title: str = "prune-bench audit report") -> str:
    body = markdown_to_html(markdown, plots)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
