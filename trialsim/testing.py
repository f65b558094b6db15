"""Synthetic data for testing and benchmarking analyses (not a trial simulation: a fixed, simple generator)."""

from __future__ import annotations

import numpy as np

from trialsim.inference.data import TrialData


def synthetic_trial(
    seed: int,
    n_per_arm: int = 100,
    effect: float = 5.0,
    n_arms: int = 2,
    visit_weeks=(0, 2, 4, 6, 8, 12),
    sd_intercept: float = 10.0,
    sd_resid: float = 8.0,
    dropout_rate: float = 0.15,
) -> TrialData:
    """Two-(or more-)arm trial: baseline ~ N(98, 20); change at week w = −(4 + δ·arm)·w/W − 0.2·(baseline − 98)·w/W
    + patient intercept + residual; a fraction of patients drops out after a random post-baseline visit."""
    rng = np.random.default_rng(seed)
    weeks = np.asarray(visit_weeks, dtype=float)
    frac = weeks / weeks[-1]
    arm = np.repeat(np.arange(n_arms), n_per_arm)
    n = arm.size
    baseline = rng.normal(98.0, 20.0, n)
    delta = np.where(arm == 0, 0.0, effect * arm / max(n_arms - 1, 1))
    u = rng.normal(0.0, sd_intercept, n)[:, None]
    change = (
        -(4.0 + delta[:, None]) * frac[None, :]
        - 0.2 * (baseline[:, None] - 98.0) * frac[None, :]
        + (u + rng.normal(0.0, sd_resid, (n, weeks.size))) * (frac[None, :] > 0)
    )
    panss = baseline[:, None] + change
    panss[:, 0] = baseline
    drop = rng.random(n) < dropout_rate
    last = np.where(drop, rng.integers(0, weeks.size - 1, n), weeks.size - 1)
    panss = np.where(np.arange(weeks.size)[None, :] <= last[:, None], panss, np.nan)
    names = ("control",) + tuple(f"active{k}" for k in range(1, n_arms))
    return TrialData(
        arm_names=names,
        control=0,
        visit_weeks=weeks,
        endpoint_visit=weeks.size - 1,
        site=np.zeros(n, dtype=int),
        arm=arm,
        randomised_week=np.zeros(n),
        baseline=baseline,
        panss=panss,
        visit_time=np.where(np.isfinite(panss), weeks[None, :], np.nan),
        dropout_week=np.where(drop, weeks[last] + 0.5, np.inf),
        dropout_reason=np.where(drop, "withdrawal", ""),
    )
