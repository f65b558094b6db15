"""The TRS world against analytic values: assurance, missingness bias, adverse events, responders, subscales,
heterogeneity, neutropenia, treatment queues, clozapine levels, placebo response, time courses, rater noise and
responder calibration — Monte Carlo tolerances stated per test (fixed seeds)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from tests.conftest import ANALYSIS, make_scenario
from trialsim.chunk import trial_seed
from trialsim.engine.cohort import World
from trialsim.engine.trial import simulate_trials
from trialsim.evidence import EvidenceWarning, load_library
from trialsim.runner import simulate
from trialsim.spec.loading import load_plan
from trialsim.world import exposure, truth
from trialsim.world.truth import responder_rates

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
    """No dropout: each arm's simulated AE incidence is the library's rate, within 3.5 binomial MCSE (EMERGENT's
    population, not on clozapine, where AE discontinuation is EMERGENT-1's 2%)."""
    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True, "intervention": "placebo"},
            {"name": "xt", "intervention": "xanomeline_trospium"},
        ],
        population={"background": "not_trs"},
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
    """Ultra-TRS (40%, effect × 0.5) and clozapine levels (75% smokers, fixed 400 mg/day, C/D log-normal with
    means 1.11 and 2.22, medians m_g = mean·e^{−0.45²/2}, log-SD 0.45; below 350 ng/mL the clozapine-dependent
    effect is halved) and sites whose placebo response differs (SD 6 points) with the effect shrinking by 10% per
    point of it, never below 0 (E over sites of max(0, 1 − 0.1·S) = Φ(1/0.6) + 0.6·φ(1/0.6)). The true effect is
    δ·(0.6 + 0.4·0.5)·(1 − 0.5·Σ_g w_g Φ(ln(350/(400·m_g))/0.45))·E[max(0, 1 − 0.1·S)] and the ANCOVA estimates
    it without bias (3.5 MCSE), with rater noise on."""
    scenario = make_scenario(
        sample_size=200,
        recruitment=fast_recruitment(),
        arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"points": 6.0}, "clozapine_dependent": True}],
        heterogeneity={"ultra_trs_fraction": 0.4, "ultra_trs_effect_ratio": 0.5, "site_sd": 6.0, "rater_sd": 3.0},
        outcome={"effect_loss_per_control_point": 0.1},
        population={"smoking_fraction": 0.75},
        clozapine={"dosing": "fixed", "dose_mg_per_day": 400},
    )
    below = [stats.norm.cdf(math.log(350 / (400 * m * math.exp(-0.45**2 / 2))) / 0.45) for m in (1.11, 2.22)]
    sites = stats.norm.cdf(1 / 0.6) + 0.6 * stats.norm.pdf(1 / 0.6)
    expected = 6.0 * 0.8 * (1 - 0.5 * (0.75 * below[0] + 0.25 * below[1])) * sites
    comparison = simulate(scenario, VAGUE, 1500, seed=8, workers=2).summary["design_points"][0]["comparisons"][0]
    assert comparison["true_effect"] == pytest.approx(expected, rel=1e-9)
    assert abs(comparison["bias"]) <= 3.5 * comparison["bias_mcse"]


