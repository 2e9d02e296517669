"""``report.html``: the Markdown report as one self-contained page (inline CSS, plots as inline SVG).

The page is rendered from the Markdown text itself, so the two never disagree. The converter
handles exactly the Markdown the report writes -- headings, paragraphs, bullet lists, pipe tables,
images, inline code, bold, italics and links -- and escapes everything else.
"""

from __future__ import annotations

import html
import re
from typing import Sequence

from harness.publish.report.plots import Plot

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .85rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; }
th { background: #f6f8fa; }
td.r, th.r { text-align: right; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f6f8fa; padding: .1rem .25rem; border-radius: 4px; font-size: .85em; }
li { margin: .2rem 0; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
"""
_INLINE = [
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\.svg\)$")
_PNG_LINK = re.compile(r"^\(\[PNG\]\([^)]+\)\)$")
_SVG_START = re.compile(r"<svg\b")


def inline(text: str) -> str:
    """Escape, then apply the inline markup (code spans first so their content stays literal)."""
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
        css = f' class="{align[column]}"' if column < len(align) and align[column] else ""
        return f"<{tag}{css}>{inline(text)}</{tag}>"

    head = "".join(cell("th", text, i) for i, text in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", text, i) for i, text in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone (no XML prolog or doctype), ready to embed."""
    match = _SVG_START.search(svg)
    return svg[match.start():].strip() if match else ""


def markdown_to_html(markdown: str, plots: Sequence[Plot]) -> str:
    svgs = {plot.name: plot for plot in plots}
    blocks: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or _PNG_LINK.match(line):
            index += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
            index += 1
        elif line.startswith("|"):
            end = index
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            blocks.append(_table(lines[index:end]))
            index = end
        elif line.startswith("- "):
            end = index
            while end < len(lines) and lines[end].startswith("- "):
                end += 1
            items = "\n".join(f"<li>{inline(item[2:])}</li>" for item in lines[index:end])
            blocks.append(f"<ul>\n{items}\n</ul>")
            index = end
        elif _IMAGE.match(line):
            alt, name = _IMAGE.match(line).groups()
            plot = svgs.get(name)
            blocks.append(f'<figure aria-label="{html.escape(alt)}">\n{inline_svg(plot.svg)}\n</figure>' if plot
                          else f"<p>{inline(alt)}</p>")
            index += 1
        else:
            end = index + 1
            while end < len(lines) and lines[end].strip() and not lines[end].startswith(("#", "|", "- ", "![")):
                end += 1
            blocks.append(f"<p>{inline(' '.join(lines[index:end]))}</p>")
            index = end
    return "\n".join(blocks)


def render_html(markdown: str, plots: Sequence[Plot], title: str = "prune-bench audit report") -> str:
    body = markdown_to_html(markdown, plots)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
