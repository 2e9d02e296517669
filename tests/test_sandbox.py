"""Hostile plugins, one per attack class of issue 14: each is blocked or detected. The attacks a sandbox answers run
at each level that answers them (``bwrap``, ``landlock``), and the cgroup caps at every level; each is skipped, saying
why, where this machine lacks the level or the cgroup (``.ci/run`` installs bubblewrap; level ``landlock`` and the
cgroups need a Landlock kernel, root and writable cgroup v1 hierarchies)."""

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from harness.core.errors import BenchError
from harness.methods import cgroups, containment, landlock, sandbox
from harness.methods.exchange import Limits
from harness.methods.isolation import Isolation
from harness.methods.lint import review
from harness.methods.plugins import load_plugin
from harness.methods.registry import PruningContext
from harness.plans import ChannelPlan

REPO = Path(__file__).resolve().parents[1]
COUNTER = iter(range(10**6))


def levels(*names: str) -> pytest.MarkDecorator:
    """The test once per sandbox level in ``names``, each skipped where this machine cannot have it."""
    return pytest.mark.parametrize("level", [pytest.param(name, marks=pytest.mark.skipif(
        sandbox.level_problem(name) is not None,
        reason=f"needs sandbox level {name}, which this machine lacks: {sandbox.level_problem(name)}"))
        for name in names])


def needs_cgroup(controller: str) -> pytest.MarkDecorator:
    parents, problems = cgroups.cgroup_parents()
    return pytest.mark.skipif(controller not in parents,
                              reason=f"needs a {controller} cgroup, which this machine lacks: {'; '.join(problems)}")


SANDBOXED = levels("bwrap", "landlock")

HEADER = """
import os, sys, socket, subprocess, time
import torch
from harness.methods import register_method


def honest(ctx):
    return ctx.keep_top({{n: torch.arange(s, dtype=torch.float64) for n, s in ctx.sizes.items()}})


def readable(path):  # whether a byte of path (a file, or any file below a folder) can be read
    try:
        if os.path.isdir(path):
            return any(readable(os.path.join(path, entry)) for entry in os.listdir(path))
        with open(path, "rb") as file:
            file.read(1)
        return True
    except OSError:
        return False


@register_method("{name}", kind="structured")
def attack(ctx):
{body}
"""


def context() -> PruningContext:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    return PruningContext(model=model, sizes={"0": 4}, keep={"0": 2}, generator=torch.Generator().manual_seed(0))


def run_plugin(tmp_path, body: str, limits: Limits = Limits(wall_seconds=60), level: str | None = None) -> object:
    """The plan of a plugin whose method's body is ``body``, computed at sandbox ``level`` (the strongest here when
    None), or the BenchError's text."""
    name = f"hostile-{os.getpid()}-{next(COUNTER)}"
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(HEADER.format(name=name, body=textwrap.indent(textwrap.dedent(body).strip(), "    ")))
    (method,) = load_plugin(path)
    try:
        return Isolation(limits, level=level).select(method, context())
    except BenchError as exc:
        return str(exc)


def blocked(outcome: object) -> None:
    assert isinstance(outcome, str), f"the attack was not stopped: {outcome}"
    assert "raised RuntimeError: blocked" in outcome, outcome


@SANDBOXED
def test_data_sets_are_masked(tmp_path, level):
    import sklearn.datasets

    data = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    outcome = run_plugin(tmp_path, f"""
        for path in ({str(data)!r}, "/usr/share/datasets"):
            if readable(path):
                raise RuntimeError("leaked " + path)
        try:
            from sklearn.datasets import load_digits
            load_digits()
        except Exception as exc:
            raise RuntimeError("blocked " + type(exc).__name__)
        raise RuntimeError("leaked load_digits")
        """, level=level)
    blocked(outcome)


@SANDBOXED
def test_results_dense_caches_home_and_checkout_are_out_of_reach(tmp_path, level):
    results = tmp_path / "results" / "digits-cnn"
    results.mkdir(parents=True)
    (results / "record.json").write_text("{}")
    (results / "dense").mkdir()
    (results / "dense" / "seed0.pt").write_bytes(b"weights")
    outcome = run_plugin(tmp_path, f"""
        for path in ({str(results / 'record.json')!r}, {str(results / 'dense' / 'seed0.pt')!r}, "/home",
                     {str(REPO / 'README.md')!r}, {str(REPO / '.git')!r}, {str(REPO / 'results')!r}, "/etc/passwd"):
            if readable(path):
                raise RuntimeError("leaked " + path)
        try:
            home = set(os.listdir("/root")) - {{".pyenv"}}  # only the path down to the Python install, if it lives there
        except OSError:
            home = set()
        if home:
            raise RuntimeError("leaked /root: " + " ".join(home))
        raise RuntimeError("blocked")
        """, level=level)
    blocked(outcome)
    assert (results / "record.json").read_text() == "{}"


