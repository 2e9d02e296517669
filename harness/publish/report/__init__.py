"""Reports of an audit: ``REPORT.md``, a self-contained ``report.html``, ``audit.json`` and the
plots as SVG and PNG -- byte-identical for the same records, claims, configuration and seed."""

from __future__ import annotations

from pathlib import Path

from harness.audit import memo
from harness.audit.engine import AuditResult
from harness.core.atomic import write_bytes_atomic, write_text_atomic
from harness.publish.leaderboard import Leaderboard, build_leaderboard
from harness.publish.report.html import render_html
from harness.publish.report.markdown import render_markdown
from harness.publish.report.payload import audit_payload, dumps

REPORT_FILES = ("REPORT.md", "report.html", "audit.json")
PLOT_PREFIXES = ("budget-", "twin-", "retraining-", "macs-", "curves-", "tuning-")
"""Plot files a report writes (or wrote in earlier versions); stale ones are removed on rewrite."""


def write_report(result: AuditResult, out_dir: str | Path, plot_cache: str | Path | None = None,
                 payload_memo: str | Path | None = None) -> list[Path]:
    """Write every report file into ``out_dir`` (created if needed), each atomically (a temporary file, fsynced,
    then renamed over the old one); returns the paths written.
    ``plot_cache`` (a folder) keeps drawn plots by a digest of their inputs and code, so an unchanged
    plot is not drawn again. ``payload_memo`` (a file) keeps the text of ``audit.json`` for the inputs the
    result was audited from (:attr:`AuditResult.inputs`), since indenting it is most of a large report's
    time. The files written are byte-identical with or without either."""
    # matplotlib is imported only when a plot is drawn, not by `bench leaderboard` or a cached report
    from harness.publish.report.plots import make_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    leaderboard = build_leaderboard(result)
    plots = make_plots(result, plot_cache)
    markdown = render_markdown(result, leaderboard, plots)
    files = {
        "REPORT.md": markdown,
        "report.html": render_html(markdown, plots),
        "audit.json": _payload_text(result, leaderboard, Path(payload_memo) if payload_memo else None),
    }
    written = []
    names = {f"{plot.name}.{suffix}" for plot in plots for suffix in ("svg", "png")}
    for stale in sorted(out.iterdir()):
        if stale.name not in names and stale.suffix in (".svg", ".png") and stale.name.startswith(PLOT_PREFIXES):
            stale.unlink()  # a plot of an earlier report that this one no longer draws
    for name, text in files.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    for plot in plots:
        write_text_atomic(out / f"{plot.name}.svg", plot.svg)
        write_bytes_atomic(out / f"{plot.name}.png", plot.png)
        written += [out / f"{plot.name}.svg", out / f"{plot.name}.png"]
    return written


def _payload_text(result: AuditResult, leaderboard: Leaderboard, kept: Path | None) -> str:
    key = memo.derived_key(result.inputs, "audit.json")
    text = memo.recall(kept, key) if kept is not None else None
    if not isinstance(text, str):
        text = dumps(audit_payload(result, leaderboard))
        if kept is not None:
            memo.remember(kept, key, text)
    return text
