"""The sample-size search against closed forms, and common random numbers across sample sizes.

The search accepts an N only when the verification's one-sided 95% Monte Carlo bound is above the target, and aims
two verification MCSEs above it; so the answer lies between the N where the exact power is the target (less one
allocation block, for Monte Carlo chance) and the N where it is the target + 4 MCSE of the smallest verification
(√(0.8·0.2/2000)), plus one block.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tests.conftest import make_scenario
from trialsim.runner import make_job, run_trials
from trialsim.sizing import Target, find_size
from trialsim.spec import load_design, load_plan

pytestmark = pytest.mark.statistical
MARGIN = 4 * math.sqrt(0.8 * 0.2 / 2000)


def smallest(power, level: float, block: int) -> int:
    """Smallest multiple of ``block`` whose power reaches ``level``."""
    n = block
    while power(n) < level:
        n += block
    return n


def test_textbook_size_matches_the_noncentral_t_power():
    """Effect 6 points, SD 15, no dropout, vague prior, threshold 0.975 (the ANCOVA t-test): exact power at total N
    is P(T_{N−3}(δ/(σ√(4/N))) > t_{0.975, N−3}); the normal approximation gives ≈ 198 for 80%. The search also
    spends far fewer trials than a grid of the same resolution."""
    scenario, plan = load_design("textbook_two_arm")

    def power(n: int) -> float:
        df, ncp = n - 3, 6.0 / (15.0 * math.sqrt(4.0 / n))
        return float(stats.nct.sf(stats.t.ppf(0.975, df), df, ncp))

    result = find_size(scenario, plan, Target("power", 0.8, "active"), seed=3, workers=2)
    block = 4
    low, high = smallest(power, 0.8, block) - block, smallest(power, 0.8 + MARGIN, block) + block
    print(f"N = {result.value:.0f} (allowed {low}–{high}); {result.trials_spent} trials vs a grid's "
          f"{result.grid_trials}")
    assert low <= result.value <= high
    assert result.metric - 1.645 * result.metric_mcse >= 0.8
    assert result.trials_spent < result.grid_trials / 5


def test_responder_size_matches_the_two_proportion_formula():
    """Responder endpoint, complete-data response rates p₀, p₁ (from the trajectory model, 200,000 patients):
    power of the two-proportion comparison with n per arm ≈ Φ((|p₁ − p₀|√n − z·√(2p̄q̄)) / √(p₀q₀ + p₁q₁)) (the
    Beta(1, 1)-posterior rule P(p₁ − p₀ > 0) ≥ 0.975 behaves as this one-sided test at 2.5%)."""
    scenario = make_scenario(
        arms=[{"name": "control", "control": True}, {"name": "active", "effect": {"points": 9.0}}],
        primary_endpoint={"measure": "responder", "week": 6},
        outcome={"sd_change": 15.0, "control_improvement": 4.0},
        recruitment={"sites": 10, "rate_per_site_per_week": 1.0},
        sample_size=200,
        analysis_plan="responder_beta_binomial",
    )
    plan = load_plan("responder_beta_binomial")
    p0, p1 = make_job(scenario, plan, seed=3).responder_truth
    pbar, z = (p0 + p1) / 2, stats.norm.ppf(0.975)

    def power(n_total: int) -> float:
        n = n_total / 2
        return float(stats.norm.cdf((abs(p1 - p0) * math.sqrt(n) - z * math.sqrt(2 * pbar * (1 - pbar)))
                                    / math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))))

    result = find_size(scenario, plan, Target("power", 0.8, "active"), seed=3, workers=2)
    block = 4
    low, high = smallest(power, 0.8, block) - block, smallest(power, 0.8 + MARGIN, block) + block
    print(f"rates {p0:.3f}, {p1:.3f}: N = {result.value:.0f} (allowed {low}–{high}); {result.trials_spent} trials "
          f"vs a grid's {result.grid_trials}")
    assert low <= result.value <= high


def test_the_same_trial_at_nearby_sample_sizes_is_strongly_correlated():
    """Common random numbers: trial k at N = 198 and at N = 200 shares its first 198 patients, so the estimates
    correlate (threshold 0.95; independent trials would give ≈ 0), and a power curve over 8 sample sizes with
    300 trials each is monotone while 8 independent runs (different seeds) of the same size are not."""
    scenario, plan = load_design("clozapine_augmentation")
    table, _ = run_trials(scenario.model_copy(update={"sample_size": [198, 200]}), plan, 600, seed=4, workers=2)
    a = table.loc[table["sample_size"] == 198, "add_on.estimate"].to_numpy()
    b = table.loc[table["sample_size"] == 200, "add_on.estimate"].to_numpy()
    assert np.corrcoef(a, b)[0, 1] > 0.95

    sizes = [100, 120, 140, 160, 180, 200, 220, 240]
    curve, _ = run_trials(scenario.model_copy(update={"sample_size": sizes}), plan, 300, seed=5, workers=2)
    common = curve.groupby("sample_size")["add_on.success"].mean().to_numpy()
    independent = [
        run_trials(scenario.model_copy(update={"sample_size": n}), plan, 300, seed=100 + i, workers=2)[0][
            "add_on.success"].mean()
        for i, n in enumerate(sizes)
    ]
    assert np.all(np.diff(common) >= 0), common
    assert np.any(np.diff(independent) < 0), independent