@SANDBOXED
def test_the_harness_source_cannot_be_edited(tmp_path, level):
    import harness.methods.sandbox as target

    outcome = run_plugin(tmp_path, f"""
        import harness.methods.sandbox as inside
        for path in ({target.__file__!r}, inside.__file__, os.path.dirname(inside.__file__) + "/new.py"):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
            except OSError:
                continue
            raise RuntimeError("leaked " + path)
        raise RuntimeError("blocked, uid " + str(os.getuid()))
        """, level=level)
    blocked(outcome)
    assert "uid 65534" in outcome or os.geteuid() != 0


@SANDBOXED
def test_nothing_is_written_outside_the_work_folder_and_a_private_tmp(tmp_path, level):
    marker = f"bench-escape-{os.getpid()}-{next(COUNTER)}"
    outside = [tmp_path / marker, REPO / marker, Path("/tmp") / marker, Path("/var/tmp") / marker,
               Path("/dev/shm") / marker]
    outcome = run_plugin(tmp_path, f"""
        import tempfile
        for path in {[str(p) for p in outside]!r}:
            try:
                with open(path, "w") as out:
                    out.write("escaped")
            except OSError:
                pass
        with open("own-file", "w") as out, tempfile.NamedTemporaryFile() as scratch:
            out.write("kept in the work folder")
            scratch.write(b"kept in the private tmp")
        return honest(ctx)
        """, level=level)
    escaped = [p for p in outside if p.exists()]
    for path in escaped:
        path.unlink()
    assert isinstance(outcome, ChannelPlan), outcome
    assert escaped == []


@SANDBOXED
def test_the_parents_memory_cannot_be_opened(tmp_path, level):
    outcome = run_plugin(tmp_path, f"""
        for pid in ({os.getpid()}, os.getppid(), 1):
            try:
                os.close(os.open("/proc/%d/mem" % pid, os.O_RDWR))
            except OSError:
                continue
            raise RuntimeError("leaked %d" % pid)
        raise RuntimeError("blocked")
        """, level=level)
    blocked(outcome)


@SANDBOXED
def test_another_process_cannot_be_traced_read_or_signalled(tmp_path, level):
    """The target runs as the sandbox's own uid where the harness is root: only the sandbox keeps them apart."""
    target = subprocess.Popen(["sleep", "120"], user=landlock.UNPRIVILEGED_UID if os.geteuid() == 0 else None)
    try:
        outcome = run_plugin(tmp_path, f"""
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            for pid in ({target.pid}, {os.getpid()}):
                if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
                    raise RuntimeError("leaked: traced %d" % pid)
                buffer = (ctypes.c_char * 8)()
                vector = (ctypes.c_void_p * 2)(ctypes.addressof(buffer), 8)  # one struct iovec
                if libc.process_vm_readv(pid, vector, 1, vector, 1, 0) >= 0 or ctypes.get_errno() not in (1, 3):
                    raise RuntimeError("leaked: may read %d" % pid)  # anything but EPERM or ESRCH: allowed
                try:
                    os.kill(pid, 0)
                except OSError:
                    continue
                raise RuntimeError("leaked: may signal %d" % pid)
            raise RuntimeError("blocked")
            """, level=level)
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()
    if level == "landlock" and landlock.landlock_abi() < 6:
        assert "leaked: may signal" in outcome  # Landlock scopes signals from ABI 6 on; the uid still protects root
    else:
        blocked(outcome)


@SANDBOXED
def test_no_network_not_even_loopback_or_a_unix_socket(tmp_path, level):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    local = socket.socket(socket.AF_UNIX)
    local.bind(str(tmp_path / "service"))
    local.listen(1)
    os.chmod(tmp_path / "service", 0o777)
    try:
        outcome = run_plugin(tmp_path, f"""
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            except OSError as exc:
                try:
                    unix = socket.socket(socket.AF_UNIX)
                    unix.connect({str(tmp_path / "service")!r})
                except OSError:
                    raise RuntimeError("blocked " + type(exc).__name__)
                raise RuntimeError("leaked unix")
            raise RuntimeError("leaked")
            """, level=level)
    finally:
        listener.close()
        local.close()
    blocked(outcome)


