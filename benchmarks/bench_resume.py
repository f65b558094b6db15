"""Benchmark: what an interruption costs — a run stopped half-way (Ctrl-C, kill -9) and resumed, or run in two
halves (grown), against the same run uninterrupted.

    python benchmarks/bench_resume.py [--trials 20000] [--workers 2] [--smoke]

The realistic scenario (``clozapine_augmentation``) at one design point (N = 200, conjugate ANCOVA), through the
command line into fresh run directories. Overhead = (time until the interrupted run exited + time of the resumed
run) − time of the uninterrupted run: interpreter start-up, reading the parts again, the chunks running when it
was stopped (lost), and assembling trials.parquet and summary.json twice for the grown run. Each variant's
trials.parquet is checked to be byte for byte the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory import scenario_file  # noqa: E402


def command(path: Path, out: Path, trials: int, workers: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trialsim", "run", str(path), "--trials", str(trials), "--seed", "1",
            "--workers", str(workers), "--out", str(out), "--quiet", *extra]


def timed(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def interrupted(arguments: list[str], out: Path, parts: int, sig: int) -> float:
    """Seconds from start until the run, stopped by ``sig`` once ``parts`` parts exist, has exited."""
    start = time.perf_counter()
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    while not (out / "parts").is_dir() or len(list((out / "parts").glob("*.parquet"))) < parts:
        if process.poll() is not None:
            raise SystemExit("the run finished before it could be interrupted; give more --trials")
        time.sleep(0.01)
    os.killpg(process.pid, sig)
    process.wait()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every measurement (for the test suite)")
    args = parser.parse_args()
    from trialsim.budget import chunk_size
    from trialsim.spec import load_design

    trials = 400 if args.smoke else args.trials
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = scenario_file(folder, 200)
        scenario, plan = load_design(path)
        half = -(-trials // chunk_size(scenario, plan, 200, trials, args.workers)) // 2
        reference = folder / "uninterrupted"
        base = timed(command(path, reference, trials, args.workers))
        print(f"{trials:,} trials of clozapine_augmentation (N = 200), {args.workers} workers; interrupted after "
              f"{half} of {2 * half} parts")
        print(f"{'run':<44}{'seconds':>9}{'overhead':>10}  identical")
        print(f"{'uninterrupted':<44}{base:>9.2f}{'':>10}")
        for label, sig in (("Ctrl-C, then --resume", signal.SIGINT), ("kill -9, then --resume", signal.SIGKILL)):
            out = folder / label.split(",")[0]
            first = interrupted(command(path, out, trials, args.workers), out, half, sig)
            second = timed(command(path, out, trials, args.workers, "--resume"))
            same = (out / "trials.parquet").read_bytes() == (reference / "trials.parquet").read_bytes()
            total = first + second
            print(f"{label:<44}{total:>9.2f}{total - base:>+10.2f}  {same}")
        out = folder / "grown"
        total = timed(command(path, out, trials // 2, args.workers)) + timed(command(path, out, trials, args.workers))
        same = (out / "trials.parquet").read_bytes() == (reference / "trials.parquet").read_bytes()
        print(f"{'half, then grown to the full count':<44}{total:>9.2f}{total - base:>+10.2f}  {same}")


if __name__ == "__main__":
    main()
