"""Accrual and dropout match their models' expectations within Monte Carlo tolerance (3.5 MCSE, fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import make_scenario
from trialsim.chunk import trial_seed
from trialsim.engine.trial import simulate_trial, simulate_trials

pytestmark = pytest.mark.statistical

TRIALS = 1500
N = 60


def times_to_target(scenario, n_target=N, trials=TRIALS, seed=42):
    """Week of the n_target-th randomisation in each of ``trials`` simulated trials."""
    batch, _ = simulate_trials(scenario, n_target, [trial_seed(seed, k) for k in range(trials)], subscales=False)
    return batch.randomised_week[:, -1]


def assert_mean_close(sample: np.ndarray, expected: float, n_mcse: float = 3.5) -> None:
    mcse = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) <= n_mcse * mcse, (
        f"mean {sample.mean():.3f} vs expected {expected:.3f} (MCSE {mcse:.3f})"
    )


def test_time_to_randomise_identical_sites():
    """S sites open at 0 with equal rate λ and screen-failure f: T_N ~ Gamma(N, rate S·λ·(1 − f)), E = N/(Sλ(1−f))."""
    scenario = make_scenario(
        recruitment={
            "sites": 8,
            "activation_weeks": [0, 0],
            "rate_per_site_per_week": 0.5,
            "rate_cv": 0.0,
            "screen_failure": 0.25,
        }
    )
    assert_mean_close(times_to_target(scenario), N / (8 * 0.5 * 0.75))


def test_time_to_randomise_poisson_gamma():
    """Site rates λ_s ~ Gamma(k, θ) (k = 1/cv², θ = mean/k): the total rate Λ ~ Gamma(S·k, θ), so
    E[T_N] = N·E[1/(Λ(1 − f))] = N / ((1 − f)·θ·(S·k − 1))   (Anisimov & Fedorov 2007)."""
    sites, mean, cv, fail = 6, 0.8, 0.5, 0.2
    scenario = make_scenario(
        recruitment={
            "sites": sites,
            "activation_weeks": [0, 0],
            "rate_per_site_per_week": mean,
            "rate_cv": cv,
            "screen_failure": fail,
        }
    )
    k = 1 / cv**2
    theta = mean / k
    assert_mean_close(times_to_target(scenario), N / ((1 - fail) * theta * (sites * k - 1)))


def test_time_to_randomise_staggered_activation():
    """Sites open uniformly on [0, A], equal rate λ: the N-th randomisation time T solves E[count(T)] ≈ N for
    large N; we check the exact expectation by numerical integration of P(T_N > t) = P(count(t) < N), with
    count(t) ~ Poisson(λ·Σ_s (t − a_s)⁺) averaged over the opening times (computed here by quadrature)."""
    from scipy import stats

    sites, rate, window = 4, 1.0, 8.0
    scenario = make_scenario(
        recruitment={"sites": sites, "activation_weeks": [0, window], "rate_per_site_per_week": rate, "rate_cv": 0.0}
    )
    n_target = 20
    rng = np.random.default_rng(0)
    openings = rng.uniform(0, window, size=(20000, sites))  # outer expectation over opening times (MC, tiny error)
    grid = np.linspace(0, 40, 801)
    exposure = np.clip(grid[None, :, None] - openings[:, None, :], 0, None).sum(axis=2) * rate
    survival = stats.poisson.cdf(n_target - 1, exposure).mean(axis=0)
    expected = float(np.trapezoid(survival, grid))
    assert_mean_close(times_to_target(scenario, n_target=n_target, trials=2000, seed=7), expected)


def test_dropout_fraction_by_endpoint_per_arm():
    """Constant hazard λ = −ln(1 − p)/T: the fraction dropped by the endpoint is p in each arm (binomial MCSE)."""
    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True, "dropout": 0.10},
            {"name": "drug", "effect": {"smd": 0.3}, "dropout": 0.30},
        ],
        visits_weeks=[0, 2, 4, 6, 8],
        primary_endpoint={"week": 6},
        sample_size=200,
    )
    dropped = {0: [], 1: []}
    for k in range(300):
        data, _ = simulate_trial(scenario, 200, trial_seed(3, k))
        for arm in (0, 1):
            in_arm = data.arm == arm
            dropped[arm].append(data.dropout_week[in_arm] < 6.0)
    for arm, target in ((0, 0.10), (1, 0.30)):
        flags = np.concatenate(dropped[arm])
        mcse = math.sqrt(target * (1 - target) / flags.size)
        assert abs(flags.mean() - target) <= 3.5 * mcse, (arm, flags.mean(), target, mcse)