@SANDBOXED
def test_the_limits_cannot_be_raised(tmp_path, level):
    outcome = run_plugin(tmp_path, """
        import resource
        for limit in (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NPROC):
            soft, hard = resource.getrlimit(limit)
            try:
                resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            except (ValueError, OSError):
                continue
            if hard != resource.RLIM_INFINITY:
                raise RuntimeError("leaked: raised limit %d" % limit)
        try:
            os.setuid(0)
        except OSError:
            raise RuntimeError("blocked, uid " + str(os.getuid()))
        raise RuntimeError("leaked: became root")
        """, level=level)
    if os.geteuid() == 0:
        blocked(outcome)


@levels("landlock")
def test_the_seccomp_filter_refuses_namespaces_io_uring_and_every_socket(tmp_path, level):
    outcome = run_plugin(tmp_path, """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        attempts = {"unshare": lambda: libc.unshare(0x10000000), "io_uring_setup": lambda: libc.syscall(425, 1, None),
                    "clone(CLONE_NEWUSER)": lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0),
                    "socket(AF_UNIX)": lambda: libc.socket(1, 1, 0), "socket(AF_NETLINK)": lambda: libc.socket(16, 3, 0)}
        allowed = [name for name, attempt in attempts.items() if attempt() >= 0]
        if allowed:
            raise RuntimeError("leaked " + ", ".join(allowed))
        left, right = socket.socketpair()  # a connected pair reaches nothing outside, and stays allowed
        raise RuntimeError("blocked")
        """, level=level)
    blocked(outcome)


