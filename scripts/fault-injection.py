"""Fault injection for ``bench run``: SIGKILL the driver at random moments, rerun, and check nothing was lost,
nothing corrupted, nothing left running and nothing done twice.

For each scenario (plain, ``--workers 2``, ``--engine fused``, ``--checkpoint-dir``, and a kill during dense
training) a fresh results folder for the digits track is run and killed ``--kills`` times at a random moment,
then run to completion. After every kill the script checks:

* no process of the killed command survives (pool workers, a plugin's isolated child): every process the
  command started carries a marker in its environment, and none may remain a few seconds after the kill;
* every record seen before the kill is still there, unchanged (``records lost``), and every record file
  parses;
* a record file replaced by a later command means that run was computed twice (``runs done twice``).

After the final rerun the records must equal those of an uninterrupted run of the same command (every field
but wall time, the environment block, the content digest that covers them, and a fused run's group
partners) and no temporary file may remain in the results folder.

    python scripts/fault-injection.py --kills 12 --seed 1

prints one line per kill and the totals (``--json`` for a machine-readable summary). Exit status 1 when
anything was lost, corrupted, left running, done twice or differs from the uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRACK = "digits-cnn"
GRID = ["--schedules", "ft,lrw", "--budgets", "1,2", "--seeds", "0,1"]
"""16 runs (l1-norm and its twin at uniform-50, two schedules, two budgets, two seeds) on two dense baselines."""
SCENARIOS = {
    "plain": [],
    "workers-2": ["--workers", "2"],
    "fused": ["--engine", "fused"],
    "checkpoint-dir": ["--checkpoint-dir", "{tmp}/checkpoints"],
    "dense": [],
}
"""Extra options per scenario; ``dense`` starts without dense baselines and is killed while training them."""
IGNORED = {"wall_seconds", "env", "content_digest", "fused_group"}
"""Record fields that legitimately differ between an interrupted and an uninterrupted run."""
GRACE_SECONDS = 5.0
"""How long the killed command's descendants get to notice their driver is gone."""


def command(results: Path, extra: list[str], tmp: Path) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--track", TRACK, *GRID, "--results", str(results),
            "--json", *[part.format(tmp=tmp) for part in extra]]


def environment(tag: str) -> dict[str, str]:
    env = dict(os.environ, FAULT_INJECTION_TAG=tag, PYTHONPATH=str(REPO))
    env.setdefault("PRUNE_BENCH_TRACKS", str(REPO / "bench" / "tracks"))
    return env


def tagged_processes(tag: str) -> list[int]:
    """Processes whose environment carries ``tag``: the command's descendants, whatever their session."""
    marker = f"FAULT_INJECTION_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def records(results: Path) -> dict[str, tuple[int, dict | None]]:
    """Record files of the track: id -> (inode, content or None when it does not parse)."""
    found = {}
    for path in sorted((results / TRACK).glob("*.json")):
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            content = None
        found[path.stem] = (path.stat().st_ino, content)
    return found


def temporary_files(results: Path) -> list[str]:
    return sorted(str(p.relative_to(results)) for p in results.rglob("*")
                  if p.is_file() and (".tmp" in p.name or p.name.startswith("tmp")))


def run_to_end(results: Path, extra: list[str], tmp: Path) -> tuple[int, dict | None, float]:
    start = time.monotonic()
    done = subprocess.run(command(results, extra, tmp), env=environment(uuid.uuid4().hex), cwd=REPO,
                          capture_output=True, text=True)
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = None
        sys.stderr.write(done.stderr[-2000:])
    return done.returncode, summary, time.monotonic() - start


