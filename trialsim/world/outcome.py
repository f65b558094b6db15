"""PANSS trajectories (total and subscales), vectorised over trials, patients and visits.

For a patient at week t since randomisation, with shape(t) = (1 − e^{−t/τ}) / (1 − e^{−T/τ}) (T the
primary-endpoint week, so shape(T) = 1) and d the delay before their treatment starts (0 unless a treatment
resource was busy):

    change(t) = shape(t)·[−control − slope·(baseline − μ) + u + √(1 − f)·σ·w(t)] − effect_i·course_arm(t − d)

u ~ N(0, f·σ²) is a patient random effect (f = patient_variance_fraction, σ = the score's true SD of change) and
w a stationary unit-variance AR(1) process in continuous time, corr(w(t), w(s)) = ρ^{|t − s|} (weeks). The
observed score adds independent rater noise e(t) ~ N(0, r²) at every assessment (baseline included), so the
observed change has variance σ² + 2r²: σ = √(sd_change² − 2r²) keeps the observed SD of change at the endpoint
exactly ``sd_change`` (published SDs already contain rater noise); subscales get r scaled by their SD of change.
Change does not depend on baseline when slope = 0. The effect's course per arm is :mod:`trialsim.world.time_course`
(the control's shape unless the arm says otherwise); effect_i carries the patient's modifiers (heterogeneity,
clozapine exposure, placebo coupling). Scores are clipped to their scale range (total 30–210, subscales 7–49).
Positive effects are improvements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.spec.base import PANSS_TOTAL_RANGE


@dataclass(frozen=True)
class Trajectory:
    """Parameters of one score's trajectory (points, weeks)."""

    sd_change: float
    onset_weeks: float
    patient_variance_fraction: float
    visit_correlation: float
    score_range: tuple[float, float]
    baseline_slope: float = 0.0
    baseline_mean: float = 0.0


def true_change_fraction(scenario) -> float:
    """√(1 − 2r²/sd_change²): the true change's share of the observed SD of change (r = ``rater_sd``)."""
    return float(np.sqrt(1.0 - 2.0 * (scenario.heterogeneity.rater_sd / scenario.outcome.sd_change) ** 2))


def rater_sd(scenario, sd_change: float) -> float:
    """Rater noise SD of a score whose observed SD of change is ``sd_change`` (the total's ratio r/sd_change)."""
    return scenario.heterogeneity.rater_sd * sd_change / scenario.outcome.sd_change


def total_trajectory(scenario) -> Trajectory:
    """The PANSS-total trajectory parameters of a scenario (``outcome`` and the population's baseline mean); the SD
    of the true change leaves room for rater noise."""
    outcome = scenario.outcome
    return Trajectory(
        outcome.sd_change * true_change_fraction(scenario),
        outcome.onset_weeks,
        outcome.patient_variance_fraction,
        outcome.visit_correlation,
        PANSS_TOTAL_RANGE,
        outcome.baseline_slope,
        scenario.population.baseline_panss.mean,
    )


def response_shape(weeks: np.ndarray, onset_weeks: float, endpoint_week: float) -> np.ndarray:
    """Fraction of the full response reached at ``weeks`` (0 at or before 0, 1 at the primary endpoint)."""
    weeks = np.maximum(np.asarray(weeks, dtype=float), 0.0)
    return np.expm1(-weeks / onset_weeks) / np.expm1(-endpoint_week / onset_weeks)


def ar1(innovations: np.ndarray, weeks: np.ndarray, rho: float) -> np.ndarray:
    """Unit-variance AR(1) in continuous time at ``weeks`` (last axis) from standard-normal ``innovations``."""
    out = np.empty_like(innovations)
    out[..., 0] = innovations[..., 0]
    for j in range(1, out.shape[-1]):
        corr = rho ** np.maximum(weeks[..., j] - weeks[..., j - 1], 0.0)
        out[..., j] = corr * out[..., j - 1] + np.sqrt(1.0 - corr**2) * innovations[..., j]
    return out


def untreated_change(
    params: Trajectory,
    baseline: np.ndarray,
    control_improvement: np.ndarray | float,
    visit_weeks: np.ndarray,
    shape: np.ndarray,
    normals: np.ndarray,
) -> np.ndarray:
    """Change from baseline at every visit without the treatment effect, shape (..., visits): what the patient
    would show in the control arm (points; the first visit is the baseline, change 0).

    Args:
        params: the score's trajectory parameters.
        baseline: baseline score per patient, shape (...).
        control_improvement: mean reduction without treatment at the endpoint (points), scalar or shape (...).
        visit_weeks: actual visit weeks since randomisation, shape (..., visits).
        shape: the response curve at those weeks (:func:`response_shape`).
        normals: standard normals, shape (..., visits + 1): the patient effect, then one innovation per visit.
    """
    sigma, frac = params.sd_change, params.patient_variance_fraction
    level = (
        np.sqrt(frac) * sigma * normals[..., 0]
        - control_improvement
        - params.baseline_slope * (baseline - params.baseline_mean)
    )
    residual = np.sqrt(1.0 - frac) * sigma * ar1(normals[..., 1:], visit_weeks, params.visit_correlation)
    return shape * (level[..., None] + residual)


def treated_scores(
    params: Trajectory, baseline: np.ndarray, untreated: np.ndarray, effect: np.ndarray
) -> np.ndarray:
    """Scores at every visit (clipped to the scale): baseline + untreated change − the effect at each visit
    (points, positive = improvement, shape of ``untreated``: the patient's effect times the arm's course)."""
    return np.clip(baseline[..., None] + (untreated - effect), *params.score_range)


def correlated(base: np.ndarray, own: np.ndarray, correlation: float) -> np.ndarray:
    """Standard normals correlated ``correlation`` with ``base`` (elementwise), from independent ``own``."""
    return correlation * base + np.sqrt(1.0 - correlation**2) * own
