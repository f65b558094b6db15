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


def _batch(arm: np.ndarray, baseline: np.ndarray, change: np.ndarray):
    """A TrialBatch of K trials with a baseline and one endpoint visit (no dropout)."""
    from trialsim.inference.data import TrialBatch

    k, n = arm.shape
    panss = np.stack([baseline, baseline + change], axis=-1)
    return TrialBatch(
        arm_names=("control", "active"), control=0, visit_weeks=np.array([0.0, 6.0]), endpoint_visit=1,
        site=np.zeros((k, n), int), arm=arm, randomised_week=np.zeros((k, n)), baseline=baseline, panss=panss,
        visit_time=np.zeros((k, n, 2)), dropout_week=np.full((k, n), np.inf), dropout_reason="withdrawal",
        covariates={}, end_week=np.zeros(k), screened=np.full(k, n),
    )


def test_predictive_probability_agrees_with_the_final_analysis():
    """The engine's predictive probability of success at an interim look (100 of 200 planned completers) equals a
    brute-force one within 4 MCSE: draw (β, σ²) from the exact normal–inverse-gamma posterior of the interim
    ANCOVA (flat β, Jeffreys σ²: σ² ~ IG((n − p)/2, SSR/2), β | σ² ~ N(β̂, σ²(XᵀX)⁻¹)), simulate the 100 patients
    still to come (50 per arm, baselines from the population), run the engine's own final analysis on the 200 and
    apply the final rule P(effect > 0) ≥ 0.975. The closed form's approximations (the future slope known, its own
    intercept) are below this test's resolution."""
    from trialsim.analyst import Job, PlanAnalyst
    from trialsim.engine.events import Round
    from trialsim.inference.conjugate import analyse_ancova
    from trialsim.runner import make_job
    from trialsim.world.population import BASELINE_UNIFORMS, draw_baseline

    scenario = make_scenario(
        arms=[{"name": "control", "control": True}, {"name": "active", "effect": {"points": 3.0}}],
        outcome={"sd_change": 15.0, "baseline_slope": 0.0}, sample_size=200,
        interim={"looks": [{"trigger": "completed", "at": 100}]},
    )
    plan = validate_model(AnalysisPlan, {"name": "p", "interim": {"futility": {"predictive": 0.0}}}, "<test>")
    job: Job = make_job(scenario, plan, seed=1)
    rng = np.random.default_rng(7)
    for true_effect in (1.0, 4.0, 7.0):  # PPoS from low to high
        arm = np.tile(np.repeat([0, 1], 50), (1, 1))
        baseline = draw_baseline(scenario.population, rng.random((1, 100, BASELINE_UNIFORMS))).panss_total
        change = -4.0 - true_effect * arm + 15.0 * rng.standard_normal((1, 100))
        interim = _batch(arm, baseline, change)
        analyst = PlanAnalyst(job, 200, first_trial=0)
        request = Round(np.array([0]), np.array([0]), np.array([10.0]), np.ones((1, 2), bool))
        engine = float(analyst.analyse(interim, request).predictive[0, 0])

        # Brute force from the exact posterior of the interim ANCOVA.
        X = np.column_stack([np.ones(100), arm[0], baseline[0] - baseline[0].mean()])
        y = change[0]
        xtx_inv = np.linalg.inv(X.T @ X)
        beta_hat = xtx_inv @ X.T @ y
        ssr = float(np.sum((y - X @ beta_hat) ** 2))
        draws = 4000
        sigma2 = (ssr / 2) / rng.gamma((100 - 3) / 2, 1.0, draws)
        beta = beta_hat + np.sqrt(sigma2)[:, None] * (rng.standard_normal((draws, 3)) @ np.linalg.cholesky(xtx_inv).T)
        future_arm = np.tile(np.repeat([0, 1], 50), (draws, 1))
        future_base = draw_baseline(scenario.population, rng.random((draws, 100, BASELINE_UNIFORMS))).panss_total
        future_change = (beta[:, [0]] + beta[:, [1]] * future_arm + beta[:, [2]] * (future_base - baseline.mean())
                         + np.sqrt(sigma2)[:, None] * rng.standard_normal((draws, 100)))
        final = _batch(
            np.concatenate([np.repeat(arm, draws, 0), future_arm], 1),
            np.concatenate([np.repeat(baseline, draws, 0), future_base], 1),
            np.concatenate([np.repeat(change, draws, 0), future_change], 1),
        )
        success = analyse_ancova(final, plan).prob_gt_margin[:, 0] >= 0.975
        brute, mcse = success.mean(), math.sqrt(max(success.mean() * (1 - success.mean()), 1e-4) / draws)
        assert abs(engine - brute) <= 4 * mcse, (true_effect, engine, brute, mcse)


def test_response_adaptive_randomisation_moves_towards_the_better_arm():
    """Three arms (control, a 10-point arm, a null arm), one look at 60 completers with response-adaptive shares
    ∝ P(best)^1, at least 15% per open arm: after the look the better arm gets the larger share in most trials,
    every open arm keeps at least 15%, and the patients randomised after the decision follow the new shares."""
    scenario = make_scenario(
        arms=[{"name": "control", "control": True}, {"name": "strong", "effect": {"points": 10.0}},
              {"name": "null", "effect": {"points": 0.0}}],
        sample_size=240, recruitment={"sites": 6, "rate_per_site_per_week": 1.0, "block_size": 6},
        interim={"looks": [{"trigger": "completed", "at": 60}]},
    )
    plan = validate_model(AnalysisPlan, {"name": "rar", "interim": {"drop_arms": False, "response_adaptive": {
        "power": 1.0, "min_allocation": 0.15, "control": "match_best", "block_size": 20}}}, "<test>")
    table = simulate(scenario, plan, 200, seed=31, workers=2).trials
    strong, null = table["strong.look1.share"].to_numpy(), table["null.look1.share"].to_numpy()
    assert np.mean(strong > null) > 0.9
    assert np.all(null >= 0.15 - 1e-12) and np.all(strong >= 0.15 - 1e-12)
    np.testing.assert_allclose(table["control.look1.share"], np.maximum(strong, null))  # matches the best arm
    # Realised allocation: before the look 1:1:1; the later patients follow the shares.
    assert table["strong.n_randomised"].mean() > table["null.n_randomised"].mean() + 20
