"""Benchmark: NUTS ANCOVA through the runner on all cores (compile once per worker, then fits in parallel).

    python benchmarks/bench_runner_nuts.py [--small 20] [--large 220]

Runs the textbook scenario (200 patients) with the ``ancova_nuts`` plan twice, with ``small`` and ``large``
trials; the difference of wall times over the difference of trials is the marginal throughput (fits/s on the
whole machine), free of the one-off compile in each worker.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from trialsim.runner import simulate
from trialsim.spec import load_design

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=220)
    args = parser.parse_args()
    scenario, plan = load_design(ROOT / "scenarios" / "textbook_two_arm.yaml", ROOT / "analysis" / "ancova_nuts.yaml")
    cores = len(os.sched_getaffinity(0))
    seconds = {}
    for trials in (args.small, args.large):
        start = time.perf_counter()
        results = simulate(scenario, plan, trials, seed=1, workers=cores)
        seconds[trials] = time.perf_counter() - start
        failed = results.summary["design_points"][0].get("failed_diagnostics", 0.0)
        print(f"{trials:>5} trials on {cores} workers: {seconds[trials]:6.1f} s (failed diagnostics {failed:.1%})")
    rate = (args.large - args.small) / (seconds[args.large] - seconds[args.small])
    print(f"marginal throughput: {rate:.1f} NUTS ANCOVA fits/s on {cores} cores (compile excluded)")


if __name__ == "__main__":
    main()