def test_severe_neutropenia_found_at_the_next_test_stops_clozapine():
    """A monitored arm with severe neutropenia in 20% (onset Gamma(2, 4.35 weeks), weekly tests): a case stops
    clozapine at the first test at or after onset, so before the last visit (week 6) only onsets ≤ 5 weeks count:
    P = 0.2 · G(5), G the Gamma(2, 4.35) CDF (3.5 binomial MCSE). As adverse events, severe (20%) and any
    neutropenia (30%, the same uniform, so the severe cases are among them) are recorded when found by the last
    visit, at the week-6 test included: 0.2 · G(6) and 0.3 · G(6)."""
    scenario = make_scenario(
        sample_size=400,
        recruitment=fast_recruitment(),
        arms=[
            {"name": "p", "control": True},
            {
                "name": "clozapine",
                "effect": {"points": 3},
                "adverse_events": {"neutropenia": 0.3, "severe_neutropenia": 0.2},
                "monitoring": {"schedule": "us_label"},
            },
        ],
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(9, k) for k in range(10)])
    reasons = batch.reasons()
    clozapine = batch.arm == 1
    before_last, by_last = stats.gamma.cdf(5.0, 2.0, scale=4.35), stats.gamma.cdf(6.0, 2.0, scale=4.35)
    for flags, rate in (
        (reasons[clozapine] == "neutropenia", 0.2 * before_last),
        (batch.adverse_events["severe_neutropenia"][clozapine], 0.2 * by_last),
        (batch.adverse_events["neutropenia"][clozapine], 0.3 * by_last),
    ):
        assert abs(flags.mean() - rate) <= 3.5 * math.sqrt(rate * (1 - rate) / flags.size), (flags.mean(), rate)
    assert not (reasons[batch.arm == 0] == "neutropenia").any()
    severe = batch.adverse_events["severe_neutropenia"]
    assert (severe <= batch.adverse_events["neutropenia"]).all()


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


# --- second pass: clozapine levels, placebo response, time courses, adverse events, rater noise, calibration ---


def test_smoker_nonsmoker_clozapine_levels_as_tsuda():
    """At an equal fixed dose the mean C/D ratio of smokers is 1.11 (ng/mL)/(mg/day) below the non-smokers' and
    half of it (Tsuda et al., BMJ Open 2014: MD −1.11, 95% CI −1.53 to −0.70; halve the dose in non-smokers).
    200,000 patients: the difference within 3.5 SE of −1.11, the ratio of means within 0.01 of 0.5."""
    spec = make_scenario(clozapine={"dosing": "fixed", "dose_mg_per_day": 300}).clozapine
    rng = np.random.default_rng(21)
    smoker = rng.random(200_000) < 0.6
    levels = exposure.draw_levels(spec, smoker, rng.random((200_000, exposure.EXPOSURE_UNIFORMS)), 12.0)
    cd = levels.entry / 300.0
    smokers, others = cd[smoker], cd[~smoker]
    se = math.hypot(smokers.std() / math.sqrt(smokers.size), others.std() / math.sqrt(others.size))
    assert abs((smokers.mean() - others.mean()) - (-1.11)) <= 3.5 * se
    assert smokers.mean() / others.mean() == pytest.approx(0.5, abs=0.01)


def test_stopping_smoking_raises_levels_above_the_alert_level():
    """Fixed 600 mg/day, 75% smokers of whom half stop during the trial: a quitter's C/D becomes the non-smoker's,
    so the share recorded with a level rising above 1,000 ng/mL is 0.75·0.5·[P(600·C/D_ns > 1000) −
    P(600·C/D_s > 1000)] (log-normal tails; no dropout, so every rise before the endpoint is seen; 3.5 MCSE)."""
    scenario = make_scenario(
        sample_size=400,
        recruitment=fast_recruitment(),
        clozapine={"dosing": "fixed", "dose_mg_per_day": 600, "smokers_quitting": 0.5},
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(22, k) for k in range(10)])
    sigma = 0.45

    def above(mean: float) -> float:
        return stats.norm.sf(math.log(1000 / (600 * mean * math.exp(-(sigma**2) / 2))) / sigma)

    expected = 0.75 * 0.5 * (above(2.22) - above(1.11))
    flags = batch.adverse_events[exposure.LEVEL_ALERT_EVENT]
    assert abs(flags.mean() - expected) <= 3.5 * math.sqrt(expected * (1 - expected) / flags.size)


