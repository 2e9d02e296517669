"""The audit's memo only saves time: an unchanged audit is read back, any changed input is audited
again, and a memo this machine did not sign is never unpickled (issue 16, item 4)."""

import json
from types import SimpleNamespace

import pytest
from audit_fixtures import fair_records

from harness.audit import AuditConfig, audit, audit_results
from harness.audit import engine as engine_module
from harness.audit import memo as memo_module
from harness.core import signing
from harness.core.layout import ResultsLayout
from harness.publish import report as report_module
from harness.publish.leaderboard import build_leaderboard
from harness.publish.report import write_report
from harness.publish.report.payload import audit_payload
from harness.run.record import read_record, write_record


@pytest.fixture(autouse=True)
def machine_key(tmp_path, monkeypatch):
    path = tmp_path / "key" / "index.key"
    monkeypatch.setenv(signing.KEY_ENV, str(path))
    return path


@pytest.fixture
def layout(tmp_path):
    layout = ResultsLayout(tmp_path / "results")
    for record in fair_records():
        write_record(layout, record)
    return layout


def payload(result):
    return json.dumps(audit_payload(result, build_leaderboard(result)), sort_keys=True)


@pytest.fixture
def no_audit(monkeypatch):
    """Fail the test if the audit is computed instead of read from the memo."""
    def computing(*args, **kwargs):
        pytest.fail("the audit was computed again")

    def forbid():
        monkeypatch.setattr(engine_module, "audit", computing)
    return forbid


def test_an_unchanged_audit_is_read_back_equal(layout, no_audit):
    first = audit_results(layout)
    assert layout.audit_memo().is_file() and first.inputs is not None
    no_audit()
    second = audit_results(layout)
    assert payload(second) == payload(first) == payload(audit(fair_records()))
    assert second.inputs == first.inputs


def edit_record(layout):
    path = layout.records("toy")[0]
    record = read_record(path)
    path.unlink()
    write_record(layout, record.model_copy(update={"test_acc": 0.5}))


def add_tuning(layout):
    layout.tuning("toy").mkdir(parents=True)
    (layout.tuning("toy") / "study.json").write_text("{}")


@pytest.mark.parametrize("change", [
    pytest.param(edit_record, id="a record's result"),
    pytest.param(lambda layout: layout.records("toy")[0].unlink(), id="a record removed"),
    pytest.param(lambda layout: layout.records("toy")[0].write_text("{"), id="a record corrupted"),
    pytest.param(add_tuning, id="a tuning history added"),
])
def test_any_changed_input_is_audited_again(layout, change):
    first = audit_results(layout)
    change(layout)
    again = audit_results(layout)
    assert again.inputs != first.inputs
    assert payload(again) != payload(first)
    assert payload(again) == payload(audit_results(layout)) == payload(
        audit_results(ResultsLayout(layout.root)))  # read back: the same as computed


def test_the_configuration_claims_and_code_are_inputs(layout, tmp_path, monkeypatch):
    first = audit_results(layout)
    assert audit_results(layout, config=AuditConfig(seed=1)).inputs != first.inputs
    claims = tmp_path / "claims.toml"
    claims.write_text('[[claim]]\nname = "a"\nmethod = "alpha"\nbaseline = "beta"\ntrack = "toy"\n'
                      'target = "half"\nschedule = "ft"\nbudget = 10\n')
    with_claims = audit_results(layout, claims_path=claims)
    assert with_claims.inputs != first.inputs and len(with_claims.claims) == 1
    claims.write_text(claims.read_text().replace('name = "a"', 'name = "b"'))
    assert [c.name for c in audit_results(layout, claims_path=claims).claims] == ["b"]
    monkeypatch.setattr(memo_module, "code_digest", lambda: "other code")
    assert audit_results(layout).inputs != first.inputs


