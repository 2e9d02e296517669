"""``bench verify``: sealed records, method files as they are now, and bit-exact reruns on the CPU."""

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.audit import audit_results
from harness.cli import app
from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.driver import run_grid
from harness.grid.local import LocalExecutor
from harness.grid.selection import Selection, expand
from harness.methods.plugins import load_plugin
from harness.protocols.verify import ALL, check_records, choose_reruns, verify_results
from harness.run.record import RunRecord, content_digest, read_record, write_record

REPO = Path(__file__).resolve().parents[1]
KEEP_FIRST = """
    from harness.methods import register_method
    from harness.plans import ChannelPlan

    @register_method("verify-keep-first", kind="structured")
    def keep_first(ctx):
        return ChannelPlan({name: tuple(range(count)) for name, count in ctx.keep.items()})
    """


@pytest.fixture(scope="module")
def sealed(tmp_path_factory, digits_track, trained_results):
    """Five real, sealed runs: l1-norm and its twin under none and ft@1, and one plugin run."""
    root = tmp_path_factory.mktemp("verify")
    results = root / "results"
    shutil.copytree(trained_results / digits_track.name / "dense", results / digits_track.name / "dense")
    plugin = root / "keep_first.py"
    plugin.write_text(textwrap.dedent(KEEP_FIRST).lstrip())
    load_plugin(plugin)
    configs = [*expand(digits_track, Selection(("l1-norm",), ("uniform-50",), ("none", "ft"), (1,), (0,))),
               *expand(digits_track, Selection(("verify-keep-first",), ("uniform-50",), ("none",), (1,), (0,), False))]
    run_grid(digits_track, configs, ResultsLayout(results), LocalExecutor(ResultsLayout(results)))
    return results, plugin


