"""Simulated operating characteristics of the textbook trial vs closed-form values (Monte Carlo tolerance)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from tests.conftest import SCENARIOS
from trialsim.runner import simulate
from trialsim.spec.loading import load_design

pytestmark = pytest.mark.statistical

TRIALS = 4000
SEED = 20261121


def reference_power(delta: float, sd: float, n_per_arm: int, alpha: float = 0.025, covariates: int = 1) -> float:
    """Exact power of the one-sided ANCOVA t-test (= the flat-prior Bayesian rule P(effect > 0) ≥ 1 − α).

    With change independent of baseline, the effect estimate is the two-sample difference with
    SE = sd·√(2/n); the test statistic is noncentral t with df = 2n − 2 − covariates and
    ncp = delta / (sd·√(2/n)):  power = 1 − F_t(t_{1−α, df}; df, ncp).
    Normal approximation: Φ(delta/(sd√(2/n)) − z_{1−α}) = Φ(6/2.121 − 1.960) = Φ(0.868) = 0.807.
    """
    se = sd * math.sqrt(2.0 / n_per_arm)
    df = 2 * n_per_arm - 2 - covariates
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, delta / se))


def within(observed: float, expected: float, k: int, n_mcse: float = 3.0) -> None:
    mcse = math.sqrt(expected * (1 - expected) / k)
    assert abs(observed - expected) <= n_mcse * mcse, (
        f"observed {observed:.4f} vs expected {expected:.4f}: |diff| = {abs(observed - expected):.4f} "
        f"> {n_mcse} MCSE = {n_mcse * mcse:.4f}"
    )


@pytest.fixture(scope="module")
def textbook():
    scenario, plan = load_design(SCENARIOS / "textbook_two_arm.yaml")
    return simulate(scenario, plan, TRIALS, SEED, workers=2).summary["design_points"][0]


@pytest.fixture(scope="module")
def null_twin():
    scenario, plan = load_design(SCENARIOS / "textbook_two_arm_null.yaml")
    return simulate(scenario, plan, TRIALS, SEED + 1, workers=2).summary["design_points"][0]


def test_reference_power_matches_normal_approximation():
    """Sanity check of the reference itself: exact t power ≈ 0.80, normal approximation 0.807."""
    assert reference_power(6.0, 15.0, 100) == pytest.approx(0.803, abs=0.003)
    assert stats.norm.cdf(6 / (15 * math.sqrt(0.02)) - stats.norm.ppf(0.975)) == pytest.approx(0.807, abs=0.001)


def test_power_matches_closed_form(textbook):
    """Power within 3 MCSE of the exact noncentral-t power (100 per arm, δ = 6, SD 15, one-sided 2.5%)."""
    comparison = textbook["comparisons"][0]
    assert textbook["expected_n"] == 200
    within(comparison["power"], reference_power(6.0, 15.0, 100), TRIALS)


def test_null_twin_type_one_error(null_twin):
    """Under no effect, P(success) is the one-sided α = 0.025 exactly (flat priors ⇒ t-test); within 3 MCSE."""
    within(null_twin["comparisons"][0]["power"], 0.025, TRIALS)


@pytest.mark.parametrize("which", ["textbook", "null_twin"])
def test_interval_coverage(which, request):
    """The 95% credible interval is the exact t confidence interval: coverage within 3 MCSE of 0.95."""
    comparison = request.getfixturevalue(which)["comparisons"][0]
    within(comparison["coverage"], 0.95, TRIALS)


def test_estimate_unbiased(textbook):
    """Mean posterior effect within 3.5 MCSE of the truth (6 points) with no dropout."""
    comparison = textbook["comparisons"][0]
    assert abs(comparison["bias"]) <= 3.5 * comparison["bias_mcse"]
    # RMSE ≈ SE of the difference, sd·√(2/n) = 2.121 (delta-method MCSE from the run)
    assert abs(comparison["rmse"] - 15 * math.sqrt(0.02)) <= 3.5 * comparison["rmse_mcse"]