def test_rater_noise_is_split_off_the_sd_of_change():
    """With rater noise (SD 6 at every assessment) the observed SD of change at the endpoint stays sd_change = 15
    (3.5 SE of an SD, σ/√(2n)); the floor is out of reach (baseline 140 ± 10)."""
    scenario = make_scenario(
        sample_size=500,
        recruitment=fast_recruitment(20, 5.0),
        population={"baseline_panss": {"mean": 140, "sd": 10}},
        heterogeneity={"rater_sd": 6.0},
    )
    batch, _ = simulate_trials(scenario, 500, [trial_seed(23, k) for k in range(8)], subscales=False)
    change = (batch.panss[..., -1] - batch.baseline)[batch.arm == 0]
    assert abs(change.std() - 15.0) <= 3.5 * 15.0 / math.sqrt(2 * change.size), change.std()


def _placebo_assurance(sd: float, kappa: float, trials: int = 3000):
    n, sigma, m_smd, sd_smd = 150, 15.0, 0.3, 0.2
    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True},
            {"name": "drug", "effect": {"smd": m_smd}, "design_prior": {"mean_smd": m_smd, "sd_smd": sd_smd}},
        ],
        outcome={"control_improvement_sd": sd, "effect_loss_per_control_point": kappa},
        sample_size=2 * n,
        assurance=True,
        recruitment=fast_recruitment(),
    )
    summary = simulate(scenario, VAGUE, trials, seed=24, workers=2).summary["design_points"][0]["comparisons"][0]
    m, v, tau = m_smd * sigma, (sd_smd * sigma) ** 2, sigma * math.sqrt(2 / n)
    return summary, m, v, tau


@pytest.mark.parametrize("kappa", [0.0, 0.05])
def test_trial_placebo_uncertainty_and_its_coupling(kappa):
    """Each assurance trial draws its control improvement, 4 + Δ with Δ ~ N(0, 8²). κ = 0: the shift is common to
    both arms and cancels out of the continuous contrast — the estimate stays unbiased and assurance stays
    Φ((m − zτ)/√(τ² + v)). κ = 0.05: the trial's true effect is δ·a with a = max(0, 1 − κΔ), so assurance is
    E_Δ[Φ((m·a − zτ)/√(τ² + v·a²))] (quadrature), lower (m > zτ here), and the drawn true effects have SD
    √((v + m²)E[a²] − m²E[a]²). 3,000 trials: assurance within 3 MCSE, bias 3.5 MCSE, SD 3.5 SE."""
    summary, m, v, tau = _placebo_assurance(8.0, kappa)
    z = stats.norm.ppf(0.975)

    def over_shift(f):
        return integrate.quad(lambda d: stats.norm.pdf(d, scale=8.0) * f(max(0.0, 1 - kappa * d)), -80, 80)[0]

    expected = over_shift(lambda a: stats.norm.cdf((m * a - z * tau) / math.sqrt(tau**2 + v * a**2)))
    mcse = math.sqrt(expected * (1 - expected) / 3000)
    assert abs(summary["assurance"] - expected) <= 3 * mcse, (summary["assurance"], expected, mcse)
    if kappa:
        no_spread = stats.norm.cdf((m - z * tau) / math.sqrt(tau**2 + v))
        assert no_spread - expected > 0.02  # the documented direction, by the reference values themselves
    sd = math.sqrt((v + m**2) * over_shift(lambda a: a**2) - m**2 * over_shift(lambda a: a) ** 2)
    drawn = summary["true_effect_distribution"]["sd"]
    assert abs(drawn - sd) <= 3.5 * sd / math.sqrt(2 * 3000), (drawn, sd)
    assert abs(summary["bias"]) <= 3.5 * summary["bias_mcse"]


