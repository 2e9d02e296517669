"""Reports of an audit: ``REPORT.md``, a self-contained ``report.html``, ``audit.json`` and the
plots as SVG and PNG -- byte-identical for the same records, claims, configuration and seed."""

from __future__ import annotations

from pathlib import Path

from harness.audit.engine import AuditResult
from harness.publish.leaderboard import Leaderboard
from harness.publish.report.html import render_html
from harness.publish.report.markdown import render_markdown
from harness.publish.report.payload import audit_payload, dumps
from harness.publish.report.plots import make_plots

REPORT_FILES = ("REPORT.md", "report.html", "audit.json")


def write_report(result: AuditResult, leaderboard: Leaderboard, out_dir: str | Path) -> list[Path]:
    """Write every report file into ``out_dir`` (created if needed); returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = make_plots(result)
    markdown = render_markdown(result, leaderboard, plots)
    files = {
        "REPORT.md": markdown,
        "report.html": render_html(markdown, plots),
        "audit.json": dumps(audit_payload(result, leaderboard)),
    }
    written = []
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    for plot in plots:
        (out / f"{plot.name}.svg").write_text(plot.svg, encoding="utf-8")
        (out / f"{plot.name}.png").write_bytes(plot.png)
        written += [out / f"{plot.name}.svg", out / f"{plot.name}.png"]
    return written
