"""The leaderboard web page (``bench leaderboard --html DIR``): one self-contained page with a section
per track, target and budget, sortable columns, a filter box, shared ranks, marked entries and
links to submission reports -- checked as HTML, and in a real browser (headless Chromium over the
DevTools protocol) when Debian's ``chromium`` is installed.

Set ``BENCH_SCREENSHOTS=docs/img`` to write the README's screenshots of the committed leaderboard
page and report there (they are taken by the browser test below).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from audit_fixtures import cell, fair_records, noisy, replace_cell
from browser import Browser, find_chromium
from typer.testing import CliRunner

from harness.audit import audit
from harness.cli import app
from harness.core.layout import ResultsLayout
from harness.publish.leaderboard import build_leaderboard
from harness.publish.leaderboard_page import render_page, write_leaderboard_page
from harness.run.record import write_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_PAGE = ROOT / "results" / "leaderboard" / "index.html"
COMMITTED_REPORT = ROOT / "results" / "digits-cnn" / "report" / "report.html"
SCREEN = (1400, 900)
MAX_REPORT_SCREENS = 15


def records():
    """Two budgets; gamma ties alpha (a shared rank); beta's clr cell fails R3 (a marked entry)."""
    tied = cell("gamma", noisy(0.9405, 6, 3, scale=0.006), schedule="clr") + cell(
        "gamma", noisy(0.86, 6, 4), schedule="clr", twin=True) + cell("gamma", noisy(0.80, 6, 5)) + cell(
        "gamma", noisy(0.80, 6, 6), twin=True)
    longer = cell("alpha", noisy(0.95, 6, 9), budget=20) + cell("alpha", noisy(0.88, 6, 10), budget=20, twin=True)
    return replace_cell(fair_records(), "beta", "clr", macs_after=50000) + tied + longer


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    result = audit(records())
    board = build_leaderboard(result)
    folder = tmp_path_factory.mktemp("site")
    layout = ResultsLayout(folder / "results")
    report = layout.submission("toy", "gamma") / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<!DOCTYPE html><title>gamma</title>")
    return write_leaderboard_page(board, folder / "leaderboard", result, layout), board


def test_the_page_is_self_contained_and_deterministic(page):
    path, board = page
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text and "<script>" in text
    for external in ("<link", "src=", "http://", "https://", "@import", "url("):
        assert external not in text
    assert render_page(board, None, {}) == render_page(board, None, {})


def test_a_section_per_track_target_and_budget_with_shared_ranks_marks_and_links(page):
    path, _ = page
    text = path.read_text()
    sections = re.findall(r'<section class="board" id="([^"]+)"', text)
    assert sections == ["toy--half--20-epochs", "toy--half--10-epochs"]  # largest budget first
    assert all(f'href="#{s}"' in text for s in sections)
    assert text.count('<td class="r" data-v="1">1=</td>') == 2  # alpha and gamma share rank 1
    marked = re.search(r'<tr class="marked"[^>]*>(.*?)</tr>', text).group(1)
    assert "beta" in marked and '<abbr title="R3: compression mismatch' in marked
    assert '<a href="../results/toy/submissions/gamma/report.html">gamma</a>' in text
    assert ">alpha</td>" in text  # no submission report: no link


