"""The validity gate: every bundled analysis plan, on every bundled null scenario it can analyse, keeps its type I
error, and its 95 % intervals cover the true effect on the scenario's non-null twin.

A plan can analyse a scenario when ``trialsim.runner.check_design(scenario, plan)`` does not raise. Each cell runs
at the scenario's smallest sample size (small samples are where validity fails), without assurance runs, seed
``SEED``.

- Type I error (null scenario), per comparison: estimate ≤ α + 3 MCSE, α = 1 − the plan's threshold (one-sided
  0.025 for 0.975); with interim looks the spending function's α, or the union bound over the analyses for
  explicit look thresholds (:func:`nominal_alpha`). A conservative plan passes; an inflated one fails. The
  multi-arm adaptive plan is also held to the family-wise error it was calibrated for.
- Coverage (the non-null twin; an impossible analysis counts as not covering): |estimate − 0.95| ≤ 3 MCSE; not for
  designs with interim looks (an interval after data-dependent stopping is not a confidence interval).

Cheap plans (conjugate, t-test, laplace) run K = 4,000 trials: the estimate is the proportion and its MCSE
√(π(1 − π)/K) at the nominal π (0.0025 for α = 0.025, 0.0034 for coverage). Expensive plans run K trials and are
paired, trial by trial (same seeds, so same data), with a cheap reference plan run on 4,000 trials (a control
variate): with S the plan's per-trial indicator (success, or interval covers) and R the reference's,

    estimate = mean₄₀₀₀(R) + mean_K(S − R),
    MCSE² = [π(1 − π) + 2 cov(R, S − R)] / 4,000 + var(S − R) / K,

unbiased for the plan's own rate whatever the reference's, and far more precise than mean_K(S) when the two plans
agree on most trials (only trials at the decision boundary differ). References: ancova_nuts ← ancova_vague (the
exact posterior of the same model and prior), mmrm_bayes_nuts ← mmrm_bayes_laplace (same model and priors),
mmrm_frequentist ← mmrm_bayes_laplace (same model, vague priors). K: 200 for NUTS ANCOVA, 120 for the NUTS MMRM
(with 400 + 300 draws), 120 for the REML MMRM (0.15–0.6 s per fit). NUTS plans run serially in this process so each
model structure compiles once.

Exclusions, each with its reason:
- plans named ``*misspecified*`` are deliberate misspecification examples (the random-intercept working covariance
  in a world whose variance grows over visits): their type I error is inflated by design —
  :func:`test_the_gate_fails_a_misspecified_covariance` shows the gate catching it;
- coverage is not checked for plans with an informative effect prior (``priors.effect.sd`` or ``from_library``):
  their intervals are calibrated on average over the prior, not at every fixed true effect (the skeptical prior
  covers the textbook effect of 6 points 84 % of the time, on purpose); their type I error is checked.

Runtime ≈ 6–8 min on 2 cores (the NUTS compilations, the REML fits and the 4,000-trial laplace runs dominate);
each cell's figures are printed (``pytest -s``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from tests.conftest import ANALYSIS, SCENARIOS
from trialsim.exceptions import ScenarioError
from trialsim.runner import check_design, simulate
from trialsim.spec.loading import load_plan, load_scenario
from trialsim.spec.plan import AnalysisPlan

pytestmark = pytest.mark.statistical

COVERAGE = 0.95
SEED = 20_260_501
CHEAP_TRIALS = 4000
#: Expensive plans: (trials, the cheap plan they are paired with).
EXPENSIVE = {
    ("nuts", "ancova"): (200, "ancova_vague"),
    ("nuts", "longitudinal"): (120, "mmrm_bayes_laplace"),
    ("frequentist", "longitudinal"): (120, "mmrm_bayes_laplace"),
}


def misspecified(plan: AnalysisPlan) -> bool:
    return "misspecified" in plan.name


def informative_prior(plan: AnalysisPlan) -> bool:
    effect = plan.priors.effect
    return effect.sd is not None or effect.from_library is not None


def cells() -> list[tuple[str, str]]:
    """(plan file stem, null scenario file stem) pairs the plan can analyse, misspecification examples excluded."""
    out = []
    for plan_path in sorted(ANALYSIS.glob("*.yaml")):
        plan = load_plan(plan_path)
        if misspecified(plan):
            continue
        for null_path in sorted(SCENARIOS.glob("*_null.yaml")):
            try:
                check_design(load_scenario(null_path), plan)
            except ScenarioError:
                continue
            out.append((plan_path.stem, null_path.stem))
    return out


CELLS = cells()
IDS = [f"{plan}-{scenario}" for plan, scenario in CELLS]


@functools.cache
def indicators(plan_stem: str, scenario_stem: str, trials: int) -> tuple[np.ndarray, np.ndarray]:
    """Per trial (in trial order): success, and whether the interval covers the true effect. The unstructured NUTS
    MMRM runs 400 + 300 draws (it mixes in far fewer; its decisions' sampling noise at that size, ≈ 0.008 in
    P(effect > 0), is part of what is tested)."""
    plan = load_plan(ANALYSIS / f"{plan_stem}.yaml")
    if plan.engine == "nuts" and plan.model == "longitudinal":
        plan = plan.model_copy(update={"sampler": plan.sampler.model_copy(update={"draws": 400, "tune": 300})})
    scenario = load_scenario(SCENARIOS / f"{scenario_stem}.yaml")
    scenario = scenario.model_copy(update={"sample_size": min(scenario.sample_sizes), "assurance": False})
    workers = 1 if plan.engine == "nuts" else None  # one compilation per model structure, in this process
    results = simulate(scenario, plan, trials, seed=SEED, workers=workers)
    rows = results.trials.sort_values("trial")
    success, covers = [], []
    for comparison in results.summary["design_points"][0]["comparisons"]:
        arm = comparison["arm"]
        assert (comparison["true_effect"] == 0.0) == scenario_stem.endswith("_null")
        truth = rows[f"{arm}.true_effect"].to_numpy()
        valid = rows["analysis_valid"].to_numpy(bool)
        covers.append(valid & (rows[f"{arm}.ci_low"] <= truth).to_numpy() & (truth <= rows[f"{arm}.ci_high"]).to_numpy())
        success.append(rows[f"{arm}.success"].to_numpy(bool))
    return np.stack(success, axis=1).astype(float), np.stack(covers, axis=1).astype(float)


def estimate(
    plan_stem: str, scenario_stem: str, which: int, nominal: float, comparison: int = 0
) -> tuple[float, float, str]:
    """(estimate, MCSE, how) of the plan's success rate (which = 0) or coverage (which = 1) on the scenario, for
    one comparison (active arm against control)."""
    plan = load_plan(ANALYSIS / f"{plan_stem}.yaml")
    if (plan.engine, plan.model) not in EXPENSIVE:
        values = indicators(plan_stem, scenario_stem, CHEAP_TRIALS)[which][:, comparison]
        return float(values.mean()), math.sqrt(nominal * (1 - nominal) / CHEAP_TRIALS), f"{CHEAP_TRIALS} trials"
    trials, reference = EXPENSIVE[(plan.engine, plan.model)]
    own = indicators(plan_stem, scenario_stem, trials)[which][:, comparison]
    paired = indicators(reference, scenario_stem, CHEAP_TRIALS)[which][:, comparison]
    difference = own - paired[:trials]
    variance = (nominal * (1 - nominal) + 2 * np.cov(paired[:trials], difference)[0, 1]) / CHEAP_TRIALS
    variance += difference.var(ddof=1) / trials
    how = (
        f"{trials} trials, paired with {reference} on {CHEAP_TRIALS} (own rate {own.mean():.4f}, "
        f"{int(np.abs(difference).sum())} discordant)"
    )
    return float(paired.mean() + difference.mean()), math.sqrt(max(variance, 0.0)), how


def test_the_gate_covers_the_bundled_plans():
    """Every bundled plan is gated or excluded as a misspecification example; the one exclusion says so in its name
    and its comment; the responder plan has no bundled null scenario with a responder endpoint."""
    plans = [load_plan(path) for path in sorted(ANALYSIS.glob("*.yaml"))]
    excluded = [plan.name for plan in plans if misspecified(plan)]
    assert excluded == ["longitudinal_random_intercept_misspecified"]
    assert "MISSPECIFIED" in (ANALYSIS / f"{excluded[0]}.yaml").read_text()
    gated = {plan for plan, _ in CELLS}
    assert {plan.name for plan in plans} - gated - set(excluded) == {"responder_beta_binomial"}


def test_the_gate_fails_a_misspecified_covariance():
    """The gate's type I criterion can fail: the misspecified random-intercept model (fitted by the cheap laplace
    engine) on the null textbook trials exceeds α + 3 MCSE."""
    plan = load_plan(ANALYSIS / "longitudinal_random_intercept_misspecified.yaml").model_copy(
        update={"engine": "laplace"}
    )
    results = simulate(load_scenario(SCENARIOS / "textbook_two_arm_null.yaml"), plan, CHEAP_TRIALS, seed=SEED)
    type_one = results.summary["design_points"][0]["comparisons"][0]["power"]
    print(f"\nrandom intercept (laplace) × textbook_two_arm_null: type I error {type_one:.4f}")
    assert type_one > 0.025 + 3 * math.sqrt(0.025 * 0.975 / CHEAP_TRIALS)


def test_laplace_engine_is_calibrated_both_ways_on_the_textbook_scenario():
    """The laplace MMRM's own calibration, two-sided (an approximation could as well be too wide): on the textbook
    null, |type I error − 0.025| ≤ 3 MCSE; on its twin, |coverage − 0.95| ≤ 3 MCSE (4,000 trials each, the gate's
    runs)."""
    success = indicators("mmrm_bayes_laplace", "textbook_two_arm_null", CHEAP_TRIALS)[0][:, 0]
    covers = indicators("mmrm_bayes_laplace", "textbook_two_arm", CHEAP_TRIALS)[1][:, 0]
    assert abs(success.mean() - 0.025) <= 3 * math.sqrt(0.025 * 0.975 / CHEAP_TRIALS)
    assert abs(covers.mean() - COVERAGE) <= 3 * math.sqrt(COVERAGE * (1 - COVERAGE) / CHEAP_TRIALS)


def nominal_alpha(plan: AnalysisPlan) -> float:
    """The per-comparison type I error a plan promises: 1 − its threshold; with interim looks, the α an
    alpha-spending function distributes, or for explicit look thresholds γ_k the union bound over the analyses,
    Σ_k (1 − γ_k) + (1 − final threshold) (with a vague prior P(effect > 0) ≥ γ is a one-sided p-value ≤ 1 − γ)."""
    efficacy = plan.interim.efficacy if plan.interim is not None else None
    if efficacy is None:
        return 1.0 - plan.decision.threshold
    if efficacy.spending is not None:
        return efficacy.spending.alpha
    return float(np.sum(1.0 - np.asarray(efficacy.thresholds, dtype=float))) + 1.0 - plan.decision.threshold


def test_the_adaptive_plan_keeps_its_family_wise_error():
    """adaptive_drop_rar's thresholds are calibrated for a family-wise one-sided type I error of 0.025 on
    three_arm_adaptive_null at N = 360: P(at least one arm succeeds) ≤ 0.025 + 3 MCSE on 4,000 trials of this
    gate's seed (not the calibration's)."""
    scenario = load_scenario(SCENARIOS / "three_arm_adaptive_null.yaml").model_copy(update={"assurance": False})
    results = simulate(scenario, load_plan(ANALYSIS / "adaptive_drop_rar.yaml"), CHEAP_TRIALS, seed=SEED)
    point = results.summary["design_points"][-1]
    print(f"\nadaptive_drop_rar × three_arm_adaptive_null: family-wise type I error {point['any_success']:.4f} ± "
          f"{point['any_success_mcse']:.4f}")
    assert point["sample_size"] == 360
    assert point["any_success"] <= 0.025 + 3.0 * math.sqrt(0.025 * 0.975 / CHEAP_TRIALS)


def comparisons(scenario_stem: str) -> int:
    scenario = load_scenario(SCENARIOS / f"{scenario_stem}.yaml")
    return len(scenario.arms) - 1


@pytest.mark.parametrize("plan_stem, null_stem", CELLS, ids=IDS)
def test_type_one_error(plan_stem, null_stem):
    """Each active arm's comparison keeps α (the plan's per-comparison rule; the family-wise error of several arms
    is the multiplicity tests' subject)."""
    plan = load_plan(ANALYSIS / f"{plan_stem}.yaml")
    alpha = nominal_alpha(plan)
    for comparison in range(comparisons(null_stem)):
        value, mcse, how = estimate(plan_stem, null_stem, 0, alpha, comparison)
        print(f"\n{plan_stem} × {null_stem} (comparison {comparison + 1}): type I error {value:.4f} ± {mcse:.4f}, "
              f"limit {alpha + 3 * mcse:.4f} ({how})")
        assert value <= alpha + 3.0 * mcse


@pytest.mark.parametrize("plan_stem, null_stem", CELLS, ids=IDS)
def test_coverage_on_the_alternative(plan_stem, null_stem):
    plan = load_plan(ANALYSIS / f"{plan_stem}.yaml")
    if informative_prior(plan):
        pytest.skip("informative effect prior: intervals are calibrated over the prior, not at a fixed effect")
    if load_scenario(SCENARIOS / f"{null_stem}.yaml").interim is not None:
        pytest.skip(
            "interim looks: the interval of the analysis a trial stops at is not a confidence interval after "
            "data-dependent stopping (it under-covers; Jennison & Turnbull 2000, ch. 8); the summary reports the "
            "bias by stopping look instead"
        )
    alternative = null_stem.removesuffix("_null")
    for comparison in range(comparisons(alternative)):
        value, mcse, how = estimate(plan_stem, alternative, 1, COVERAGE, comparison)
        print(f"\n{plan_stem} × {alternative} (comparison {comparison + 1}): coverage {value:.4f} ± {mcse:.4f} "
              f"({how})")
        assert abs(value - COVERAGE) <= 3.0 * mcse
