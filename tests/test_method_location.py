"""A plugin's records say where its file was (issue 15): ``method_file``, relative to the methods folder,
so ``bench verify``, ``flops`` and ``latency`` find the method again, or say in one line to pass
``--methods-dir``."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.core.errors import BenchError
from harness.methods.location import find_method, recorded_file, registered
from harness.methods.plugins import load_plugins
from harness.methods.provenance import MethodSources
from harness.run.record import RunRecord

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "bench" / "methods" / "example_apoz.py"


@dataclass
class Stored:
    """What provenance reads of a record (``harness.methods.provenance.MethodRun``)."""

    method: str
    method_digest: str | None
    reproduced: bool = True
    method_file: str | None = None


def test_a_plugin_records_its_file_relative_to_the_methods_folder(monkeypatch):
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(EXAMPLE.parent))
    load_plugins()
    assert recorded_file("example-apoz") == "example_apoz.py"
    assert recorded_file("l1-norm") is None  # built in: its module is the harness's
    assert RunRecord.model_fields["method_file"].default is None  # older records keep their ids and seals


def test_an_unregistered_plugin_is_found_from_its_recorded_file(tmp_path, monkeypatch):
    folder = tmp_path / "methods"
    folder.mkdir()
    text = EXAMPLE.read_text().replace('"example-apoz"', '"example-apoz-moved"')
    (folder / "moved.py").write_text(text)
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(folder))
    assert not registered("example-apoz-moved")
    find_method("example-apoz-moved", "moved.py")
    assert registered("example-apoz-moved")


def test_a_missing_plugin_file_is_one_line_naming_methods_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(tmp_path))
    with pytest.raises(BenchError) as error:
        find_method("nowhere-method", "nowhere.py")
    line = str(error.value)
    assert "\n" not in line and "--methods-dir" in line and "nowhere.py" in line and str(tmp_path) in line
    problem = MethodSources().problem(Stored("nowhere-method", "0" * 64, method_file="nowhere.py"))
    assert "--methods-dir" in problem and "nowhere.py" in problem


def test_verify_registers_a_plugin_from_the_methods_folder(tmp_path, monkeypatch):
    folder = tmp_path / "methods"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "apoz.py")
    (folder / "apoz.py").write_text(EXAMPLE.read_text().replace('"example-apoz"', '"example-apoz-verify"'))
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(folder))
    from harness.methods.plugins import file_digest

    digest = file_digest(folder / "apoz.py")
    assert MethodSources().problem(Stored("example-apoz-verify", digest, method_file="apoz.py")) is None