def _running(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_daemon_the_plugin_leaves_is_killed(tmp_path):
    marker = f"{os.getpid() % 1000}.{next(COUNTER)}17"
    outcome = run_plugin(tmp_path, f"""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            os._exit(0)
        time.sleep(0.5)
        return honest(ctx)
        """)
    assert isinstance(outcome, ChannelPlan), outcome
    assert _running(marker) == []


def test_forked_cpu_burners_are_killed(tmp_path):
    marker = f"{os.getpid() % 1000}.{next(COUNTER)}29"
    outcome = run_plugin(tmp_path, f"""
        for _ in range(4):
            if os.fork() == 0:
                os.setsid()
                os.execvp("sh", ["sh", "-c", "while :; do :; done", "{marker}"])
        time.sleep(0.5)
        return honest(ctx)
        """)
    assert isinstance(outcome, ChannelPlan), outcome
    assert _running(marker) == []


@levels("rlimits", "bwrap", "landlock")
@needs_cgroup("pids")
def test_a_fork_bomb_is_stopped_by_the_process_cap(tmp_path, level):
    """At level rlimits, as root, nothing but the pids cgroup can stop it (root is exempt from RLIMIT_NPROC)."""
    outcome = run_plugin(tmp_path, """
        count = 0
        try:
            for _ in range(200):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                count += 1
        except OSError:
            raise RuntimeError("blocked after %d" % count)
        raise RuntimeError("leaked %d processes" % count)
        """, Limits(wall_seconds=60, processes=8), level=level)
    blocked(outcome)


@levels("rlimits", "bwrap", "landlock")
@needs_cgroup("memory")
def test_a_memory_hog_spread_over_processes_is_stopped_by_the_memory_cap(tmp_path, level):
    """Four processes of 160 MiB each stay under the per-process address-space limit of 256 MiB; only the cgroup
    counts them together. The OOM killer kills one of them or the plugin itself."""
    outcome = run_plugin(tmp_path, """
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                hog = b"x" * (160 << 20)
                time.sleep(5)
                os._exit(0)
            children.append(pid)
        killed = [pid for pid in children if os.waitpid(pid, 0)[1] == 9]
        if killed:
            raise RuntimeError("blocked: %d of 4 killed" % len(killed))
        raise RuntimeError("leaked 640 MiB")
        """, Limits(wall_seconds=60, memory_mb=256), level=level)
    assert isinstance(outcome, str), outcome
    assert "raised RuntimeError: blocked" in outcome or "hit the cgroup memory cap of 256 MiB" in outcome, outcome


def test_cgroup_hierarchies_are_read_from_mountinfo_and_the_processs_own_groups():
    mountinfo = ("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                 "39 31 0:36 /outer /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
                 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    assert cgroups.cgroup_mounts(mountinfo) == {"memory": (Path("/sys/fs/cgroup/memory"), Path("/")),
                                                "pids": (Path("/sys/fs/cgroup/pids"), Path("/outer"))}
    assert cgroups.own_cgroups("8:pids:/outer/job\n4:memory:/api/7\n1:cpu,cpuacct:/\n0::/\n") == {
        "pids": "/outer/job", "memory": "/api/7", "cpu": "/", "cpuacct": "/"}  # the v2 line names no controller


@needs_cgroup("pids")
def test_the_cgroups_of_a_harness_that_is_gone_are_removed():
    from harness.methods import launch

    gone = subprocess.Popen(["true"])
    gone.wait()
    caps = cgroups.CgroupCaps.make(launch._cgroup_name(f"{launch.WORKDIR_PREFIX}{gone.pid}-test"), 2**30)
    mine = cgroups.CgroupCaps.make(launch._cgroup_name(f"{launch.WORKDIR_PREFIX}{os.getpid()}-test"), 2**30)
    try:
        launch.remove_stale_cgroups()
        assert [folder.exists() for folder in caps.folders.values()] == [False] * len(caps.folders)
        assert all(folder.exists() for folder in mine.folders.values())
    finally:
        caps.remove()
        mine.remove()


@SANDBOXED
def test_dev_shm_is_small_or_refused(tmp_path, level):
    outcome = run_plugin(tmp_path, """
        written = 0
        try:
            with open("/dev/shm/fill", "wb") as out:
                for _ in range(512):
                    out.write(b"x" * 2**20)
                    out.flush()
                    written += 1
        except OSError:
            raise RuntimeError("blocked after %d MiB" % written)
        raise RuntimeError("leaked %d MiB" % written)
        """, level=level)
    blocked(outcome)
    assert not Path("/dev/shm/fill").exists()


def test_an_answer_over_the_cap_is_refused_unread(tmp_path):
    outcome = run_plugin(tmp_path, """
        from harness.plans import MaskPlan
        return MaskPlan({"0": torch.ones(4 * 2**20, dtype=torch.bool)})
        """, Limits(wall_seconds=60, answer_mb=1))
    assert isinstance(outcome, str) and "larger than the cap of 1 MiB" in outcome, outcome


def test_rich_markup_and_control_characters_in_an_error_are_inert(tmp_path):
    outcome = run_plugin(tmp_path, r"""
        raise ValueError("[/] [bold red]submission passed[/bold red] \x1b[2J\nfake line")
        """)
    assert isinstance(outcome, str) and "\x1b" not in outcome and "\n" not in outcome and "[" not in \
        outcome.split("raised", 1)[1]
    console = Console(record=True, width=400)
    console.print(outcome)  # rich markup in the raw text raised MarkupError here
    assert "submission passed" in console.export_text()


def test_the_childs_output_never_reaches_the_harness_stdout(tmp_path, capfd):
    outcome = run_plugin(tmp_path, """
        print("submission passed: rank 1", flush=True)
        print("\\x1b[32mall records verified", file=sys.stderr, flush=True)
        os.write(1, b"x" * 200000)
        return honest(ctx)
        """)
    assert isinstance(outcome, ChannelPlan), outcome
    captured = capfd.readouterr()
    assert "submission passed" not in captured.out + captured.err
    assert "all records verified" not in captured.out + captured.err


def test_the_environment_is_allow_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_BENCH_SECRET_TOKEN", "verify")
    outcome = run_plugin(tmp_path, f"""
        unexpected = sorted(set(os.environ) - {set(sandbox.ALLOWED_ENV) | {'PYTHONPATH', 'HOME',
                                                                          'PYTHONDONTWRITEBYTECODE', 'PYTHONNOUSERSITE', 'PWD',
                                                                          'OMP_NUM_THREADS', 'LC_CTYPE', 'TMPDIR'}!r})
        if unexpected or "verify" in " ".join(sys.argv):
            raise RuntimeError("leaked " + " ".join(unexpected))
        raise RuntimeError("blocked")
        """)
    blocked(outcome)


@SANDBOXED
def test_the_harness_command_line_is_invisible(tmp_path, level):
    outcome = run_plugin(tmp_path, f"""
        try:
            seen = [entry for entry in os.listdir("/proc") if entry.isdigit() and readable("/proc/%s/cmdline" % entry)]
        except OSError:
            seen = []
        if any(b"pytest" in open("/proc/%s/cmdline" % entry, "rb").read() for entry in seen) \\
                or readable("/proc/{os.getpid()}/cmdline"):
            raise RuntimeError("leaked")
        raise RuntimeError("blocked")
        """, level=level)
    blocked(outcome)


def test_a_plugins_own_register_method_is_not_honoured(tmp_path):
    own = tmp_path / "own_register.py"
    own.write_text(textwrap.dedent("""
        from harness.methods import registry

        def register_method(name, **kwargs):
            return lambda function: registry.register_method(name, **kwargs)(cheat)

        def cheat(ctx):
            return None

        @register_method("own-register", kind="structured")
        def honest(ctx):
            return None
        """))
    with pytest.raises(BenchError, match="imported from harness.methods"):
        load_plugin(own)
    shadow = tmp_path / "shadow_register.py"
    shadow.write_text(textwrap.dedent("""
        from harness.methods import register_method
        from harness.methods.registry import register_method as real

        register_method = lambda name, **kwargs: real(name, **kwargs)

        @register_method("shadow-register", kind="structured")
        def honest(ctx):
            return None
        """))
    with pytest.raises(BenchError, match="rebinds or shadows 'register_method'"):
        load_plugin(shadow)


def test_a_registered_function_other_than_the_one_read_is_refused(tmp_path):
    path = tmp_path / "swap.py"
    path.write_text(textwrap.dedent("""
        import dataclasses
        from harness.methods import register_method
        from harness.methods import registry


        def cheat(ctx):
            raise RuntimeError("cheat ran")


        @register_method("swap-registered", kind="structured")
        def honest(ctx):
            raise RuntimeError("honest ran")


        registry._METHODS["swap-registered"] = dataclasses.replace(registry._METHODS["swap-registered"], select=cheat)
        """).lstrip())
    assert [f.rule for f in review(path, path.read_bytes())] == ["module-code"]
    (method,) = load_plugin(path)
    with pytest.raises(BenchError, match="the function registered as 'swap-registered' is not 'honest'"):
        Isolation(Limits(wall_seconds=60)).select(method, context())


def test_review_lints_flag_embedded_data_and_hidden_code(tmp_path):
    source = textwrap.dedent(f"""
        import base64, importlib
        from harness.methods import register_method

        TEST_LABELS = {list(range(300))!r}
        BLOB = "{'A' * 5000}"
        exec(base64.b64decode(BLOB))
        print("hello")

        @register_method("linted", kind="structured")
        def linted(ctx):
            return eval("None")
        """).encode() + b"#" * 70000
    rules = {finding.rule for finding in review(tmp_path / "linted.py", source)}
    assert rules >= {"size", "literal", "dynamic", "module-code"}
    example = REPO / "bench" / "methods" / "example_apoz.py"
    assert review(example, example.read_bytes()) == []


def test_records_name_the_level_and_refusal_below_the_required_level():
    isolation = Isolation(level="rlimits")
    with pytest.raises(BenchError, match="below the 'bwrap' the leaderboard requires"):
        isolation.require("bwrap")
    Isolation(level="rlimits", unsafe=True).require("bwrap")
    assert Isolation(level="rlimits").record_fields("l1-norm") == {"isolation": "in-process"}
    assert containment.escape("[bold]x[/]\x1b\n") == "\\x5bbold\\x5dx\\x5b/\\x5d\\x1b\\n"


def test_submit_refuses_below_the_required_level_unless_unsafe_and_reports_review_findings(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli import app

    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Probe("rlimits", ("bwrap: not here (test)",)))
    path = tmp_path / "loud.py"
    path.write_text(textwrap.dedent("""
        from harness.methods import register_method

        print("hello")

        @register_method("loud-method", kind="structured")
        def loud(ctx):
            return eval("None")
        """).lstrip())
    result = CliRunner().invoke(app, ["submit", str(path), "--results", str(tmp_path / "results")])
    assert result.exit_code == 2, result.output
    assert "below the 'bwrap' the leaderboard requires (bwrap: not here (test))" in result.output
    assert "--unsafe-isolation" in result.output
    assert f"review: {path}:3: [module-code]" in result.output and "[dynamic] uses 'eval'" in result.output
    assert sandbox.requirement() == (None, False)  # the requirement ends with the command


def test_the_audit_fails_entries_made_below_the_required_level():
    from types import SimpleNamespace

    from harness.audit.config import AuditConfig
    from harness.audit.rules import RULE_FUNCTIONS, AuditInput
    from harness.audit.rules.isolation import r14_below_required_isolation

    def cell(label, *records, reproduced=True):
        return SimpleNamespace(label=label, reproduced=reproduced, records=tuple(
            SimpleNamespace(isolation=level, unsafe_isolation=unsafe) for level, unsafe in records))

    cells = (cell("fine", ("bwrap", False), ("in-process", False), (None, False)),
             cell("weak", ("bwrap", False), ("rlimits", True)), cell("paper", ("rlimits", False), reproduced=False))
    findings = r14_below_required_isolation(AuditInput(cells, ()), AuditConfig())
    assert [(f.rule, f.severity, f.cells) for f in findings] == [("R14", "fail", ("weak",))]
    assert r14_below_required_isolation in RULE_FUNCTIONS
