"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For each simulation: draw parameters θ̃ from the prior, data from the model given θ̃, then the posterior; the rank
of θ̃ among L posterior draws (or, for an exact posterior, its posterior CDF) is uniform when the inference is
calibrated. :func:`uniformity_pvalue` tests the ranks with a chi-square test on equal-width bins.

The conjugate ANCOVA is checked here exactly; the NUTS models are checked in ``tests/mcmc`` with
:func:`ranks_from_draws`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import stdtr


def ranks_from_draws(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank of each true value among its posterior draws: #{draws < truth}, in 0 … L (draws: (sims, L))."""
    return (draws < truth[:, None]).sum(axis=1)


def uniformity_pvalue(ranks: np.ndarray, max_rank: int, bins: int = 20) -> float:
    """Chi-square p-value of ranks 0 … max_rank against the discrete uniform (equal-width bins)."""
    edges = np.linspace(0, max_rank + 1, bins + 1)
    counts, _ = np.histogram(ranks, bins=edges)
    expected = len(ranks) * np.diff(edges) / (max_rank + 1)
    return float(stats.chisquare(counts, expected).pvalue)


def sbc_conjugate_ancova(
    sims: int = 2000,
    n_per_arm: int = 30,
    prior_mean: float = 2.0,
    prior_sd: float = 3.0,
    sd_reference: float = 15.0,
    sigma2_shape: float = 3.0,
    sigma2_scale: float = 2.0 * 225.0,
    seed: int = 0,
    analysis_prior_sd: float | None = None,
) -> np.ndarray:
    """Posterior CDF of the true effect in ``sims`` prior-predictive ANCOVA data sets (uniform if calibrated).

    Prior (the conjugate plan's form): σ² ~ IG(shape, scale); effect | σ² ~ N(prior_mean, (prior_sd·σ/sd_ref)²);
    intercept and baseline slope flat (drawn from wide normals: the posterior does not depend on them).
    ``analysis_prior_sd`` analyses with a different prior sd than the one generating the data (a deliberately
    miscalibrated check: the ranks must then fail the uniformity test).
    """
    from trialsim.inference.conjugate import analyse_ancova
    from trialsim.inference.data import TrialBatch
    from trialsim.spec.plan import AnalysisPlan

    rng = np.random.default_rng(seed)
    n = 2 * n_per_arm
    sigma2 = stats.invgamma.rvs(sigma2_shape, scale=sigma2_scale, size=sims, random_state=rng)
    sigma = np.sqrt(sigma2)
    effect = prior_mean + prior_sd * sigma / sd_reference * rng.standard_normal(sims)
    intercept = rng.normal(-4, 5, sims)
    slope = rng.normal(0, 0.2, sims)
    arm = np.tile(np.arange(n) % 2, (sims, 1))
    baseline = rng.normal(98, 20, (sims, n))
    change = (
        intercept[:, None]
        - effect[:, None] * arm
        + slope[:, None] * (baseline - 98)
        + sigma[:, None] * rng.standard_normal((sims, n))
    )
    panss = np.stack([baseline, baseline + change], axis=-1)
    batch = TrialBatch(
        arm_names=("control", "active"),
        control=0,
        visit_weeks=np.array([0.0, 6.0]),
        endpoint_visit=1,
        site=np.zeros((sims, n), dtype=int),
        arm=arm,
        randomised_week=np.zeros((sims, n)),
        baseline=baseline,
        panss=panss,
        visit_time=np.zeros((sims, n, 2)),
        dropout_week=np.full((sims, n), np.inf),
        dropout_reason="",
        covariates={},
        end_week=np.zeros(sims),
        screened=np.full(sims, n),
    )
    plan = AnalysisPlan.model_validate(
        {
            "name": "sbc",
            "priors": {
                "effect": {"mean": prior_mean, "sd": analysis_prior_sd or prior_sd, "sd_reference": sd_reference},
                "residual": {"kind": "inverse_gamma", "shape": sigma2_shape, "scale": sigma2_scale},
            },
        }
    )
    post = analyse_ancova(batch, plan)
    scale = (post.ci_high[:, 0] - post.ci_low[:, 0]) / (2 * _t_quantile(post.df, plan.ci_prob))
    return stdtr(post.df, (effect - post.mean[:, 0]) / scale)


def _t_quantile(df: np.ndarray, ci_prob: float) -> np.ndarray:
    from scipy.special import stdtrit

    return stdtrit(df, 0.5 + ci_prob / 2)
