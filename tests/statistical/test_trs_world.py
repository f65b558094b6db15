"""The TRS world against analytic values: assurance, missingness bias, adverse events, responders, subscales,
heterogeneity, neutropenia, treatment queues — Monte Carlo tolerances stated per test (fixed seeds)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from tests.conftest import ANALYSIS, make_scenario
from trialsim.chunk import trial_seed
from trialsim.engine.trial import simulate_trials
from trialsim.evidence import EvidenceWarning, load_library
from trialsim.runner import simulate
from trialsim.spec.loading import load_plan

pytestmark = pytest.mark.statistical
VAGUE = load_plan(ANALYSIS / "ancova_vague.yaml")


def fast_recruitment(sites: int = 10, rate: float = 3.0) -> dict:
    return {"sites": sites, "activation_weeks": [0, 1], "rate_per_site_per_week": rate}


def test_assurance_matches_closed_form():
    """True effect δ ~ N(m, v) per trial; the estimate's SE τ = σ√(2/n). Assurance (one-sided α = 0.025):
    P(success) = E_δ[Φ(δ/τ − z)] = Φ((m − z·τ)/√(τ² + v)) (normal approximation; df = 297 makes the t-test
    exact to ~0.001). 4,000 trials: within 3 MCSE. The drawn true effects have mean m and SD √v (3.5 SE)."""
    n, sigma, m_smd, sd_smd = 150, 15.0, 0.3, 0.2
    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True},
            {"name": "drug", "effect": {"smd": m_smd}, "design_prior": {"mean_smd": m_smd, "sd_smd": sd_smd}},
        ],
        sample_size=2 * n,
        assurance=True,
        recruitment=fast_recruitment(),
    )
    trials = 4000
    summary = simulate(scenario, VAGUE, trials, seed=11, workers=2).summary["design_points"][0]["comparisons"][0]
    m, v, tau = m_smd * sigma, (sd_smd * sigma) ** 2, sigma * math.sqrt(2 / n)
    expected = stats.norm.cdf((m - stats.norm.ppf(0.975) * tau) / math.sqrt(tau**2 + v))
    mcse = math.sqrt(expected * (1 - expected) / trials)
    assert abs(summary["assurance"] - expected) <= 3 * mcse, (summary["assurance"], expected, mcse)
    drawn = summary["true_effect_distribution"]
    assert abs(drawn["mean"] - m) <= 3.5 * math.sqrt(v / trials)
    assert abs(drawn["sd"] - math.sqrt(v)) <= 3.5 * math.sqrt(v / (2 * trials))
    # power at the point value is reported next to assurance, from the point-value trials
    point_power = stats.norm.cdf(m / tau - stats.norm.ppf(0.975))
    assert abs(summary["power"] - point_power) <= 3 * math.sqrt(point_power * (1 - point_power) / trials)


@pytest.fixture(scope="module")
def missingness_bias():
    """Completer-ANCOVA bias of a 6-point effect with 30% dropout under each mechanism (1,000 trials each)."""
    out = {}
    for mechanism in ("mcar", "mnar"):
        scenario = make_scenario(
            sample_size=200,
            recruitment=fast_recruitment(),
            dropout={"fraction": 0.3, "mechanism": mechanism, "efficacy_log_hazard_ratio": 1.5},
        )
        out[mechanism] = simulate(scenario, VAGUE, 1000, seed=5, workers=2).summary["design_points"][0]
    return out


def test_completers_unbiased_under_mcar(missingness_bias):
    """MCAR: completers are a random subset, so the estimate is unbiased: |bias| ≤ 3.5 MCSE."""
    point = missingness_bias["mcar"]
    comparison = point["comparisons"][0]
    assert abs(point["dropout_fraction"] - 0.3) < 0.01
    assert abs(comparison["bias"]) <= 3.5 * comparison["bias_mcse"]


def test_completers_biased_towards_null_under_mnar(missingness_bias):
    """MNAR lack-of-efficacy dropout (hazard × e^{1.5 z}, z = current worsening in SDs) removes the worst
    outcomes, more often in the control arm, whose completers then look better: the effect is under-estimated.
    The bias must be negative beyond 3.5 MCSE and at least 0.5 points (measured ≈ −1.5)."""
    comparison = missingness_bias["mnar"]["comparisons"][0]
    assert comparison["bias"] + 3.5 * comparison["bias_mcse"] < 0
    assert comparison["bias"] < -0.5


def test_adverse_event_incidence_matches_library():
    """No dropout: each arm's simulated AE incidence is the library's rate, within 3.5 binomial MCSE."""
    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True, "intervention": "placebo"},
            {"name": "xt", "intervention": "xanomeline_trospium"},
        ],
        sample_size=400,
        recruitment=fast_recruitment(),
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(3, k) for k in range(25)])
    entry = load_library().get("xanomeline_trospium")
    # AE discontinuation (2% by the endpoint) censors a few later events: allow for it in the expectation
    for name in ("nausea", "constipation", "vomiting", "dyspepsia"):
        for arm, column in ((0, "control"), (1, "active")):
            rate = getattr(entry.adverse_events[name], column)
            flags = batch.adverse_events[name][batch.arm == arm]
            expected = rate * (1 - 0.02 / 2)  # onset uniform, discontinuation hazard ~ uniform: ~half censored
            mcse = math.sqrt(expected * (1 - expected) / flags.size)
            assert abs(flags.mean() - expected) <= 3.5 * mcse + 0.002, (name, arm, flags.mean(), expected)


def responder_probability(mean_change: float, sd: float, threshold: float, low: float, mu=98.0, s=20.0) -> float:
    """P((B − Y)/(B − 30) ≥ thr) = E_B[Φ((−thr·(B − 30) − mean_change)/sd)], with change Y − B ~ N(mean_change,
    sd²) independent of B, and B ~ N(μ, s²) truncated to [low, 210] (quadrature)."""
    a, b = (low - mu) / s, (210 - mu) / s
    density = lambda x: stats.truncnorm.pdf(x, a, b, loc=mu, scale=s)  # noqa: E731
    integrand = lambda x: density(x) * stats.norm.cdf((-threshold * (x - 30) - mean_change) / sd)  # noqa: E731
    return integrate.quad(integrand, low, 210)[0]


def test_responder_fraction_matches_analytic_value():
    """Complete data, change independent of baseline: the responder fraction in each arm equals the quadrature
    value within 3.5 binomial MCSE (control change −4, active −10, SD 15, threshold 20%)."""
    scenario = make_scenario(
        sample_size=400,
        recruitment=fast_recruitment(),
        primary_endpoint={"week": 6, "measure": "responder", "responder_threshold": 0.2},
        analysis_plan="responder_beta_binomial",
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(4, k) for k in range(25)])
    from trialsim.inference.responder import responders

    status = responders(batch.baseline, batch.panss[..., -1], 0.2)
    for arm, mean_change in ((0, -4.0), (1, -10.0)):
        flags = status[batch.arm == arm]
        expected = responder_probability(mean_change, 15.0, 0.2, 80.0)
        mcse = math.sqrt(expected * (1 - expected) / flags.size)
        assert abs(flags.mean() - expected) <= 3.5 * mcse, (arm, flags.mean(), expected)


def test_responder_analysis_agrees_with_truth():
    """Responder plan: the risk-difference estimate is unbiased for the complete-data truth (3.5 MCSE) and the
    95% interval covers it within 3.5 MCSE of 0.95."""
    scenario = make_scenario(
        sample_size=200,
        recruitment=fast_recruitment(),
        primary_endpoint={"week": 6, "measure": "responder"},
        analysis_plan="responder_beta_binomial",
    )
    plan = load_plan(ANALYSIS / "responder_beta_binomial.yaml")
    comparison = simulate(scenario, plan, 1500, seed=2, workers=2).summary["design_points"][0]["comparisons"][0]
    expected_truth = responder_probability(-10, 15, 0.2, 80) - responder_probability(-4, 15, 0.2, 80)
    assert abs(comparison["true_effect"] - expected_truth) < 0.005
    assert abs(comparison["bias"]) <= 3.5 * comparison["bias_mcse"]
    assert abs(comparison["coverage"] - 0.95) <= 3.5 * comparison["coverage_mcse"] + 0.005


def test_subscale_change_sd_and_correlation():
    """SD of positive and negative change at the endpoint equal their configured values (3.5 SE of an SD,
    σ/√(2n)); their correlation with the total's change is positive."""
    scenario = make_scenario(
        sample_size=500,
        recruitment=fast_recruitment(20, 5.0),
        arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"smd": 0.0}}],
    )
    batch, _ = simulate_trials(scenario, 500, [trial_seed(6, k) for k in range(8)])
    n = batch.arm.size
    for name, sd in (("positive", 4.8), ("negative", 4.3)):
        baseline, values = batch.score(name)
        change = (values[..., -1] - baseline).ravel()
        assert abs(change.std() - sd) <= 3.5 * sd / math.sqrt(2 * n) + 0.05, (name, change.std())
        total_change = (batch.panss[..., -1] - batch.baseline).ravel()
        assert np.corrcoef(change, total_change)[0, 1] > 0.4


