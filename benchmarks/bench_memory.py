"""Benchmark: peak memory of `trialsim run` against the number of trials (flat), and of one very large trial.

    python benchmarks/bench_memory.py [--trials 100000,1000000] [--patients 100000] [--workers 2] [--smoke]

Runs, through the command line into a fresh run directory, the realistic scenario (``clozapine_augmentation``)
at one design point (N = 200, 13 visits, conjugate ANCOVA) with each number of trials, and one trial of
``--patients`` patients. The peak resident memory of the whole process tree (the run and its workers, sampled
every 50 ms) and of the run's own process are reported with the wall time. Memory should not grow with the
trials: the parent holds at most two chunks per worker and one column of floats per quantile of a design point
(8 bytes per trial); each worker holds one chunk, sized to the budget (``--memory-mb``, default 512).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def scenario_file(folder: Path, sample_size: int) -> Path:
    """The bundled realistic scenario at one design point (a very large trial recruits at 2,000 sites, 2 patients
    screened per site per week, so that it still recruits within a few years)."""
    data = yaml.safe_load((ROOT / "scenarios" / "clozapine_augmentation.yaml").read_text())
    data["sample_size"] = sample_size
    if sample_size > 10_000:
        data["recruitment"].update(sites=2000, rate_per_site_per_week=2.0)
    data["analysis_plan"] = str((ROOT / "scenarios" / data["analysis_plan"]).resolve())
    path = folder / f"clozapine_n{sample_size}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def peak_memory(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; (peak RSS of the process tree, peak RSS of the process itself, seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    watched = psutil.Process(process.pid)
    tree = own = 0
    while process.poll() is None:
        try:
            rss = [watched.memory_info().rss]
            rss += [child.memory_info().rss for child in watched.children(recursive=True)]
        except psutil.Error:
            continue
        tree, own = max(tree, sum(rss)), max(own, rss[0])
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(process.stderr.read().decode())
    return tree / MB, own / MB, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", default="100000,1000000", help="comma-separated trial counts")
    parser.add_argument("--patients", type=int, default=100_000, help="patients of the one large trial")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--smoke", action="store_true", help="tiny runs of every measurement (for the test suite)")
    args = parser.parse_args()
    counts = [200, 2000] if args.smoke else [int(k) for k in args.trials.split(",")]
    patients = 2000 if args.smoke else args.patients
    print(f"{args.workers} workers; peak resident memory (MB) of the run and its workers")
    print(f"{'run':<52}{'trials':>10}{'tree MB':>10}{'parent MB':>11}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [("clozapine_augmentation, N = 200", scenario_file(folder, 200), k) for k in counts]
        runs.append((f"one trial of {patients:,} patients", scenario_file(folder, patients), 1))
        for i, (label, path, trials) in enumerate(runs):
            command = [sys.executable, "-m", "trialsim", "run", str(path), "--trials", str(trials), "--seed", "1",
                       "--workers", str(args.workers), "--out", str(folder / f"out{i}"), "--quiet"]
            tree, own, seconds = peak_memory(command)
            print(f"{label:<52}{trials:>10,}{tree:>10.0f}{own:>11.0f}{seconds:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
