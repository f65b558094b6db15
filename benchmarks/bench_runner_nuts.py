"""Benchmark: NUTS ANCOVA through the runner on all cores (compile once per worker, then fits in parallel).

    python benchmarks/bench_runner_nuts.py [--small 20] [--large 220] [--smoke]

Runs the textbook scenario (200 patients) with the ``ancova_nuts`` plan twice, with ``small`` and ``large``
trials; the difference of wall times over the difference of trials is the marginal throughput (fits/s on the
whole machine), free of the one-off compile in each worker. ``--smoke``: 8 and 16 trials of 100 + 100 draws (two
chunks or more, so the worker pool runs as in the full benchmark; such short fits fail the ESS ≥ 400 diagnostic)
— the same code in the time of the workers' compilations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trialsim.runner import simulate  # noqa: E402
from trialsim.spec import load_design  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=220)
    parser.add_argument("--smoke", action="store_true", help="one tiny case through the same code (seconds)")
    args = parser.parse_args()
    scenario, plan = load_design(ROOT / "scenarios" / "textbook_two_arm.yaml", ROOT / "analysis" / "ancova_nuts.yaml")
    if args.smoke:
        args.small, args.large = 8, 16
        plan = plan.model_copy(update={"sampler": plan.sampler.model_copy(update={"draws": 100, "tune": 100})})
    cores = len(os.sched_getaffinity(0))
    print(f"\nNUTS ANCOVA ({plan.name}) through the runner, textbook scenario, {cores} workers\n")
    header = f"{'trials':>8}{'wall s':>10}{'failed diagnostics':>20}"
    print(header)
    print("-" * len(header))
    seconds = {}
    for trials in (args.small, args.large):
        start = time.perf_counter()
        results = simulate(scenario, plan, trials, seed=1, workers=cores)
        seconds[trials] = time.perf_counter() - start
        failed = results.summary["design_points"][0].get("failed_diagnostics", 0.0)
        print(f"{trials:>8}{seconds[trials]:>10.1f}{failed:>20.1%}")
    extra = seconds[args.large] - seconds[args.small]
    rate = f"{(args.large - args.small) / extra:.1f}" if extra > 0 else "n/a (no measurable difference)"
    print(f"\nmarginal throughput: {rate} NUTS ANCOVA fits/s on {cores} cores (compile excluded)")


if __name__ == "__main__":
    main()