def test_heterogeneity_marginal_effect_unbiased():
    """Ultra-TRS (40%, effect × 0.5) and smoking (75%, × 0.5 in a clozapine-dependent arm): the true effect is
    δ·(0.6 + 0.4·0.5)·(0.25 + 0.75·0.5) = 6 × 0.8 × 0.625 = 3 points, and the ANCOVA estimates it without bias."""
    scenario = make_scenario(
        sample_size=200,
        recruitment=fast_recruitment(),
        arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"points": 6.0}, "clozapine_dependent": True}],
        heterogeneity={"ultra_trs_fraction": 0.4, "ultra_trs_effect_ratio": 0.5, "site_sd": 2.0, "rater_sd": 3.0},
        population={"smoking_fraction": 0.75},
    )
    comparison = simulate(scenario, VAGUE, 1500, seed=8, workers=2).summary["design_points"][0]["comparisons"][0]
    assert comparison["true_effect"] == pytest.approx(3.0)
    assert abs(comparison["bias"]) <= 3.5 * comparison["bias_mcse"]


def test_neutropenia_discontinuation_rate():
    """A monitored arm with risk 0.2 in weeks 1–5 (all within follow-up): 20% stop for neutropenia (3.5 MCSE)."""
    scenario = make_scenario(
        sample_size=400,
        recruitment=fast_recruitment(),
        arms=[
            {"name": "p", "control": True},
            {
                "name": "clozapine",
                "effect": {"points": 3},
                "monitoring": {"neutropenia_risk": 0.2, "risk_window_weeks": [1, 5]},
            },
        ],
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(9, k) for k in range(10)])
    reasons = batch.reasons()
    flags = reasons[batch.arm == 1] == "neutropenia"
    mcse = math.sqrt(0.2 * 0.8 / flags.size)
    assert abs(flags.mean() - 0.2) <= 3.5 * mcse
    assert not (reasons[batch.arm == 0] == "neutropenia").any()


