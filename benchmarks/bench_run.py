"""Benchmark: simulated trials per second of `trialsim run` (DES + conjugate analysis), serial and on all cores.

Runs the realistic bundled scenario (clozapine_augmentation) at one design point of 200 patients:

    python benchmarks/bench_run.py [--trials 2000] [--repeats 3]

Reports the best of ``repeats`` wall-clock timings of the in-process run (excluding interpreter start-up), and
one timing of the full command line (`python -m trialsim run ...`, including start-up and writing the outputs).
Target (issue 2): ≥ 2,000 trials/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def scenario_file(folder: Path, sample_size: int) -> Path:
    data = yaml.safe_load((ROOT / "scenarios" / "clozapine_augmentation.yaml").read_text())
    data["sample_size"] = sample_size
    data["analysis_plan"] = str(ROOT / "analysis" / "ancova_vague.yaml")
    path = folder / "bench_scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def time_in_process(path: Path, trials: int, workers: int, repeats: int) -> float:
    from trialsim.runner import simulate
    from trialsim.spec import load_design

    scenario, plan = load_design(path)
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        simulate(scenario, plan, trials, seed=repeat, workers=workers)
        best = min(best, time.perf_counter() - start)
    return best


def time_cli(path: Path, trials: int, workers: int, out: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "trialsim",
        "run",
        str(path),
        "--trials",
        str(trials),
        "--seed",
        "1",
        "--workers",
        str(workers),
        "--out",
        str(out),
        "--quiet",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--sample-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = scenario_file(Path(tmp), args.sample_size)
        print(f"clozapine_augmentation, N = {args.sample_size}, {args.trials} trials, {cores} cores")
        print(f"{'mode':<28}{'seconds':>10}{'trials/s':>12}")
        for label, workers in (("in-process, serial", 1), (f"in-process, {cores} workers", cores)):
            seconds = time_in_process(path, args.trials, workers, args.repeats)
            print(f"{label:<28}{seconds:>10.2f}{args.trials / seconds:>12.0f}")
        for label, workers in (("CLI, serial", 1), (f"CLI, {cores} workers", cores)):
            seconds = time_cli(path, args.trials, workers, Path(tmp) / f"out{workers}")
            print(f"{label:<28}{seconds:>10.2f}{args.trials / seconds:>12.0f}")


if __name__ == "__main__":
    main()
