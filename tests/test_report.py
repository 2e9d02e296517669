"""Reports: byte-identical for the same records and seed, self-contained HTML, the JSON contract,
and ``bench audit``'s exit statuses and handling of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_fixtures import TARGET, TRACK, cell, fair_records, noisy, replace_cell
from typer.testing import CliRunner

from harness import __version__
from harness.audit import AuditConfig, audit
from harness.audit.claims import Claim
from harness.audit.reported import ReportedResult, to_records
from harness.audit.tuning import TuningStudy
from harness.cli import app
from harness.core.layout import ResultsLayout
from harness.publish.report import write_report
from harness.publish.report.html import markdown_to_html, render_html
from harness.run.cells import CellKey
from harness.run.record import write_record

runner = CliRunner()


def rich_audit(seed: int = 0):
    """Every report section at once: two tracks, a warning, a reported number, a tuned study, claims."""
    records = (fair_records() + fair_records(track="toy2") + cell("gamma", noisy(0.9, 6, 1))
               + cell("gamma", noisy(0.9, 6, 2), twin=True)
               + to_records(ReportedResult(track=TRACK, method="alpha", target=TARGET, schedule="ft",
                                           budget_epochs=10, test_acc=0.97), "Paper | A")
               + to_records(ReportedResult(track=TRACK, method="omega", target=TARGET, schedule="ft",
                                           budget_epochs=10, test_acc=0.97), "Paper B")
               + to_records(ReportedResult(track=TRACK, method="beta", target=TARGET, schedule="ft",
                                           budget_epochs=10, test_acc=0.9306, std=0.002, n=5), "Paper C")
               + to_records(ReportedResult(track="paper-only", method="alpha", target=TARGET, schedule="ft",
                                           budget_epochs=10, test_acc=0.9), "Paper D"))
    study = TuningStudy("alpha.ft", "alpha.json", CellKey(TRACK, "alpha", False, TARGET, "ft", 10), "val", "val_acc", 4,
                        (0.90, 0.92, 0.91, 0.93), 0.93)
    claims = [Claim(name="alpha beats beta", method="alpha", baseline="beta", track=TRACK, schedule="ft", budget=10),
              Claim(name="overall", method="alpha", baseline="beta", track="*")]
    return audit(records, claims=claims, studies=[study], config=AuditConfig(seed=seed))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One report of the rich audit with seed 7, written once for the tests that read it."""
    folder = tmp_path_factory.mktemp("report")
    result = rich_audit(seed=7)
    write_report(result, folder)
    return folder, result


def test_reports_are_byte_identical_for_the_same_records_and_seed(written, tmp_path):
    folder, _ = written
    result = rich_audit(seed=7)
    write_report(result, tmp_path)
    first = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    second = {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}
    assert first == second
    assert {"REPORT.md", "report.html", "audit.json"} <= set(first)
    for stem in ("retraining-toy-half", "curves-toy-half", "macs-toy", "tuning-toy", "retraining-toy2-half"):
        assert {f"{stem}.svg", f"{stem}.png"} <= set(first)


def test_the_report_puts_the_summary_first_and_the_full_tables_last_and_collapsed(written):
    folder, _ = written
    text = (folder / "REPORT.md").read_text()
    assert f"harness version: `{__version__}`" in text and "audit seed: `7`" in text
    order = ["## Contents", "## Summary", "## Claims", "## Method vs random twin", "## Accuracy vs retraining budget",
             "## Findings by rule", "## Leaderboard", "## More plots", "## Across tracks (R13)",
             "## Cells and comparisons", "## Rules"]
    assert [text.index(section) for section in order] == sorted(text.index(section) for section in order)
    cells = text[text.index("## Cells and comparisons"):text.index("## Rules")]
    assert cells.count("<details>") == cells.count("</details>") == cells.count("### ") > 0
    assert "records: **" in text and "findings: **0 fail**" not in text  # the rich audit has a fail finding
    assert "Paper \\| A" in text  # table cells escape pipes
    assert "Detectable difference between entries" in text
    svg = (folder / "macs-toy.svg").read_text()
    assert "<dc:date>" not in svg and "Date" not in svg


