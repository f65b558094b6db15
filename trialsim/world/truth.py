"""True values of estimands that have no closed form: response rates per arm.

Computed once per run from a large simulated population with the scenario's own model (no dropout: the
estimand is the complete-data rate), common random numbers across arms, and a seed derived from the run's
master seed, so it does not depend on chunking or workers. Monte Carlo SE of a rate ≈ √(p(1 − p)/n) ≈ 0.001
with the default n = 200,000.
"""

from __future__ import annotations

import numpy as np

from trialsim.inference.responder import responders
from trialsim.spec.base import PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Scenario
from trialsim.world.outcome import draw_scores, total_trajectory
from trialsim.world.population import BASELINE_UNIFORMS, draw_baseline

TRUTH_SPAWN_KEY = 2**31 - 1  # child of the master seed reserved for truth computations


def responder_rates(
    scenario: Scenario, effects: np.ndarray, dependent: np.ndarray, seed: int, n: int = 200_000
) -> np.ndarray:
    """Complete-data response probability per arm at the primary endpoint.

    Args:
        scenario: the scenario (population, outcome, heterogeneity, responder threshold).
        effects: nominal effect on PANSS total per arm (points).
        dependent: per arm, whether its benefit needs adequate clozapine levels.
        seed: the run's master seed.
        n: simulated patients (shared by all arms).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRUTH_SPAWN_KEY,)))
    visits = np.asarray(scenario.visits_weeks, dtype=float)
    u = rng.random((n, BASELINE_UNIFORMS + 1))
    z = rng.standard_normal((n, visits.size + 1))
    noise = rng.standard_normal((n, 3))
    baseline = draw_baseline(scenario.population, u[:, :BASELINE_UNIFORMS])
    het, outcome = scenario.heterogeneity, scenario.outcome
    ultra = u[:, BASELINE_UNIFORMS] < het.ultra_trs_fraction
    params = total_trajectory(scenario)
    control = outcome.control_improvement + het.site_sd * noise[:, 0]
    weeks = np.broadcast_to(visits, (n, visits.size))
    observed_baseline = np.clip(baseline.panss_total + het.rater_sd * noise[:, 1], *PANSS_TOTAL_RANGE)
    rates = []
    for effect, needs_clozapine in zip(effects, dependent):
        multiplier = np.where(ultra, het.ultra_trs_effect_ratio, 1.0)
        if needs_clozapine:
            multiplier = multiplier * np.where(baseline.smoker, het.smoker_exposure_ratio, 1.0)
        scores = draw_scores(
            params, baseline.panss_total, control, effect * multiplier, weeks, scenario.primary_endpoint.week, z
        )
        endpoint = np.clip(scores[:, scenario.endpoint_visit] + het.rater_sd * noise[:, 2], *PANSS_TOTAL_RANGE)
        rates.append(np.mean(responders(observed_baseline, endpoint, scenario.primary_endpoint.responder_threshold)))
    return np.asarray(rates)
