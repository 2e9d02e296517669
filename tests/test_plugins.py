"""Plugin methods: files read without running them, registered as stand-ins, refused with file and line."""

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import BenchError
from harness.methods import get_method
from harness.methods.plugins import (
    PluginMethod,
    is_plugin,
    load_plugin,
    load_plugins,
    method_digest,
    method_source,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "bench" / "methods" / "example_apoz.py"


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def test_the_example_plugin_is_registered_from_its_syntax_tree():
    (method,) = load_plugin(EXAMPLE)
    assert (method.name, method.kind, method.needs_data, method.global_ranking) == (
        "example-apoz", "structured", True, False)
    assert method.citation.startswith("Hu et al., Network Trimming")
    assert is_plugin(method) and not is_plugin(get_method("l1-norm"))
    assert method.select == PluginMethod("example-apoz", EXAMPLE, "example_apoz", 21, EXAMPLE.read_bytes())
    assert method_source(method) == EXAMPLE
    assert method_digest(method) == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert method_digest(get_method("l1-norm")) == hashlib.sha256(
        (REPO / "harness" / "methods" / "l1_norm.py").read_bytes()).hexdigest()
    assert load_plugin(EXAMPLE) == [method]  # loading the same bytes again is a no-op
    assert get_method("example-apoz") is method


def test_a_stand_in_never_runs_the_plugin_in_the_harness_process():
    (method,) = load_plugin(EXAMPLE)
    with pytest.raises(BenchError, match="computed in an isolated process"):
        method.select(None)


def test_the_methods_folder_is_discovered_and_underscore_files_are_skipped(tmp_path, monkeypatch):
    write(tmp_path, "keep_first.py", """
        from harness.methods import register_method
        from harness.plans import ChannelPlan

        @register_method("plugin-keep-first", kind="structured")
        def keep_first(ctx):
            "Keeps the first channels of every layer."
            return ChannelPlan({name: tuple(range(count)) for name, count in ctx.keep.items()})
        """)
    write(tmp_path, "_helpers.py", "VALUE = 1\n")
    assert [m.name for m in load_plugins(tmp_path)] == ["plugin-keep-first"]
    assert get_method("plugin-keep-first").citation == "Keeps the first channels of every layer."
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(tmp_path))
    listed = CliRunner().invoke(app, ["methods", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "plugin-keep-first" in [row["name"] for row in json.loads(listed.stdout)]


INVALID = {
    "no_call.py": ("""
        def my_method(ctx):
            return None
        """, "no_call.py:1: no register_method call, so the file defines no method"),
    "no_name.py": ("""
        from harness.methods import register_method

        @register_method(kind="structured")
        def my_method(ctx):
            return None
        """, "no_name.py:3: register_method is missing the method's name"),
    "bare.py": ("""
        from harness.methods import register_method

        @register_method
        def my_method(ctx):
            return None
        """, "bare.py:3: register_method is missing the method's name"),
    "no_kind.py": ("""
        from harness.methods import register_method

        @register_method("plugin-no-kind")
        def my_method(ctx):
            return None
        """, "no_kind.py:3: method 'plugin-no-kind' is missing its kind"),
    "bad_kind.py": ("""
        from harness.methods import register_method

        @register_method("plugin-bad-kind", kind="filters")
        def my_method(ctx):
            return None
        """, "bad_kind.py:3: bad kind 'filters' for method 'plugin-bad-kind'"),
    "two_args.py": ("""
        from harness.methods import register_method

        @register_method("plugin-two-args", kind="structured")
        def my_method(ctx, ratio):
            return None
        """, "two_args.py:4: function 'my_method' of method 'plugin-two-args' must take exactly one argument, "
             "the PruningContext; it takes ctx, ratio"),
    "no_args.py": ("""
        from harness.methods import register_method

        @register_method("plugin-no-args", kind="unstructured")
        def my_method():
            return None
        """, "no_args.py:4: function 'my_method' of method 'plugin-no-args' must take exactly one argument, "
             "the PruningContext; it takes nothing"),
    "kwargs.py": ("""
        from harness.methods import register_method

        @register_method("plugin-kwargs", kind="structured")
        def my_method(ctx, **options):
            return None
        """, "kwargs.py:4: function 'my_method' of method 'plugin-kwargs' must take exactly one argument, "
             "the PruningContext; it takes ctx, **options"),
    "computed.py": ("""
        from harness.methods import register_method
        KIND = "structured"

        @register_method("plugin-computed", kind=KIND)
        def my_method(ctx):
            return None
        """, "computed.py:4: register_method's 'kind' must be a literal str"),
    "called.py": ("""
        from harness.methods import register_method

        def my_method(ctx):
            return None

        register_method("plugin-called", kind="structured")(my_method)
        """, "called.py:6: register_method must decorate a module-level function"),
    "unknown_argument.py": ("""
        from harness.methods import register_method

        @register_method("plugin-unknown", kind="structured", ratio=0.5)
        def my_method(ctx):
            return None
        """, "unknown_argument.py:3: register_method has no argument 'ratio'"),
    "bad_name.py": ("""
        from harness.methods import register_method

        @register_method("my method+twin", kind="structured")
        def my_method(ctx):
            return None
        """, "bad_name.py:3: bad method name 'my method+twin'"),
    "taken.py": ("""
        from harness.methods import register_method

        @register_method("l1-norm", kind="structured")
        def my_method(ctx):
            return None
        """, "taken.py:3: method name 'l1-norm' is already registered by "),
    "syntax.py": ("""
        from harness.methods import register_method

        @register_method("plugin-syntax", kind="structured")
        def my_method(ctx)
            return None
        """, "syntax.py:4: not valid Python"),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_method_file_is_one_line_naming_the_file_line_and_what_is_missing(tmp_path, name):
    body, message = INVALID[name]
    path = write(tmp_path, name, body)
    with pytest.raises(BenchError) as raised:
        load_plugin(path)
    assert str(raised.value).startswith(f"{tmp_path}/{message}"), str(raised.value)
    assert "\n" not in str(raised.value)


def test_bench_submit_refuses_an_invalid_file_before_running_anything(tmp_path):
    path = write(tmp_path, "two_args.py", INVALID["two_args.py"][0])
    result = CliRunner().invoke(app, ["submit", str(path), "--results", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path}/{INVALID['two_args.py'][1]}"]
    assert not (tmp_path / "results").exists()


def test_a_broken_file_in_the_methods_folder_is_one_warning_and_other_commands_still_work(tmp_path, monkeypatch):
    write(tmp_path, "bad_kind.py", INVALID["bad_kind.py"][0])
    monkeypatch.setenv("PRUNE_BENCH_METHODS", str(tmp_path))
    result = CliRunner().invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(f"{tmp_path}/bad_kind.py:3: bad kind 'filters'") == 1
    assert "l1-norm" in result.stdout
