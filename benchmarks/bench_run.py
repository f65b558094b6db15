"""Benchmark: simulated trials per second of `trialsim run`, side by side in one run (this machine is shared and
noisy: compare the figures of one run with each other, not with another day's).

    python benchmarks/bench_run.py [--trials 20000] [--repeats 3] [--smoke]

Measures, best of ``repeats`` wall-clock timings:

1. in process, all cores: the realistic fixed design (``clozapine_augmentation`` at N = 200, conjugate ANCOVA)
   and the two-arm group-sequential design (``two_arm_group_sequential``: two interim looks and a final analysis,
   conjugate), and the fixed design serially;
2. through the command line (`python -m trialsim run`, interpreter start-up and output writing included):
   ``clozapine_augmentation`` with ``trials`` trials at each of its 7 design points, and the textbook two-arm
   design (``textbook_two_arm``, 30,000 trials);
3. where Rscript with rpact is installed, rpact's ``getSimulationMeans`` on the same fixed designs (N = 200,
   3 points, SD 15; N = 200, 6 points — the textbook design) and the same group-sequential design (N = 240,
   6 points, O'Brien–Fleming boundaries at 1/3, 2/3, 1), in the same run, with the ratios. rpact simulates
   the test statistics stage by stage; trialsim simulates and analyses every patient of every trial.

Targets (issue 7, 2 cores): ≥ 15,000 trials/s in process for the fixed design, ≥ 10,000 trials/s through the CLI
for 7 × 20,000 trials, ≥ 3,000 trials/s for the group-sequential design.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def best_of(repeats: int, run) -> float:
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        run(repeat)
        best = min(best, time.perf_counter() - start)
    return best


def in_process(name: str, trials: int, workers: int, repeats: int, sample_size: int | None = None) -> float:
    from trialsim.runner import simulate
    from trialsim.spec import load_design

    scenario, plan = load_design(name)
    if sample_size is not None:
        scenario = scenario.model_copy(update={"sample_size": sample_size})
    simulate(scenario, plan, min(trials, 200), seed=0, workers=workers)  # warm the process pool's imports
    return best_of(repeats, lambda r: simulate(scenario, plan, trials, seed=1 + r, workers=workers))


def through_cli(name: str, trials: int, workers: int, out: Path) -> float:
    command = [sys.executable, "-m", "trialsim", "run", name, "--trials", str(trials), "--seed", "1",
               "--workers", str(workers), "--out", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def row(label: str, trials: int, seconds: float, target: float | None = None) -> None:
    rate = trials / seconds
    verdict = "" if target is None else ("  target met" if rate >= target else f"  target {target:,.0f}: MISSED")
    print(f"{label:<52}{trials:>9,}{seconds:>9.2f}{rate:>11,.0f}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20_000, help="trials per design point")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny run of every measurement (for the test suite)")
    args = parser.parse_args()
    trials, repeats = (200, 1) if args.smoke else (args.trials, args.repeats)
    textbook = 300 if args.smoke else 30_000
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; best of {repeats}")
    print(f"{'measurement':<52}{'trials':>9}{'seconds':>9}{'trials/s':>11}")
    fixed = in_process("clozapine_augmentation", trials, cores, repeats, sample_size=200)
    row(f"fixed design N=200, in process, {cores} workers", trials, fixed, 15_000)
    serial = in_process("clozapine_augmentation", trials, 1, repeats, sample_size=200)
    row("fixed design N=200, in process, serial", trials, serial)
    sequential = in_process("two_arm_group_sequential", trials, cores, repeats)
    row(f"group-sequential (3 analyses), in process, {cores} workers", trials, sequential, 3_000)
    with tempfile.TemporaryDirectory() as tmp:
        cli = through_cli("clozapine_augmentation", trials, cores, Path(tmp) / "cli")
        row(f"CLI clozapine_augmentation, 7 design points x {trials:,}", 7 * trials, cli, 10_000)
        cli_textbook = through_cli("textbook_two_arm", textbook, cores, Path(tmp) / "textbook")
        row("CLI textbook_two_arm", textbook, cli_textbook)
    from rpact_peer import rpact_available, time_rpact_means

    missing = rpact_available()
    if missing:
        print(f"rpact comparison skipped: {missing}")
        return
    obf = [3.710, 2.511, 1.993]
    peers = [
        ("fixed design N=200, 3 points", time_rpact_means(3.0, 15.0, 200, trials), trials / fixed),
        ("textbook N=200, 6 points (vs trialsim CLI)", time_rpact_means(6.0, 15.0, 200, textbook),
         textbook / cli_textbook),
        ("group-sequential N=240, 6 points, OBF", time_rpact_means(6.0, 15.0, 240, trials, [1 / 3, 2 / 3, 1], obf),
         trials / sequential),
    ]
    print(f"{'rpact getSimulationMeans':<52}{'trials':>9}{'seconds':>9}{'trials/s':>11}{'trialsim/rpact':>16}")
    for label, peer, ours in peers:
        rate = peer["iterations"] / peer["seconds"]
        print(f"{label:<52}{peer['iterations']:>9,}{peer['seconds']:>9.2f}{rate:>11,.0f}{ours / rate:>16.2f}")


if __name__ == "__main__":
    main()