def test_findings_are_grouped_by_rule_with_the_fix_said_once(written):
    folder, result = written
    text = (folder / "REPORT.md").read_text()
    section = text[text.index("## Findings by rule"):text.index("## Leaderboard")]
    rules = {f.rule for f in result.findings}
    assert section.count("\n### ") == len(rules)
    for finding in result.findings:
        assert section.count(f"*Fix:* {finding.fix}") <= 1 and finding.message.replace("|", "\\|") in section
    severities = [s for s in ("fail", "warn", "info") if any(f.severity == s for f in result.findings)]
    first = [next(f.rule for f in result.findings if f.severity == s) for s in severities]
    assert [section.index(f"### {rule} ·") for rule in first] == sorted(section.index(f"### {rule} ·") for rule in first)


def test_the_twin_matrix_shows_every_verdict_with_its_difference_and_colours_it(written):
    folder, result = written
    text = (folder / "REPORT.md").read_text()
    matrix = text[text.index("## Method vs random twin"):text.index("## Accuracy vs retraining budget")]
    assert "### toy · half" in matrix and "### toy2 · half" in matrix
    assert "| alpha | structured | ▲ +" in matrix and "ft@10" in matrix and "clr@10" in matrix
    page = (folder / "report.html").read_text()
    assert '<td class="r v-better">▲ +' in page


