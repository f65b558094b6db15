"""Published trials as validation cases: each bundled ``scenarios/published_*.yaml`` takes its design from the paper
(cited field by field there) and the simulated trial is compared with what the paper reported.

Two kinds of check, kept apart in each docstring: *consistency* — a published number that is also an input
(e.g. a response rate the world is calibrated to) comes back out of the whole machine (trajectories, floor,
dropout, analysis) within Monte Carlo error; *prediction* — a published number that is not an input (the spread
of the estimate, a symptom SMD implied by response rates, the trial's success) agrees within the published
uncertainty. Fixed seeds; 1,000 trials per case.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from tests.conftest import SCENARIOS
from trialsim.chunk import trial_seed
from trialsim.engine.cohort import World
from trialsim.engine.trial import simulate_trials
from trialsim.evidence import EvidenceWarning
from trialsim.runner import simulate
from trialsim.spec.loading import load_design

pytestmark = pytest.mark.statistical
TRIALS = 1000


def run(name: str, seed: int):
    scenario, plan = load_design(SCENARIOS / f"published_{name}.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        results = simulate(scenario, plan, TRIALS, seed=seed, workers=2)
    return scenario, results.summary["design_points"][0], results.trials


def arm_changes(scenario, seed: int, trials: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Per trial, the completers' mean change from baseline per arm at every visit: (trials, arms, visits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        batch, _ = simulate_trials(scenario, scenario.sample_sizes[0], [trial_seed(seed, k) for k in range(trials)],
                                   subscales=False)
    change = batch.panss - batch.baseline[..., None]
    means = np.stack([np.nanmean(np.where((batch.arm == a)[..., None], change, np.nan), axis=1)
                      for a in range(len(scenario.arms))], axis=1)
    return means, batch.visit_weeks


def test_emergent2_xanomeline_trospium():
    """EMERGENT-2 (Kaul et al., Lancet 2024): placebo −11.6, X/T −21.2, difference −9.6 (−13.9, −5.2), p < 0.0001.

    Consistency: the mean changes per arm (completers) are within 3.5 MCSE of −11.6 and −21.2, the mean estimate
    within 3.5 MCSE of 9.6 (points, positive = improvement). Prediction: the spread of the estimate — from the
    pooled EMERGENT SD of change (15.2), the assumed 20% dropout and n = 126/126, not from EMERGENT-2's interval —
    is the published SE (13.9 − 5.2)/3.92 = 2.22 within 15% (3 × the published SE's own sampling error √(1/(2·234))
    ≈ 4.6%, and the Monte Carlo error of an SD over 1,000 trials, 2.2%); the trial succeeds (published p < 0.0001)
    with probability above 0.9."""
    scenario, point, table = run("emergent2", seed=31)
    comparison = point["comparisons"][0]
    assert abs(comparison["mean_estimate"] - 9.6) <= 3.5 * comparison["bias_mcse"]
    spread = table["xanomeline_trospium.estimate"].std(ddof=1)
    assert abs(spread / 2.22 - 1) <= 3 * math.hypot(math.sqrt(1 / (2 * 234)), math.sqrt(1 / (2 * TRIALS))), spread
    assert comparison["power"] > 0.9
    means, weeks = arm_changes(scenario, seed=32)
    endpoint = means[..., list(weeks).index(5.0)]
    for a, published in ((0, -11.6), (1, -21.2)):
        mcse = endpoint[:, a].std(ddof=1) / math.sqrt(len(endpoint))
        assert abs(endpoint[:, a].mean() - published) <= 3.5 * mcse, (a, endpoint[:, a].mean(), published)


def test_kane1988_clozapine_vs_chlorpromazine():
    """Kane et al. 1988: responders 30% (clozapine) vs 4% (chlorpromazine) after 6 weeks; no agranulocytosis.

    Consistency: the simulated trials' responder rates among completers (dropout 12%) are within 3.5 MCSE of 0.30
    and 0.04, and inside the published binomial 95% intervals p ± 1.96·√(p(1 − p)/134). Prediction: the trial
    succeeds (a difference this large, p < 0.001) with probability above 0.99; and with Myles et al. 2018's severe
    neutropenia (0.9%, onset Gamma(2, 4.35 weeks), found at weekly tests) a 6-week trial with no case in the
    clozapine arm, as published, is a likely outcome: P(no case) above 0.05, and at least the no-dropout value
    (1 − 0.009·G(6))^134 less 3.5 MCSE (dropout only removes cases)."""
    scenario, point, table = run("kane1988", seed=33)
    rates = point["responder_rates"]
    for arm, published in (("clozapine", 0.30), ("chlorpromazine", 0.04)):
        rate = rates[arm]
        assert abs(rate["rate"] - published) <= 3.5 * rate["rate_mcse"], (arm, rate)
        assert abs(rate["rate"] - published) <= 1.96 * math.sqrt(published * (1 - published) / 134)
    assert point["comparisons"][0]["power"] > 0.99
    none = (table["clozapine.ae_severe_neutropenia"] == 0).mean()
    reference = (1 - 0.009 * stats.gamma.cdf(6.0, 2.0, scale=4.35)) ** 134
    assert none > 0.05
    assert none >= reference - 3.5 * math.sqrt(reference * (1 - reference) / TRIALS), (none, reference)


def test_wang2018_ect_augmentation_typical_trial():
    """Wang et al. 2018 (18 RCTs of ECT + clozapine vs clozapine): response 53.6% vs 25.4% (RR 1.94, 1.59–2.36),
    SMD 0.88 (0.44–1.33) after the course, 0.54 (0.20–0.88) at weeks 1–2, memory impairment 24.2% vs 0%.

    Consistency: the responder rates among completers within 3.5 MCSE of 0.536 and 0.254 and their ratio inside
    1.59–2.36; memory impairment 0.242 × (1 − e^{−λT})/(λT) (events after a dropout unseen; λ = −ln(0.9)/4,
    T = 4 weeks; 3.5 binomial MCSE); the week-2 difference over sd_change inside 0.20–0.88 (the onset was derived
    from that abstract). Prediction: the symptom SMD the calibrated world implies for the post-course assessment,
    effect / sd_change, lies inside the published 0.44–1.33."""
    scenario, point, table = run("wang2018_ect", seed=34)
    rates = point["responder_rates"]
    for arm, published in (("ect", 0.536), ("clozapine_alone", 0.254)):
        assert abs(rates[arm]["rate"] - published) <= 3.5 * rates[arm]["rate_mcse"], (arm, rates[arm])
    assert 1.59 <= rates["ect"]["rate"] / rates["clozapine_alone"]["rate"] <= 2.36
    lam = -math.log(0.9) / 4
    expected = 0.242 * (1 - math.exp(-lam * 4)) / (lam * 4)
    memory = point["adverse_events"]["ect"]["memory_impairment"]
    patients = table["ect.n_randomised"].sum()
    assert abs(memory - expected) <= 3.5 * math.sqrt(expected * (1 - expected) / patients), (memory, expected)
    assert point["adverse_events"]["clozapine_alone"]["memory_impairment"] == 0.0
    smd = World.of(scenario).arms[1].effect_total / scenario.outcome.sd_change
    assert 0.44 <= smd <= 1.33, smd
    means, weeks = arm_changes(scenario, seed=35)
    early = (means[:, 0, list(weeks).index(2.0)] - means[:, 1, list(weeks).index(2.0)]).mean() / 15.0
    assert 0.20 <= early <= 0.88, early


def test_focus_cbt_effect_fades_after_therapy():
    """FOCUS (Morrison et al. 2018): PANSS difference 2.40 (0.02–4.79) at the end of therapy (9 months) and 0.89
    (−1.55 to 3.32, p = 0.48) at 21 months (positive = improvement).

    Consistency (the fade rate was derived from these two numbers): the true effect at 21 months is 2.40·e^{−1} =
    0.883, the mean estimate at 21 months within 3.5 MCSE of it and inside the published interval; the mean
    9-month difference within 3.5 MCSE of 2.40. Prediction: the 21-month analysis rarely succeeds (the published
    trial did not: power below 0.2 with 423 completers), while the 9-month difference is near the edge of
    significance (published p = 0.049): the share of trials whose 9-month difference exceeds 1.96 × its SE is
    between 0.3 and 0.8."""
    scenario, point, _ = run("focus", seed=36)
    comparison = point["comparisons"][0]
    assert comparison["true_effect"] == pytest.approx(2.40 * math.exp(-1.0))
    assert abs(comparison["mean_estimate"] - 2.40 * math.exp(-1.0)) <= 3.5 * comparison["bias_mcse"]
    assert -1.55 <= comparison["mean_estimate"] <= 3.32
    assert comparison["power"] < 0.2
    means, weeks = arm_changes(scenario, seed=37)
    at_9 = means[:, 0, list(weeks).index(39.0)] - means[:, 1, list(weeks).index(39.0)]
    assert abs(at_9.mean() - 2.40) <= 3.5 * at_9.std(ddof=1) / math.sqrt(at_9.size), at_9.mean()
    significant = (at_9 / at_9.std(ddof=1) > 1.96).mean()
    assert 0.3 <= significant <= 0.8, significant
