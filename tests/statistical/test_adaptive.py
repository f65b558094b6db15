"""Adaptive designs against closed forms: group-sequential type I error and per-look stopping, calibration on fresh
null trials, predictive probability against the engine's own final analysis, response-adaptive shares."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from tests.conftest import make_scenario
from trialsim.calibration import calibrate, null_twin
from trialsim.inference.sequential import crossing_probabilities, efficacy_boundaries
from trialsim.runner import simulate
from trialsim.spec.loading import load_design, validate_model
from trialsim.spec.plan import AnalysisPlan

pytestmark = pytest.mark.statistical
OBF = np.array([3.710, 2.511, 1.993])  # rpact getDesignGroupSequential(typeOfDesign = "asOF", alpha = 0.025)


def gs_design(effect: float, n: int) -> tuple:
    """Two arms, SD of change 15, no dropout, looks when n/3 and 2n/3 patients have completed, final at n;
    vague prior; efficacy when P(effect > 0) ≥ Φ(3.710), Φ(2.511), Φ(1.993)."""
    scenario = make_scenario(
        arms=[{"name": "control", "control": True}, {"name": "active", "effect": {"points": effect}}],
        outcome={"sd_change": 15.0, "baseline_slope": 0.0},
        visits_weeks=[0, 2, 4, 6],
        primary_endpoint={"week": 6},
        recruitment={"sites": 10, "rate_per_site_per_week": 1.0, "activation_weeks": [0, 4]},
        sample_size=n,
        interim={"looks": [{"trigger": "completed", "at": n // 3}, {"trigger": "completed", "at": 2 * n // 3}]},
    )
    plan = validate_model(
        AnalysisPlan,
        {
            "name": "gs",
            "decision": {"threshold": float(ndtr(OBF[2]))},
            "interim": {"efficacy": {"thresholds": [float(ndtr(OBF[0])), float(ndtr(OBF[1]))]}},
        },
        "<test>",
    )
    return scenario, plan


def test_spending_boundaries_of_the_bundled_plan_style():
    """O'Brien–Fleming-type Lan–DeMets boundaries at information fractions 1/3, 2/3, 1 (one-sided α = 0.025)."""
    np.testing.assert_allclose(efficacy_boundaries(np.array([1 / 3, 2 / 3, 1.0]), 0.025, "obrien_fleming"), OBF,
                               atol=5e-4)


def test_group_sequential_type1_error():
    """Under a zero effect the overall type I error of the three-look design is 0.025 (the spending function's α)
    within 3 MCSE, MCSE = √(0.025·0.975/K)."""
    scenario, plan = gs_design(0.0, 240)
    trials = 4000
    result = simulate(scenario, plan, trials, seed=11, workers=2)
    type1 = result.summary["design_points"][0]["comparisons"][0]["power"]
    mcse = math.sqrt(0.025 * 0.975 / trials)
    assert abs(type1 - 0.025) <= 3 * mcse, (type1, mcse)


def test_group_sequential_stopping_probabilities_per_look():
    """Under an alternative with drift θ = δ/(σ√(4/N)) = 3.1, the probability of stopping for efficacy at each
    look matches the canonical joint distribution's exact crossing probabilities (recursive integration) within
    3.5 binomial MCSE. N = 960 keeps the posterior's t degrees of freedom ≥ 318, where t and normal boundaries
    differ by < 0.002 in probability."""
    n, effect = 960, 3.0
    scenario, plan = gs_design(effect, n)
    trials = 2000
    table = simulate(scenario, plan, trials, seed=12, workers=2).trials
    drift = effect / (15.0 * math.sqrt(4.0 / n))
    exact = crossing_probabilities(OBF, np.array([1 / 3, 2 / 3, 1.0]), drift)
    simulated = np.array([
        np.mean((table["stop_look"] == 1) & (table["stop_reason"] == "efficacy")),
        np.mean((table["stop_look"] == 2) & (table["stop_reason"] == "efficacy")),
        np.mean((table["stop_look"] == 0) & table["active.success"]),
    ])
    mcse = np.sqrt(exact * (1 - exact) / trials)
    assert np.all(np.abs(simulated - exact) <= 3.5 * mcse), (simulated, exact, mcse)


def test_calibrated_thresholds_hold_on_fresh_null_trials():
    """Thresholds calibrated on one set of null trials give the target type I error within 3 MCSE on a fresh set
    (another seed), for the bundled group-sequential design (O'Brien–Fleming shape, futility active)."""
    scenario, plan = load_design("two_arm_group_sequential")
    calibration = calibrate(scenario, plan, 0.025, trials=3000, seed=21, shape="obrien_fleming", workers=2)
    assert calibration.thresholds[0] > calibration.thresholds[1] > calibration.thresholds[2]
    trials = 3000
    fresh = simulate(null_twin(scenario), calibration.as_plan(plan), trials, seed=22, workers=2)
    type1 = fresh.summary["design_points"][0]["comparisons"][0]["power"]
    mcse = math.sqrt(0.025 * 0.975 / trials)
    assert abs(type1 - 0.025) <= 3 * mcse, (type1, calibration)