def test_trial_placebo_uncertainty_lowers_responder_assurance():
    """Responder endpoint, effect known (design prior sd 0.001 SMD): a trial-level placebo shift (SD 10 points)
    spreads the control rate on a non-linear scale (threshold and floor), which lowers the average risk difference
    and so the probability of success. Same trials with and without the spread: the paired drop in assurance
    exceeds 3.5 MCSE of the paired difference (measured ≈ 0.1)."""

    def run(sd: float):
        scenario = make_scenario(
            arms=[
                {"name": "placebo", "control": True},
                {"name": "drug", "effect": {"smd": 0.55}, "design_prior": {"mean_smd": 0.55, "sd_smd": 0.001}},
            ],
            outcome={"control_improvement_sd": sd},
            sample_size=200,
            assurance=True,
            recruitment=fast_recruitment(),
            primary_endpoint={"week": 6, "measure": "responder"},
            analysis_plan="responder_beta_binomial",
        )
        plan = load_plan(ANALYSIS / "responder_beta_binomial.yaml")
        table = simulate(scenario, plan, 1500, seed=25, workers=2).trials
        return table.loc[table["effect_mode"] == "assurance", "drug.success"].to_numpy(dtype=float)

    fixed, spread = run(0.0), run(10.0)
    difference = fixed - spread
    assert difference.mean() > 3.5 * difference.std(ddof=1) / math.sqrt(difference.size), difference.mean()


def test_severity_interaction_follows_furukawa():
    """Effect ∝ (baseline − 20), scaled to average δ = 6: E[effect ∣ B] = 6·(B − 20)/(E[B] − 20). Complete data
    (no dropout), 20,000 patients: the OLS coefficient of arm × baseline in change ~ arm + B + arm×B is
    6/(E[B] − 20) within 3.5 SE, and the average effect is 6 (3.5 SE)."""
    scenario = make_scenario(
        sample_size=2000,
        recruitment=fast_recruitment(40, 10.0),
        heterogeneity={"severity_effect_interaction": True},
    )
    batch, _ = simulate_trials(scenario, 2000, [trial_seed(26, k) for k in range(10)], subscales=False)
    baseline, arm = batch.baseline.ravel(), (batch.arm == 1).ravel().astype(float)
    change = (batch.panss[..., -1] - batch.baseline).ravel()
    design = np.column_stack([np.ones_like(arm), arm, baseline - 98, arm * (baseline - 98)])
    coef, residual, *_ = np.linalg.lstsq(design, change, rcond=None)
    sigma2 = residual[0] / (change.size - design.shape[1])
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    from trialsim.world.heterogeneity import mean_baseline

    mean_b = mean_baseline(scenario)
    assert abs(-coef[3] - 6 / (mean_b - 20)) <= 3.5 * se[3], (-coef[3], 6 / (mean_b - 20), se[3])
    average = change[arm == 0].mean() - change[arm == 1].mean()
    assert abs(average - 6.0) <= 3.5 * 15 * math.sqrt(2 / (change.size / 2))


def test_onset_lag_and_fade_per_arm_visible_in_trajectories():
    """Four arms, no dropout, 8 points each: a fast arm (onset 1 week, e.g. ECT), a slow one with a 2-week
    titration lag (onset 8, e.g. clozapine), and one whose treatment ends at week 4 and fades (offset 4). The mean
    difference from control at each visit is 8·course(t) (closed form, :class:`Course`) within 3.5 SE."""
    fast = {"onset_weeks": 1.0}
    slow = {"onset_weeks": 8.0, "lag_weeks": 2.0}
    ends = {"onset_weeks": 1.0, "treatment_weeks": 4.0, "offset_weeks": 4.0}
    scenario = make_scenario(
        arms=[
            {"name": "control", "control": True},
            {"name": "fast", "effect": {"points": 8}, "time_course": fast},
            {"name": "slow", "effect": {"points": 8}, "time_course": slow},
            {"name": "ends", "effect": {"points": 8}, "time_course": ends},
        ],
        visits_weeks=[0, 1, 2, 4, 8, 12],
        primary_endpoint={"week": 12},
        sample_size=800,
        recruitment=fast_recruitment(20, 10.0),
    )
    batch, _ = simulate_trials(scenario, 800, [trial_seed(27, k) for k in range(5)], subscales=False)
    change = batch.panss - batch.baseline[..., None]
    weeks = np.array([1.0, 2.0, 4.0, 8.0, 12.0])
    control = change[batch.arm == 0][:, 1:]
    from trialsim.world.time_course import Course

    for a in (1, 2, 3):
        expected = 8.0 * Course.of(scenario.arms[a], scenario)(weeks)
        arm = change[batch.arm == a][:, 1:]
        observed = control.mean(axis=0) - arm.mean(axis=0)
        se = np.sqrt(control.var(axis=0) / len(control) + arm.var(axis=0) / len(arm))
        assert (np.abs(observed - expected) <= 3.5 * se).all(), (a, observed, expected, se)
    assert Course.of(scenario.arms[2], scenario)(2.0) == 0.0  # nothing before the titration lag
    assert Course.of(scenario.arms[3], scenario)(12.0) == pytest.approx(math.exp(-2.0))


