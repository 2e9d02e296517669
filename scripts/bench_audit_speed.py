"""Time `bench audit` and `bench leaderboard` as whole processes (start-up and report writing included)
against a baseline checkout of the harness, in the same run, and print each figure with its ratio.

    git worktree add /tmp/old <commit>            # the baseline: the code before the change
    python scripts/bench_audit_speed.py --old /tmp/old [--records 10000] [--runs 3]

Scenarios: the committed records (``results/``, audited per track as `bench audit --results results
--track digits-cnn`), `bench leaderboard --results results`, and ``--records N`` synthetic schema-valid
sealed records (``tests/audit_fixtures.py``'s grid, more seeds when N needs them). Each command runs
in a fresh copy of its results folder; the new code's first call fills its caches (``cold``), the
following ones find them (``warm``). Wall seconds are the median of ``--runs``; peak memory is the
child's own maximum resident set (``os.wait4``). The baseline and the new code run in turn, so a
drifting machine load moves both. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEW = ROOT


def synthetic(folder: Path, n: int) -> None:
    """N sealed records of the audit benchmark's grid (2 tracks, 12 methods and twins, 21 settings,
    2 targets), with as many seeds as N needs."""
    import harness

    sys.path.insert(0, str(Path(harness.__file__).parents[1] / "tests"))
    from audit_fixtures import record  # noqa: I001 - from tests/, put on the path above

    from harness.core.layout import ResultsLayout
    from harness.run.record import record_path, seal

    layout, written, seeds = ResultsLayout(folder), 0, max(5, -(-n // 2016))
    settings = [("none", 0)] + [(s, b) for s in ("ft", "lrw", "slr", "clr") for b in (10, 20, 30, 40, 50)]
    for s in range(seeds):
        for track in ("bench-a", "bench-b"):
            for target in ("half", "quarter"):
                for m in range(12):
                    for twin in (False, True):
                        for schedule, budget in settings:
                            if written == n:
                                return
                            base = 0.9 - 0.004 * m - 0.01 * twin + 0.0003 * budget - (0.3 if budget == 0 else 0)
                            acc = round(min(1.0, max(0.0, base + 0.004 * ((s * 7919 + m * 104729) % 17 - 8) / 8)), 6)
                            rec = record(method=f"method-{m:02d}", twin=twin, test_acc=acc, val_acc=round(acc + 0.001, 6),
                                         seed=s, track=track, target=target, schedule=schedule, budget=budget)
                            path = record_path(layout, rec)
                            path.parent.mkdir(parents=True, exist_ok=True)
                            path.write_text(json.dumps(seal(rec).model_dump(mode="json"), sort_keys=True))
                            written += 1


def run(code: Path, args: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of ``python -m harness ARGS`` run from CODE."""
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def check_code(code: Path) -> None:
    found = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(code)}, cwd=code, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"PYTHONPATH={code} imports harness from {found}, not from that checkout")


def scenario(name: str, source: Path, args: list[str], old: Path, runs: int, work: Path) -> dict:
    rows: dict[str, list[tuple[float, float, int]]] = {"old": [], "new cold": [], "new warm": []}
    old_results, new_results = work / f"{name}-old", work / f"{name}-new"
    for folder in (old_results, new_results):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".bench-cache"))
    out = work / "out"

    def command(results: Path) -> list[str]:
        return [a.replace("{results}", str(results)).replace("{out}", str(out)) for a in args]

    rows["new cold"].append(run(NEW, command(new_results), NEW))
    for _ in range(runs):
        rows["old"].append(run(old, command(old_results), old))
        rows["new warm"].append(run(NEW, command(new_results), NEW))
    summary = {}
    for label, values in rows.items():
        summary[label] = {"wall_s": statistics.median(v[0] for v in values),
                          "peak_mb": max(v[1] for v in values), "exit": sorted({v[2] for v in values})}
    summary["ratio_warm"] = summary["new warm"]["wall_s"] / summary["old"]["wall_s"]
    summary["ratio_cold"] = summary["new cold"]["wall_s"] / summary["old"]["wall_s"]
    return summary


def main() -> None:
    if sys.argv[1:2] == ["--generate"]:
        synthetic(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="A checkout of the baseline commit.")
    parser.add_argument("--new", type=Path, default=ROOT, help="The checkout to time (default: this one).")
    parser.add_argument("--records", type=int, default=0, help="Also audit N synthetic records (0: skip).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-committed", action="store_true")
    args = parser.parse_args()
    global NEW
    NEW = args.new.resolve()
    check_code(NEW)
    check_code(args.old)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-speed-"))
    results = {}
    try:
        if not args.skip_committed:
            committed = work / "committed"
            subprocess.run(f"git -C {ROOT} archive HEAD results | tar -x -C {work} && mv {work}/results {committed}",
                           shell=True, check=True)
            results["audit digits-cnn (committed)"] = scenario(
                "audit", committed, ["audit", "--results", "{results}", "--track", "digits-cnn", "--out", "{out}"],
                args.old, args.runs, work)
            results["leaderboard (committed)"] = scenario(
                "leaderboard", committed, ["leaderboard", "--results", "{results}"], args.old, args.runs, work)
        if args.records:
            folder = work / f"synthetic-{args.records}"
            start = time.perf_counter()
            # written by the baseline's code, so both schemas accept them
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate", str(folder), str(args.records)],
                           env={**os.environ, "PYTHONPATH": str(args.old)}, cwd=args.old, check=True)
            print(f"wrote {args.records} synthetic records in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            results[f"audit {args.records} synthetic"] = scenario(
                "synthetic", folder, ["audit", "--results", "{results}", "--out", "{out}"], args.old, args.runs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, row in results.items():
        print(f"{name}:")
        for label in ("old", "new cold", "new warm"):
            r = row[label]
            print(f"  {label:9} {r['wall_s']:7.2f} s  peak {r['peak_mb']:6.0f} MB  exit {r['exit']}")
        print(f"  new/old   cold {row['ratio_cold']:.2f}  warm {row['ratio_warm']:.2f}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