@pytest.fixture
def results(sealed, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(sealed[0], copy)
    return copy


def verify(results, *options):
    outcome = CliRunner().invoke(app, ["verify", "--results", str(results), "--json", *options])
    assert outcome.exit_code in (0, 1), outcome.output
    return outcome.exit_code, json.loads(outcome.stdout)


def record_file(results, method, schedule="none", twin=False):
    return next(p for p in sorted((results / "digits-cnn").glob("*.json"))
                if (r := read_record(p)).method == method and r.schedule == schedule and r.twin == twin)


def test_written_records_carry_both_digests(sealed):
    results, plugin = sealed
    plugin_record = read_record(record_file(results, "verify-keep-first"))
    assert plugin_record.status == "ok"
    assert plugin_record.method_digest == hashlib.sha256(plugin.read_bytes()).hexdigest()
    raw = json.loads(record_file(results, "l1-norm").read_text())
    stored = raw.pop("content_digest")
    assert stored == content_digest(RunRecord.model_validate(raw))
    assert raw["method_digest"] == hashlib.sha256((REPO / "harness/methods/l1_norm.py").read_bytes()).hexdigest()


def test_every_record_passes_and_every_rerun_is_bit_exact_on_the_cpu(results):
    code, report = verify(results, "--rerun", "10", "--seed", "3")
    assert code == 0 and report["ok"] and report["problems"] == [] and report["checked"] == 5
    assert len(report["reruns"]) == 5
    for rerun in report["reruns"]:
        assert rerun["matches"] and rerun["difference"] == 0.0 and rerun["tolerance"] == 0.0
        assert rerun["stored_test_acc"] == rerun["rerun_test_acc"] is not None


def test_the_records_to_rerun_are_drawn_with_the_seed(results):
    valid, problems, files = check_records(ResultsLayout(results))
    assert (len(valid), problems, files) == (5, [], 5)
    first = choose_reruns(valid, 2, seed=7)
    assert first == choose_reruns(valid, 2, seed=7) and len(first) == 2
    assert {str(p) for p, _ in choose_reruns(valid, 5, seed=0)} == {str(p) for p, _ in valid}
    code, report = verify(results, "--rerun", "2", "--seed", "7")
    assert code == 0 and [r["path"] for r in report["reruns"]] == [str(p) for p, _ in first]


def test_an_edited_result_or_a_removed_digest_is_reported_and_the_audit_refuses_it(results):
    edited, stripped = record_file(results, "l1-norm", "ft"), record_file(results, "l1-norm", "ft", twin=True)
    raw = json.loads(edited.read_text())
    raw["test_acc"] += 0.05
    edited.write_text(json.dumps(raw))
    raw = json.loads(stripped.read_text())
    del raw["content_digest"]
    stripped.write_text(json.dumps(raw))
    code, report = verify(results)
    assert code == 1
    problems = {p["path"]: p for p in report["problems"]}
    assert set(problems) == {str(edited), str(stripped)}
    assert problems[str(edited)]["check"] == "content digest"
    assert problems[str(edited)]["message"].startswith("content digest mismatch: the record says ")
    assert problems[str(stripped)]["message"].startswith("not sealed (no content digest)")
    refused = {str(p.path): p.reason for p in audit_results(ResultsLayout(results), "digits-cnn").problems}
    assert set(refused) == {str(edited), str(stripped)} and refused[str(edited)].startswith("content digest mismatch")


def test_an_edited_method_file_is_reported_and_the_audit_refuses_its_records(results, sealed):
    plugin = sealed[1]
    original = plugin.read_bytes()
    path = record_file(results, "verify-keep-first")
    try:
        plugin.write_bytes(original + b"# tuned after the run\n")
        code, report = verify(results)
        refused = {str(p.path): p.reason for p in audit_results(ResultsLayout(results), "digits-cnn").problems}
    finally:
        plugin.write_bytes(original)
    expected = (f"method file {plugin} changed since the run: the record has sha256 "
                f"{hashlib.sha256(original).hexdigest()[:16]}, the file now hashes to "
                f"{hashlib.sha256(original + b'# tuned after the run' + bytes([10])).hexdigest()[:16]}")
    assert code == 1
    assert report["problems"] == [{"path": str(path), "check": "method digest", "message": expected}]
    assert refused == {str(path): expected}


def test_a_resealed_forgery_passes_the_digests_but_not_its_rerun(results):
    path = record_file(results, "l1-norm", "ft")
    record = read_record(path)
    forged = record.model_copy(update={"test_acc": record.test_acc + 0.01})
    write_record(ResultsLayout(results), forged)
    assert verify(results)[0] == 0
    code, report = verify(results, "--rerun", "10")
    assert code == 1
    (problem,) = report["problems"]
    assert problem["path"] == str(path) and problem["check"] == "rerun"
    assert problem["message"] == (f"test accuracy differs: stored {forged.test_acc!r}, rerun {record.test_acc!r} "
                                  f"(-1.0000 pp; bit-exact on cpu)")


def test_records_retrained_from_other_dense_weights_are_reported(results):
    (dense,) = {read_record(path).dense_hash for path in (results / "digits-cnn").glob("*.json")}
    _, meta = ResultsLayout(results).dense_files("digits-cnn", dense)
    info = json.loads(meta.read_text())
    info["weights_sha256"] = "0" * 64
    meta.write_text(json.dumps(info))
    verification = verify_results(ResultsLayout(results))
    problems = [p for p in verification.problems if p.check == "dense weights"]
    assert len(problems) == verification.checked == 5
    assert all(p.message.endswith("the record was made from other weights: restore its baseline, or rerun it here")
               and "0000000000000000..." in p.message for p in problems)


def test_every_record_of_one_method_and_its_twin_is_rerun(results):
    verification = verify_results(ResultsLayout(results), ALL, method="l1-norm")
    assert verification.ok and verification.other_harness == 0
    assert sorted(r.label for r in verification.reruns) == sorted(
        read_record(p).config().label for p in (results / "digits-cnn").glob("*.json")
        if read_record(p).method == "l1-norm")
    assert len(verification.reruns) == 4 and all(r.matches and r.same_dense for r in verification.reruns)
    with pytest.raises(BenchError, match="no record of method 'l2-norm'"):
        verify_results(ResultsLayout(results), ALL, method="l2-norm")


def test_records_of_other_harness_code_are_counted_not_failed(results):
    path = record_file(results, "l1-norm", "ft")
    write_record(ResultsLayout(results), read_record(path).model_copy(update={"harness_digest": "f" * 64}))
    verification = verify_results(ResultsLayout(results))
    assert verification.ok and verification.other_harness == 1


def test_the_cli_reruns_all_of_one_method_and_refuses_a_bad_count(results):
    code, report = verify(results, "--rerun", "all", "--method", "verify-keep-first", "--unsafe-isolation")
    assert code == 0 and [r["label"].split("/")[1] for r in report["reruns"]] == ["verify-keep-first"]
    outcome = CliRunner().invoke(app, ["verify", "--results", str(results), "--rerun", "some"])
    assert outcome.exit_code == 2 and "--rerun takes a number of records or 'all', got 'some'" in outcome.stderr
