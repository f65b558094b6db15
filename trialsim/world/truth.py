"""Response rates of the world model at the primary endpoint: the true value of a responder estimand, and the
calibration of an arm to a stated rate.

Both use one large complete-data sample of the scenario's own model (no dropout): baseline, untreated change,
site effects, rater noise, ultra-TRS and severity modifiers, clozapine levels and each arm's course at the
endpoint, all from :mod:`trialsim.world`. Given the sample, the endpoint score of a patient in arm a is

    Y = clip(B + U − c − Δ_site − δ_a·max(0, 1 − κ·Δ_site)·m·e_a, 30, 210) (+ rater noise, clipped again),

with U the untreated change without control improvement, c the control improvement, δ_a the arm's effect, m
the patient's modifiers and e_a the arm's exposure-and-course factor at the endpoint; a responder has
(B_obs − Y_obs)/(B_obs − 30) ≥ threshold. The rate is monotone in c and δ_a, so a stated rate is met by root
finding with common random numbers (Brent), to about the sample's Monte Carlo SE (≈ 0.001 at n = 200,000).
Calibration uses a fixed seed (the world does not depend on the run's seed); truths use the run's master seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from trialsim.exceptions import Problem, ScenarioError
from trialsim.inference.responder import responders
from trialsim.spec.base import PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Scenario
from trialsim.world import exposure, placebo
from trialsim.world.heterogeneity import effect_multiplier
from trialsim.world.outcome import rater_sd, response_shape, total_trajectory, untreated_change
from trialsim.world.population import BASELINE_UNIFORMS, draw_baseline
from trialsim.world.time_course import Course

TRUTH_SPAWN_KEY = 2**31 - 1  # child of the master seed reserved for truth computations
CALIBRATION_SEED = 20_250_417  # fixed: a calibrated world is a function of the scenario alone
SAMPLE_SIZE = 200_000
#: Bracket of control improvements and effects searched by the calibration (PANSS points).
SEARCH_POINTS = (-180.0, 180.0)


@dataclass(frozen=True)
class EndpointSample:
    """n simulated patients at the primary endpoint, complete data (arrays (n,); points)."""

    scenario: Scenario
    baseline: np.ndarray  # true baseline B
    observed_baseline: np.ndarray  # B with rater noise, clipped
    untreated: np.ndarray  # change without control improvement, site effect or treatment
    site: np.ndarray  # Δ_site of each patient's site
    modifier: np.ndarray  # ultra-TRS × severity
    exposure_course: list[np.ndarray]  # per arm: e_a (exposure ratio and time course at the endpoint)
    noise: np.ndarray  # rater noise at the endpoint

    def rates_of(self, control: float, effects: np.ndarray) -> np.ndarray:
        """Response probability per arm for control improvement ``control`` and effects ``effects`` (points)."""
        return np.array([self.rate(control, effect, a) for a, effect in enumerate(effects)])

    def rate(self, control: float, effect: float, arm: int) -> float:
        scenario = self.scenario
        active = arm != scenario.control_index
        left = placebo.effect_multiplier(scenario, self.site)
        treated = effect * left * self.modifier * self.exposure_course[arm] if active else 0.0
        score = np.clip(self.baseline + self.untreated - control - self.site - treated, *PANSS_TOTAL_RANGE)
        observed = np.clip(score + self.noise, *PANSS_TOTAL_RANGE)
        threshold = scenario.primary_endpoint.responder_threshold
        return float(np.mean(responders(self.observed_baseline, observed, threshold)))


def endpoint_sample(scenario: Scenario, seed: np.random.SeedSequence, n: int = SAMPLE_SIZE) -> EndpointSample:
    """Draw the complete-data sample (its own layout: these draws are not the trials')."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(scenario.visits_weeks, dtype=float)
    endpoint = scenario.primary_endpoint.week
    u = rng.random((n, BASELINE_UNIFORMS + 1 + exposure.EXPOSURE_UNIFORMS))
    z = rng.standard_normal((n, visits.size + 1))
    noise = rng.standard_normal((n, 3))
    baseline = draw_baseline(scenario.population, u[:, :BASELINE_UNIFORMS], covariates=False)
    het = scenario.heterogeneity
    params = total_trajectory(scenario)
    weeks = np.broadcast_to(visits, (n, visits.size))
    shape = response_shape(weeks, params.onset_weeks, endpoint)
    untreated = untreated_change(params, baseline.panss_total, 0.0, weeks, shape, z)[:, scenario.endpoint_visit]
    r = rater_sd(scenario, scenario.outcome.sd_change)
    levels = exposure.draw_levels(scenario.clozapine, baseline.smoker, u[:, BASELINE_UNIFORMS + 1 :], endpoint)
    courses = []
    for arm in scenario.arms:
        course = Course.of(arm, scenario)
        at_endpoint = course(endpoint)
        if arm.clozapine_dependent:
            before = exposure.effect_ratio(scenario.clozapine, levels.entry)
            after = exposure.effect_ratio(scenario.clozapine, levels.after_quit)
            quit_week = np.where(np.isfinite(levels.quit_week), levels.quit_week, 0.0)
            at_endpoint = before * at_endpoint + (after - before) * course(endpoint, quit_week)
        courses.append(np.broadcast_to(at_endpoint, (n,)))
    ultra = u[:, BASELINE_UNIFORMS] < het.ultra_trs_fraction
    return EndpointSample(
        scenario=scenario,
        baseline=baseline.panss_total,
        observed_baseline=np.clip(baseline.panss_total + r * noise[:, 1], *PANSS_TOTAL_RANGE),
        untreated=untreated,
        site=het.site_sd * noise[:, 0],
        modifier=effect_multiplier(scenario, ultra, baseline.panss_total),
        exposure_course=courses,
        noise=r * noise[:, 2],
    )


def responder_rates(
    scenario: Scenario, effects: np.ndarray, dependent: np.ndarray, seed: int, n: int = SAMPLE_SIZE
) -> np.ndarray:
    """Complete-data response probability per arm at the primary endpoint (``effects``: nominal effect on PANSS
    total per arm, points; ``dependent``: per arm, whether its benefit needs clozapine levels — the scenario's
    ``clozapine_dependent``, which the sample reads itself; ``seed``: the run's master seed)."""
    if list(dependent) != [arm.clozapine_dependent for arm in scenario.arms]:
        raise ValueError("dependent must be the scenario arms' clozapine_dependent flags")
    sample = endpoint_sample(scenario, np.random.SeedSequence(seed, spawn_key=(TRUTH_SPAWN_KEY,)), n)
    return sample.rates_of(control_improvement(scenario), np.asarray(effects, dtype=float))


def calibration_sample(scenario: Scenario) -> EndpointSample:
    """The fixed-seed sample the calibration uses."""
    return endpoint_sample(scenario, np.random.SeedSequence(CALIBRATION_SEED))


def control_improvement(scenario: Scenario) -> float:
    """The control improvement (points): calibrated to the control arm's ``responder_rate`` when it has one, else
    ``outcome.control_improvement``."""
    return _calibrated(scenario.model_dump_json(exclude_unset=True))[0]


def calibrated_effects(scenario: Scenario) -> dict[int, float]:
    """Effects (points) of the active arms stated as a ``responder_rate`` or ``responder_odds_ratio``, by arm
    index: each solves rate(effect) = target (the odds ratio's target is OR·p₀/(1 − p₀ + OR·p₀), p₀ the control's
    rate)."""
    return dict(_calibrated(scenario.model_dump_json(exclude_unset=True))[1])


@lru_cache(maxsize=16)
def _calibrated(scenario_json: str) -> tuple[float, tuple[tuple[int, float], ...]]:
    scenario = Scenario.model_validate_json(scenario_json)
    control_arm = scenario.arms[scenario.control_index]
    targets = {
        a: arm for a, arm in enumerate(scenario.arms)
        if not arm.control and (arm.responder_rate is not None or arm.responder_odds_ratio is not None)
    }
    if control_arm.responder_rate is None and not targets:
        return scenario.outcome.control_improvement, ()
    sample = calibration_sample(scenario)
    control = scenario.outcome.control_improvement
    c = scenario.control_index
    if control_arm.responder_rate is not None:
        control = _solve(lambda x: sample.rate(x, 0.0, c), control_arm.responder_rate)
    p0 = sample.rate(control, 0.0, c)
    effects = []
    for a, arm in targets.items():
        if arm.responder_rate is not None:
            target = arm.responder_rate
        else:
            odds = arm.responder_odds_ratio * p0 / (1 - p0)
            target = odds / (1 + odds)
        effects.append((a, _solve(lambda x, a=a: sample.rate(control, x, a), target)))
    return control, tuple(effects)


def _solve(rate, target: float) -> float:
    """The x with rate(x) = target (rate non-decreasing in x; bracketed by SEARCH_POINTS)."""
    low, high = SEARCH_POINTS
    if not rate(low) <= target <= rate(high):
        raise ScenarioError(Problem("", "responder_rate", f"no effect between {low:g} and {high:g} points gives "
                                    "this response rate in this world", target, True))
    return float(brentq(lambda x: rate(x) - target, low, high, xtol=1e-4))