def comparable(content: dict | None) -> dict | None:
    return None if content is None else {k: v for k, v in content.items() if k not in IGNORED}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs in all, spread over the scenarios")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--window", type=float, default=0.75,
                        help="kills land uniformly in [1 s, this fraction of the phase's measured length]: a loaded "
                             "machine's reference is slower than the runs after it, and a kill after the end kills nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    chance = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="fault-injection-"))
    totals = {"kills": 0, "kills_survived": 0, "orphans": 0, "records_lost": 0, "records_corrupt": 0,
              "runs_done_twice": 0, "records_differing": 0, "temporary_files_left": 0, "reruns_failed": 0}
    lines = []
    try:
        # Uninterrupted references: the plain loop (also what --workers and --checkpoint-dir must give) and fused.
        # The first trains the dense baselines; the moment the last is saved splits its time into the dense
        # phase and the retraining one, the windows the kills are drawn from.
        references, windows = {}, {}
        for engine, extra in (("eager", []), ("fused", SCENARIOS["fused"])):
            folder = tmp / f"reference-{engine}"
            if engine == "fused":
                shutil.copytree(tmp / "reference-eager" / TRACK / "dense", folder / TRACK / "dense")
            started = time.time()
            rc, summary, seconds = run_to_end(folder, extra, tmp)
            if rc != 0 or summary is None:
                print(f"reference run ({engine}) failed with exit status {rc}", file=sys.stderr)
                return 1
            references[engine] = {k: comparable(c) for k, (_, c) in records(folder).items()}
            if engine == "eager":  # a rerun with every run done costs the start-up alone
                _, _, startup = run_to_end(folder, extra, tmp)
                dense_done = max(p.stat().st_mtime for p in (folder / TRACK / "dense").glob("*.pt"))
                windows["dense"], windows["eager"] = dense_done - started, startup + started + seconds - dense_done
            else:
                windows["fused"] = seconds
            print(f"reference ({engine}): {len(references[engine])} records in {seconds:.0f} s; kills drawn from "
                  + ", ".join(f"{k} [1, {v:.0f}] s" for k, v in windows.items()), flush=True)
        names = list(SCENARIOS)
        shares = [args.kills // len(names) + (i < args.kills % len(names)) for i in range(len(names))]
        for name, kills in zip(names, shares):
            extra = SCENARIOS[name]
            engine = "fused" if name == "fused" else "eager"
            folder = tmp / name
            if name != "dense":  # start from trained baselines, so kills land in retraining
                shutil.copytree(tmp / "reference-eager" / TRACK / "dense", folder / TRACK / "dense")
            window = windows["dense" if name == "dense" else engine]
            seen: dict[str, tuple[int, dict | None]] = {}
            for index in range(kills):
                tag = uuid.uuid4().hex
                delay = chance.uniform(1.0, max(2.0, args.window * window))
                driver = subprocess.Popen(command(folder, extra, tmp), env=environment(tag), cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(delay)
                finished = driver.poll() is not None
                if not finished:
                    driver.send_signal(signal.SIGKILL)
                driver.wait()
                time.sleep(GRACE_SECONDS)
                orphans = tagged_processes(tag)
                for pid in orphans:  # do not let a leak spoil the next kill's figures
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                now = records(folder)
                lost = [k for k in seen if k not in now]
                twice = [k for k, (inode, _) in seen.items() if k in now and now[k][0] != inode]
                corrupt = [k for k, (_, content) in now.items() if content is None]
                seen = now
                totals["runs_done_twice"] += len(twice)
                totals["kills"] += not finished
                totals["orphans"] += len(orphans)
                totals["records_lost"] += len(lost)
                totals["records_corrupt"] += len(corrupt)
                ok = not (orphans or lost or corrupt or twice)
                totals["kills_survived"] += ok and not finished
                lines.append(f"{name} kill {index + 1}/{kills} at {delay:.1f} s: "
                             + ("finished before the kill" if finished else "killed")
                             + f", {len(now)} records, {len(orphans)} processes left, {len(lost)} lost, "
                               f"{len(corrupt)} corrupt, {len(twice)} recomputed")
                print(lines[-1], flush=True)
            rc, summary, _ = run_to_end(folder, extra, tmp)
            final = records(folder)
            twice = [k for k, (inode, _) in seen.items() if k in final and final[k][0] != inode]
            differing = sorted(set(references[engine]) ^ set(final)) + [
                k for k in references[engine] if k in final and comparable(final[k][1]) != references[engine][k]]
            left = temporary_files(folder)
            totals["runs_done_twice"] += len(twice)
            totals["records_differing"] += len(differing)
            totals["temporary_files_left"] += len(left)
            totals["reruns_failed"] += rc != 0
            lines.append(f"{name} rerun: exit {rc}, {len(final)} records ({len(references[engine])} expected), "
                         f"{len(differing)} differ from the uninterrupted run, {len(twice)} done twice, "
                         f"{len(left)} temporary files left")
            print(lines[-1], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    bad = sum(totals[k] for k in ("orphans", "records_lost", "records_corrupt", "runs_done_twice",
                                  "records_differing", "temporary_files_left", "reruns_failed"))
    if args.json:
        print(json.dumps(totals, indent=2))
    else:
        print(f"{totals['kills']} kills, {totals['kills_survived']} survived; {totals['records_lost']} records lost, "
              f"{totals['records_corrupt']} corrupt, {totals['runs_done_twice']} runs done twice, "
              f"{totals['orphans']} processes left running, {totals['records_differing']} records differing from "
              f"an uninterrupted run, {totals['temporary_files_left']} temporary files left")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