def test_waiting_for_treatment_dilutes_the_effect():
    """With one course slot per site patients wait, start late and show less effect at the endpoint than with
    ample capacity (same seeds): the mean estimate drops by more than 3.5 combined MCSE."""

    def run(sessions_per_day: float):
        scenario = make_scenario(
            sample_size=120,
            recruitment={"sites": 3, "activation_weeks": [0, 0], "rate_per_site_per_week": 1.0, "rate_cv": 0.0},
            resources={"chair": {"sessions_per_day": sessions_per_day, "days_per_week": 5}},
            arms=[
                {
                    "name": "sham",
                    "control": True,
                    "treatment": {"resource": "chair", "schedule": [{"weeks": 4, "per_week": 5}]},
                },
                {
                    "name": "rtms",
                    "effect": {"points": 6},
                    "treatment": {"resource": "chair", "schedule": [{"weeks": 4, "per_week": 5}]},
                },
            ],
        )
        return simulate(scenario, VAGUE, 400, seed=12, workers=2).summary["design_points"][0]

    ample, short = run(20.0), run(1.0)
    assert ample["resources"]["chair"]["patients_waiting"] == 0
    assert short["resources"]["chair"]["mean_wait_weeks"] > 1.0
    a, s = ample["comparisons"][0], short["comparisons"][0]
    assert a["mean_estimate"] - s["mean_estimate"] > 3.5 * math.hypot(a["bias_mcse"], s["bias_mcse"])
    assert short["duration_weeks"]["median"] >= ample["duration_weeks"]["median"]


def test_implausible_evidence_warns_and_is_shrunk():
    """Glycine-site agonists' g = 1.17 (very low certainty) must not drive a scenario silently: a warning, and a
    shrunk true effect."""
    scenario = make_scenario(
        arms=[
            {"name": "p", "control": True, "intervention": "placebo"},
            {"name": "m", "intervention": "glycine_site_agonist"},
        ]
    )
    from trialsim.world.arms import resolve_arms

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arms = resolve_arms(scenario)
    assert any(issubclass(w.category, EvidenceWarning) for w in caught)
    assert 0 < arms[1].effect_total / 15.0 < 0.5