def test_leaderboard_command_writes_the_page(tmp_path):
    results = tmp_path / "results"
    for record in fair_records():
        write_record(ResultsLayout(results), record)
    outcome = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--html", str(tmp_path / "site"),
                                       "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "site" / "index.html").is_file() and outcome.stdout.lstrip().startswith("{")


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: install Debian's `chromium` (.ci/run does) to test in a browser")


def _screenshots(tmp_path: Path) -> Path:
    target = os.environ.get("BENCH_SCREENSHOTS")
    folder = Path(target) if target else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _visible(browser: Browser, column: int) -> list[str]:
    return browser.evaluate(
        f"Array.from(document.querySelectorAll('section:not([hidden]) .family:not([hidden]) tbody tr:not([hidden])'))"
        f".map(r => r.cells[{column}].textContent.trim())")


@needs_chromium
def test_the_page_sorts_filters_and_logs_no_error_in_chromium(page, tmp_path):
    path, board = page
    with Browser(CHROMIUM, *SCREEN) as browser:
        browser.open(path.as_uri())
        assert browser.errors() == []
        total = sum(len(t.entries) for t in board.tables)
        assert browser.evaluate("document.getElementById('shown').textContent") == f"{total} of {total} entries"
        first = "document.querySelector('section.board table')"
        header = f"{first}.tHead.rows[0].cells[4]"  # test acc %
        values = f"Array.from({first}.tBodies[0].rows).map(r => parseFloat(r.cells[4].textContent))"
        browser.evaluate(f"{header}.click()")
        ascending = browser.evaluate(values)
        assert ascending == sorted(ascending) and browser.evaluate(f"{header}.getAttribute('aria-sort')") == "ascending"
        browser.evaluate(f"{header}.click()")
        assert browser.evaluate(values) == sorted(ascending, reverse=True)
        method = f"{first}.tHead.rows[0].cells[1]"
        browser.evaluate(f"{method}.click()")
        names = browser.evaluate(f"Array.from({first}.tBodies[0].rows).map(r => r.cells[1].textContent)")
        assert names == sorted(names)

        browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'gamma';"
                         " f.dispatchEvent(new Event('input')); })()")
        assert set(_visible(browser, 1)) == {"gamma"}
        assert browser.evaluate("document.querySelectorAll('section.board:not([hidden])').length") == 1
        browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'marked r3';"
                         " f.dispatchEvent(new Event('input')); })()")
        assert _visible(browser, 1) == ["beta"]
        browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'no-such-method';"
                         " f.dispatchEvent(new Event('input')); })()")
        assert _visible(browser, 1) == []
        assert browser.evaluate("getComputedStyle(document.querySelector('.empty')).display") == "block"
        browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = '';"
                         " f.dispatchEvent(new Event('input')); })()")
        assert len(_visible(browser, 1)) == total
        assert browser.errors() == []
        shot = browser.screenshot(tmp_path / "leaderboard-test.png")
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
@pytest.mark.skipif(not COMMITTED_PAGE.is_file(), reason="no committed leaderboard page under results/")
def test_the_committed_leaderboard_page_in_chromium(tmp_path):
    with Browser(CHROMIUM, *SCREEN) as browser:
        browser.open(COMMITTED_PAGE.as_uri())
        assert browser.errors() == []
        assert browser.evaluate("document.querySelectorAll('section.board').length") > 0
        browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'clr';"
                         " f.dispatchEvent(new Event('input')); })()")
        shown = browser.evaluate("Array.from(document.querySelectorAll('tbody tr:not([hidden])'))"
                                 ".map(r => r.cells[2].textContent)")
        assert "clr" in shown and {text.split(" (")[0] for text in shown} == {"clr"}  # "clr (5+5)": a split
        browser.evaluate("document.querySelector('section.board table').tHead.rows[0].cells[7].click()")  # vs twin
        browser.screenshot(_screenshots(tmp_path) / "leaderboard.png", full_page=True, max_height=1300)
        assert browser.errors() == []


@needs_chromium
@pytest.mark.skipif(not COMMITTED_REPORT.is_file(), reason="no committed digits-cnn report under results/")
def test_the_committed_report_reads_at_a_glance_in_chromium(tmp_path):
    with Browser(CHROMIUM, *SCREEN) as browser:
        browser.open(COMMITTED_REPORT.as_uri())
        assert browser.errors() == []
        height = browser.page_height()
        assert height <= MAX_REPORT_SCREENS * SCREEN[1], f"report.html is {height} px tall at {SCREEN[0]} px"
        assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
        order = browser.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.id)")
        assert order[:3] == ["contents", "summary", "method-vs-random-twin"]
        assert browser.evaluate("document.querySelector('figure svg') !== null")
        browser.screenshot(_screenshots(tmp_path) / "report.png", full_page=True, max_height=2100)