def test_a_memo_signed_elsewhere_edited_or_corrupt_is_never_used(layout, monkeypatch, tmp_path):
    first = audit_results(layout)
    kept = layout.audit_memo()
    original = kept.read_bytes()

    def unpickling(*args, **kwargs):
        pytest.fail("an unsigned memo was unpickled")

    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "another machine" / "index.key"))
    monkeypatch.setattr(memo_module.pickle, "loads", unpickling)
    assert memo_module.recall(kept, first.inputs) is None  # copied from another machine
    monkeypatch.undo()
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "key" / "index.key"))
    signature, body = original.split(b"\n", 1)
    for forged in (signature + b"\n" + body[:-1] + b"x", b"", b"no newline", original[:100]):
        kept.write_bytes(forged)
        assert memo_module.recall(kept, first.inputs) is None
        assert payload(audit_results(layout)) == payload(first)  # audited again, and kept again
        assert memo_module.recall(kept, first.inputs) is not None


def test_no_key_or_a_read_only_cache_means_no_memo(layout, monkeypatch):
    monkeypatch.setattr(memo_module, "machine_key", lambda: None)
    assert payload(audit_results(layout)) == payload(audit(fair_records()))
    assert not layout.audit_memo().exists()
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise OSError("read-only")

    monkeypatch.setattr(memo_module, "write_bytes_atomic", refuse)
    assert payload(audit_results(layout)) == payload(audit(fair_records()))


def test_the_registered_methods_sources_are_inputs(layout, monkeypatch):
    """A plugin registered in this process is checked against its file (``MethodSources``), so its
    file's digest is an input: editing it after the runs is never hidden by a memo."""
    from harness.methods import plugins, registry

    first = audit_results(layout)
    monkeypatch.setattr(registry, "registered_methods", lambda: [SimpleNamespace(name="alpha")])
    source = layout.root / "alpha.py"
    source.write_text("before\n")
    monkeypatch.setattr(plugins, "method_source", lambda method: source)
    monkeypatch.setattr(plugins, "method_digest", lambda method: "as registered")
    before = audit_results(layout).inputs
    source.write_text("edited after registering\n")  # the registered digest is unchanged; the file is not
    assert len({first.inputs, before, audit_results(layout).inputs}) == 3


def test_a_report_from_the_memo_is_byte_identical_and_indents_no_json(layout, tmp_path, monkeypatch):
    def files(folder):
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    write_report(audit(fair_records()), tmp_path / "plain")
    kept = layout.payload_memo()
    write_report(audit_results(layout), tmp_path / "first", payload_memo=kept)
    assert kept.is_file()
    monkeypatch.setattr(report_module, "dumps", lambda payload: pytest.fail("audit.json was indented again"))
    write_report(audit_results(layout), tmp_path / "second", payload_memo=kept)
    assert files(tmp_path / "first") == files(tmp_path / "second") == files(tmp_path / "plain")


def test_an_unchanged_leaderboard_is_read_back_without_the_audit(layout, monkeypatch):
    from harness.publish import leaderboard as leaderboard_module
    from harness.publish.leaderboard import leaderboard_results

    board, problems = leaderboard_results(layout)
    assert board == build_leaderboard(audit(fair_records())) and problems == ()
    monkeypatch.setattr(leaderboard_module, "audit_from", lambda inputs: pytest.fail("the audit was read back"))
    assert leaderboard_results(layout) == (board, problems)
    monkeypatch.undo()
    layout.records("toy")[0].write_text("{")
    changed, problems = leaderboard_results(layout)
    assert changed != board and [p.path for p in problems] == [layout.records("toy")[0]]


def test_a_stale_memo_is_not_unpickled(layout, monkeypatch):
    first = audit_results(layout)
    monkeypatch.setattr(memo_module.pickle, "loads", lambda body: pytest.fail("a stale memo was unpickled"))
    assert memo_module.recall(layout.audit_memo(), "another key") is None
    assert layout.audit_memo().read_bytes().split(b"\n")[1].decode() == first.inputs