def test_every_heading_has_an_anchor_the_contents_link_to(written):
    import re

    folder, _ = written
    page = (folder / "report.html").read_text()
    ids = re.findall(r'<h[1-6] id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) == len(re.findall(r"<h[1-6]", page))
    links = set(re.findall(r'href="#([^"]+)"', re.sub(r"<svg.*?</svg>", "", page, flags=re.S)))
    assert links <= set(ids) and {"summary", "method-vs-random-twin", "findings-by-rule", "toy--half"} <= links
    text = (folder / "REPORT.md").read_text()
    assert "(#cells-and-comparisons)" in text  # GitHub's anchors, so REPORT.md's contents work there too


def test_reported_numbers_show_the_papers_std_and_n(written):
    folder, result = written
    text = (folder / "REPORT.md").read_text()
    assert "- tracks: toy, toy2 (reproduced); paper-only, toy (reported)" in text
    row = next(line for line in text.splitlines() if "Paper C" in line and line.startswith("| beta"))
    assert "| 5 (paper) |" in row and "93.06 ± 0.20" in row and "t, from the paper's std and n" in row
    low, high = (float(v) for v in row.split("[")[1].split("]")[0].split(", "))
    assert low < 93.06 < high and high - low > 0.3
    single = next(line for line in text.splitlines() if "Paper B" in line and line.startswith("| omega"))
    assert "1 number" in single and "± –" in single and "0.00" not in single
    payload = json.loads((folder / "audit.json").read_text())
    paper = next(c for c in payload["cells"] if c["cell"].endswith("[reported: Paper C]"))
    assert (paper["reported_std"], paper["reported_n"]) == (0.002, 5)


def test_plots_are_publication_quality(written):
    from PIL import Image

    from harness.publish.report.plots.canvas import PNG_DPI
    from harness.publish.report.plots.looks import MARKERS, PALETTE, looks

    folder, _ = written
    assert PNG_DPI >= 150
    with Image.open(folder / "retraining-toy-half.png") as image:
        assert round(image.info["dpi"][0]) >= 150
    styles = looks([f"method-{i:02d}" for i in range(14)])  # the digits leaderboard's methods
    assert len({s.color for s in styles.values()}) == 14 and len({s.marker for s in styles.values()}) == 14
    assert {s.color for s in styles.values()} <= set(PALETTE) and len(MARKERS) >= 14
    many = looks([f"m{i:02d}" for i in range(30)])
    assert len({(s.color, s.marker) for s in many.values()}) == 30
    svg = (folder / "retraining-toy-half.svg").read_text()
    for text in ("toy · half", "structured · ft", "structured · clr", "random twin", "0 = none"):
        assert text in svg
    assert "toy: test accuracy vs MACs at 10 epochs" in (folder / "macs-toy.svg").read_text()
    curves = (folder / "curves-toy-half.svg").read_text()
    assert "validation accuracy" in curves and "learning rate" in curves


def test_html_is_self_contained(written):
    folder, _ = written
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert page.count("<svg") == len(list(folder.glob("*.svg")))
    for external in ("<img", "<link", "<script", "src=", ".png\"", ".svg\""):
        assert external not in page


def test_markdown_to_html_escapes_and_aligns():
    html = markdown_to_html("# T\n\n| a | b |\n| :--- | ---: |\n| <x> | `1\\|2` |\n\n- **bold** and *it*\n", [])
    assert '<h1 id="t">T<a class="anchor" href="#t"' in html and "&lt;x&gt;" in html and '<td class="r"><code>1|2</code></td>' in html
    assert "<li><strong>bold</strong> and <em>it</em></li>" in html
    assert render_html("plain <b>text</b>", []).count("&lt;b&gt;") == 1


def test_audit_json_carries_cells_comparisons_and_findings(written):
    folder, result = written
    payload = json.loads((folder / "audit.json").read_text())
    assert payload["seed"] == 7 and payload["harness_version"] == __version__
    assert len(payload["cells"]) == len(result.cells) and len(payload["comparisons"]) == len(result.comparisons)
    finding = payload["findings"][0]
    assert set(finding) == {"rule", "severity", "message", "cells", "evidence", "fix"}
    assert {c["name"]: c["verdict"] for c in payload["claims"]} == {"alpha beats beta": "not supported",
                                                                   "overall": "supported"}
    assert "R10" in next(c for c in payload["claims"] if c["name"] == "alpha beats beta")["rules_broken"]
    assert payload["aggregates"]["pairs"][0]["probability_of_improvement"]["estimate"] == 1.0


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    for record in fair_records():
        write_record(ResultsLayout(folder), record)
    return folder


def test_audit_command_exits_zero_when_clean_and_prints_the_json_contract(results):
    outcome = runner.invoke(app, ["audit", "--results", str(results), "--json", "--seed", "3"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert payload["findings"] == [] and payload["seed"] == 3 and len(payload["cells"]) == 8
    assert json.loads((results / "report" / "audit.json").read_text()) == payload
    again = runner.invoke(app, ["audit", "--results", str(results)])  # the report folder is not read as records
    assert again.exit_code == 0 and "skipped" not in again.output


def test_audit_command_exits_one_on_a_fail_finding_and_writes_the_track_report(results):
    for record in replace_cell(fair_records(), "beta", "ft", retrain_steps=150):
        write_record(ResultsLayout(results), record)
    outcome = runner.invoke(app, ["audit", "--results", str(results), "--track", TRACK])
    assert outcome.exit_code == 1
    assert "fail R1" in outcome.stdout
    assert (results / TRACK / "report" / "REPORT.md").exists()


def test_audit_command_judges_claims(results, tmp_path):
    claims = tmp_path / "claims.toml"
    claims.write_text('[[claim]]\nname = "beta wins"\nmethod = "beta"\nbaseline = "alpha"\nschedule = "ft"\nbudget = 10\n')
    outcome = runner.invoke(app, ["audit", "--results", str(results), "--claims", str(claims), "--out",
                                  str(tmp_path / "out")])
    assert outcome.exit_code == 1 and "not supported" in outcome.stdout
    assert "beta wins" in (tmp_path / "out" / "REPORT.md").read_text()


def test_invalid_records_are_reported_with_their_path_and_skipped(results):
    good = next((results / TRACK).glob("*.json"))
    (results / TRACK / "0000000000000000.json").write_text(good.read_text())  # content does not match its name
    (results / TRACK / "broken.json").write_text("{not json")
    outcome = runner.invoke(app, ["audit", "--results", str(results), "--json"])
    assert outcome.exit_code == 0
    assert "0000000000000000.json" in outcome.stderr and "broken.json" in outcome.stderr
    payload = json.loads(outcome.stdout)
    assert sum(c["n"] for c in payload["cells"]) == 48
    assert {Path(p["path"]).name for p in payload["skipped_files"]} == {"0000000000000000.json", "broken.json"}


def test_unusable_input_exits_two_with_one_line(tmp_path):
    (tmp_path / "empty" / TRACK).mkdir(parents=True)
    (tmp_path / "empty" / TRACK / "bad.json").write_text("[]")
    for arguments, message in [
        (["--results", str(tmp_path / "missing")], "does not exist"),
        (["--results", str(tmp_path / "empty")], "no valid run records"),
    ]:
        outcome = runner.invoke(app, ["audit", *arguments])
        assert outcome.exit_code == 2 and message in outcome.stderr
        assert "Traceback" not in outcome.output


def test_import_reported_command(tmp_path):
    source = tmp_path / "paper.json"
    source.write_text(json.dumps({"source": "Paper Z", "result": [
        {"track": TRACK, "method": "alpha", "target": TARGET, "schedule": "ft", "budget_epochs": 10,
         "test_acc": 0.93}]}))
    outcome = runner.invoke(app, ["import-reported", str(source), "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 0 and "imported 1 reported record" in outcome.stdout
    bad = runner.invoke(app, ["import-reported", str(tmp_path / "nope.toml")])
    assert bad.exit_code == 2 and "cannot read" in bad.stderr