def test_ect_memory_impairment_and_xt_discontinuation_on_clozapine():
    """Library rates by the endpoint, no other dropout: ECT memory impairment 24.2% (0% on TAU; Wang et al. 2018)
    and, in clozapine-treated patients, xanomeline-trospium AE discontinuation 45% (Vadiei et al. 2025), each
    within 3.5 binomial MCSE."""
    scenario = make_scenario(
        arms=[
            {"name": "tau", "control": True, "intervention": "treatment_as_usual"},
            {"name": "ect", "intervention": "ect_augmentation", "versus": "treatment_as_usual"},
            {"name": "xt", "intervention": "xanomeline_trospium"},
        ],
        sample_size=600,
        recruitment=fast_recruitment(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        batch, _ = simulate_trials(scenario, 600, [trial_seed(28, k) for k in range(8)])
    for flags, rate in (
        (batch.adverse_events["memory_impairment"][batch.arm == 1], 0.242),
        (batch.reasons()[batch.arm == 2] == "adverse_event", 0.45),
    ):
        assert abs(flags.mean() - rate) <= 3.5 * math.sqrt(rate * (1 - rate) / flags.size), (flags.mean(), rate)
    assert not batch.adverse_events["memory_impairment"][batch.arm == 0].any()


def test_myocarditis_stops_clozapine_between_days_14_and_22():
    """A monitored arm with myocarditis in 30%: every such stop falls within days 14–22 of starting clozapine and
    their share is 0.3 (3.5 binomial MCSE)."""
    scenario = make_scenario(
        sample_size=400,
        recruitment=fast_recruitment(),
        arms=[
            {"name": "p", "control": True},
            {"name": "clozapine", "effect": {"points": 3}, "adverse_events": {"myocarditis": 0.3},
             "monitoring": {}},
        ],
    )
    batch, _ = simulate_trials(scenario, 400, [trial_seed(29, k) for k in range(10)])
    stopped = batch.reasons()[batch.arm == 1] == "myocarditis"
    weeks = batch.dropout_week[batch.arm == 1][stopped]
    assert (weeks >= 2.0).all() and (weeks <= 22 / 7).all()
    assert abs(stopped.mean() - 0.3) <= 3.5 * math.sqrt(0.3 * 0.7 / stopped.size)


def test_responder_rates_calibrate_the_arms():
    """A designer's rates: control 25%, active 45%, and an arm with odds ratio 2 vs control (target 2·(1/3)/(1 +
    2·(1/3)) = 40%). The calibrated world gives these complete-data rates on a fresh 400,000-patient sample within
    0.005, with rater noise, site effects and ultra-TRS patients on."""
    scenario = make_scenario(
        arms=[
            {"name": "control", "control": True, "responder_rate": 0.25},
            {"name": "active", "responder_rate": 0.45},
            {"name": "odds", "responder_odds_ratio": 2.0},
        ],
        primary_endpoint={"week": 6, "measure": "responder"},
        heterogeneity={"rater_sd": 4.0, "site_sd": 2.0, "ultra_trs_fraction": 0.3},
        analysis_plan="responder_beta_binomial",
    )
    world = World.of(scenario)
    effects = np.array([arm.effect_total for arm in world.arms])
    rates = responder_rates(scenario, effects, np.zeros(3, bool), seed=99, n=400_000)
    assert np.abs(rates - [0.25, 0.45, 0.4]).max() < 0.005, rates
    assert world.control_improvement == pytest.approx(truth.control_improvement(scenario))
