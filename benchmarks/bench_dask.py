"""Benchmark: dask.distributed against the process pool and a serial run, same chunks, same numbers.

    python benchmarks/bench_dask.py [--trials 20000] [--nuts-trials 1000] [--workers 2] [--repeats 3] [--smoke]

In process (the machine is shared: compare the figures of one run with each other):

1. conjugate: the realistic scenario (``clozapine_augmentation``) at N = 200, ``--trials`` trials, the best of
   ``--repeats`` runs;
2. NUTS: the textbook scenario (N = 200) with the ``ancova_nuts`` plan, ``--nuts-trials`` trials, twice: the
   first run compiles the model (once in this process, once per pool or dask worker), the second finds it
   compiled where the process lives on — this process and the dask workers; a process pool starts new workers,
   which compile again. ``--smoke`` uses the t-test plan, which needs no compilation.

Serial, a process pool of ``--workers`` and a dask ``LocalCluster`` of ``--workers`` single-threaded workers
(its start-up, ≈ 2–10 s, is reported apart and excluded: a cluster serves many runs). × serial compares with the
serial run of the same row kind. Every table is checked to be identical to the serial one. Target (issue 10):
dask ≥ 1.5× serial on 2 workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--nuts-trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (conjugate)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every measurement (for the test suite)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    warnings.simplefilter("ignore")
    from trialsim.backends import local_cluster
    from trialsim.runner import run_trials
    from trialsim.spec import load_design

    conjugate = load_design("clozapine_augmentation")
    conjugate = (conjugate[0].model_copy(update={"sample_size": 200}), conjugate[1])
    # The smoke mode replaces NUTS by the other per-trial engine (the t-test), which needs no compilation.
    per_trial = load_design("textbook_two_arm", "ancova_ttest" if args.smoke else "ancova_nuts")
    conjugate_repeats = 1 if args.smoke else args.repeats
    cases = [("conjugate, clozapine_augmentation N=200", conjugate, 300 if args.smoke else args.trials),
             (f"{per_trial[1].name}, textbook N=200", per_trial, 20 if args.smoke else args.nuts_trials)]
    start = time.perf_counter()
    cluster = local_cluster(args.workers)
    print(f"dask LocalCluster of {args.workers} workers started in {time.perf_counter() - start:.1f} s (excluded)")
    print(f"{'design':<42}{'backend':<30}{'trials':>8}{'seconds':>9}{'trials/s':>10}{'× serial':>10}  identical")
    backends = [("serial", dict(workers=1)), (f"process pool ({args.workers})", dict(workers=args.workers)),
                (f"dask ({args.workers})", dict(workers=args.workers, backend="dask",
                                                scheduler=cluster.scheduler_address))]
    try:
        for label, (scenario, plan), trials in cases:
            rounds = [("", conjugate_repeats)] if plan.engine == "conjugate" else [(", first run", 1), (", again", 1)]
            for suffix, repeats in rounds:
                reference = None
                for name, options in backends:
                    seconds = float("inf")
                    for _ in range(repeats):
                        start = time.perf_counter()
                        table, _ = run_trials(scenario, plan, trials, seed=1, **options)
                        seconds = min(seconds, time.perf_counter() - start)
                    table = table.drop(columns=["worker_pid", "compiles_in_worker"], errors="ignore")
                    reference = reference or (table, seconds)
                    print(f"{label:<42}{name + suffix:<30}{trials:>8,}{seconds:>9.2f}{trials / seconds:>10.1f}"
                          f"{reference[1] / seconds:>10.2f}  {table.equals(reference[0])}", flush=True)
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
