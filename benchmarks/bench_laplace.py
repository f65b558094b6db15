"""Benchmark: fits per second of the laplace engine and of NUTS on the same data sets, same model and priors.

    python benchmarks/bench_laplace.py [--fits 20] [--laplace-fits 400] [--repeats 3]
                                       [--covariances unstructured,ar1,random_intercept] [--smoke]

Data: simulated two-arm trials of 200 patients, baseline + 5 post-baseline visits, 15 % dropout
(:func:`trialsim.testing.synthetic_trial`, the data sets of ``bench_nuts.py``). For each covariance:

- NUTS = :class:`trialsim.inference.nuts.NutsAnalysis` (``longitudinal``, compiled once, 2 chains × 1000 draws
  after 500 tuning steps, one core), fitted to the first ``--fits`` data sets one after another;
- laplace = :class:`trialsim.inference.laplace.LaplaceAnalysis` with the same priors, fitted to ``--laplace-fits``
  data sets in chunks of 50 trials (as the runner hands them over) — the first ``--fits`` are the NUTS ones.

Both are timed ``--repeats`` times and the best repeat is reported (the machine is shared), as wall-clock and
CPU fits/s; the compile is excluded. The ratio is laplace / NUTS CPU fits/s. Agreement on the data sets both
fitted: the largest |Δ posterior mean| in NUTS posterior SDs and the largest |Δ P(effect > 0)| (NUTS's own Monte
Carlo error is ≈ 0.015 SD and ≈ 0.005 at P ≈ 0.9). ``--smoke``: one small case (60 patients, 2 post-baseline
visits, unstructured, 2 short NUTS fits) through the same code, in about the time of one NUTS compilation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trialsim.testing import synthetic_trial  # noqa: E402

CHUNK = 50


def best_time(fit, repeats: int) -> tuple[list[dict], float, float]:
    """The records of ``fit()`` and its best (wall, CPU) seconds over ``repeats`` calls."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(max(repeats, 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        records = fit()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return records, wall, cpu


def fit_nuts(nuts, datasets, seeds) -> list[dict]:
    return [nuts.fit(data, seed=seed)["active1"] for data, seed in zip(datasets, seeds)]


def fit_laplace(laplace, datasets, seeds) -> list[dict]:
    """In chunks of ``CHUNK`` trials, as the runner hands them to the engine."""
    return [
        result["active1"]
        for start in range(0, len(datasets), CHUNK)
        for result in laplace.fit_many(datasets[start : start + CHUNK], seeds[start : start + CHUNK])
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fits", type=int, default=20, help="NUTS fits per covariance (default 20)")
    ap.add_argument("--laplace-fits", type=int, default=400, help="laplace fits per covariance (default 400)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (best reported)")
    ap.add_argument("--covariances", default="unstructured,ar1,random_intercept")
    ap.add_argument("--smoke", action="store_true", help="one tiny case through the same code (seconds)")
    args = ap.parse_args(argv)
    draws, tune, patients, visits = 1000, 500, 100, (0, 2, 4, 6, 8, 12)
    if args.smoke:
        args.fits, args.laplace_fits, args.repeats, args.covariances = 2, 8, 1, "unstructured"
        draws, tune, patients, visits = 100, 100, 30, (0, 2, 4)

    from trialsim.inference.laplace import LaplaceAnalysis
    from trialsim.inference.nuts import NutsAnalysis, configure_backend

    configure_backend()
    warnings.filterwarnings("ignore")
    n = max(args.fits, args.laplace_fits)
    datasets = [synthetic_trial(1000 + i, n_per_arm=patients, visit_weeks=visits) for i in range(n)]
    seeds = list(range(n))
    rows = []
    for covariance in [c.strip() for c in args.covariances.split(",") if c.strip()]:
        t0 = time.perf_counter()
        nuts = NutsAnalysis(
            "longitudinal",
            n_max=2 * patients,
            n_visits=len(visits),
            residual=covariance,
            draws=draws,
            tune=tune,
            chains=2,
        )
        compile_s = time.perf_counter() - t0
        laplace = LaplaceAnalysis(covariance)
        nuts.fit(datasets[0], seed=0)  # warm-up (first-call numba/arrow set-up)
        laplace.fit(datasets[0], seed=0)
        nuts_records, nuts_wall, nuts_cpu = best_time(
            lambda nuts=nuts: fit_nuts(nuts, datasets[: args.fits], seeds),
            args.repeats,
        )
        laplace_records, laplace_wall, laplace_cpu = best_time(
            lambda laplace=laplace: fit_laplace(laplace, datasets[: args.laplace_fits], seeds),
            args.repeats,
        )
        shared = range(min(args.fits, args.laplace_fits))
        mean_gap = max(
            abs(laplace_records[i]["estimate"] - nuts_records[i]["estimate"]) / nuts_records[i]["sd"] for i in shared
        )
        prob_gap = max(
            abs(laplace_records[i]["prob_effect_gt_margin"] - nuts_records[i]["prob_effect_gt_margin"]) for i in shared
        )
        rows.append(
            (
                covariance,
                compile_s,
                args.fits / nuts_wall,
                args.fits / nuts_cpu,
                args.laplace_fits / laplace_wall,
                args.laplace_fits / laplace_cpu,
                mean_gap,
                prob_gap,
            )
        )

    print(
        f"\nLongitudinal model, {2 * patients} patients, {len(visits) - 1} post-baseline visits; NUTS {draws} draws "
        f"+ {tune} tuning × 2 chains on one core, laplace in chunks of {CHUNK}; best of {args.repeats}\n"
    )
    header = (
        f"{'covariance':<18}{'compile s':>10}{'NUTS fits/s':>13}{'(CPU)':>8}{'laplace fits/s':>16}{'(CPU)':>9}"
        f"{'ratio (CPU)':>13}{'max |Δmean|/sd':>16}{'max |ΔP|':>10}"
    )
    print(header)
    print("-" * len(header))
    for covariance, compile_s, nw, nc, lw, lc, mean_gap, prob_gap in rows:
        print(
            f"{covariance:<18}{compile_s:>10.1f}{nw:>13.2f}{nc:>8.2f}{lw:>16.1f}{lc:>9.1f}{lc / nc:>12.0f}x"
            f"{mean_gap:>16.3f}{prob_gap:>10.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
