"""PANSS trajectories (total and subscales), vectorised over trials, patients and visits.

For a patient at week t since randomisation, with shape(t) = (1 − e^{−t/τ}) / (1 − e^{−T/τ}) (T the
primary-endpoint week, so shape(T) = 1) and d the delay before their treatment starts (0 unless a treatment
resource was busy):

    change(t) = shape(t)·[−control − slope·(baseline − μ) + u + √(1 − f)·σ·w(t)] − effect·shape(t − d)

u ~ N(0, f·σ²) is a patient random effect (f = patient_variance_fraction, σ = the score's SD of change) and w a
stationary unit-variance AR(1) process in continuous time, corr(w(t), w(s)) = ρ^{|t − s|} (weeks). The SD of
change at the endpoint is therefore exactly σ, and change does not depend on baseline when slope = 0.
Scores are clipped to their scale range (total 30–210, subscales 7–49). Positive effects are improvements.
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


def total_trajectory(scenario) -> Trajectory:
    """The PANSS-total trajectory parameters of a scenario (``outcome`` and the population's baseline mean)."""
    outcome = scenario.outcome
    return Trajectory(
        outcome.sd_change,
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
    params: Trajectory,
    baseline: np.ndarray,
    untreated: np.ndarray,
    effect: np.ndarray,
    visit_weeks: np.ndarray,
    endpoint_week: float,
    start_delay: np.ndarray | None = None,
    response: np.ndarray | None = None,
) -> np.ndarray:
    """Scores at every visit (clipped to the scale): the untreated change minus effect·shape(t − delay).

    ``effect``: treatment effect per patient (points, positive = improvement), shape (...); ``start_delay``: weeks
    from randomisation to the start of treatment, shape (...), or None for no delay; ``response``: shape(t) at the
    visits when already computed.
    """
    if start_delay is None:
        shape = response if response is not None else response_shape(visit_weeks, params.onset_weeks, endpoint_week)
    else:
        shape = response_shape(visit_weeks - start_delay[..., None], params.onset_weeks, endpoint_week)
    return np.clip(baseline[..., None] + (untreated - effect[..., None] * shape), *params.score_range)


def draw_scores(
    params: Trajectory,
    baseline: np.ndarray,
    control_improvement: np.ndarray | float,
    effect: np.ndarray,
    visit_weeks: np.ndarray,
    endpoint_week: float,
    normals: np.ndarray,
    start_delay: np.ndarray | None = None,
) -> np.ndarray:
    """Scores at every visit, shape (..., visits): :func:`untreated_change` then :func:`treated_scores`."""
    shape = response_shape(visit_weeks, params.onset_weeks, endpoint_week)
    untreated = untreated_change(params, baseline, control_improvement, visit_weeks, shape, normals)
    return treated_scores(params, baseline, untreated, effect, visit_weeks, endpoint_week, start_delay, shape)


def correlated(base: np.ndarray, own: np.ndarray, correlation: float) -> np.ndarray:
    """Standard normals correlated ``correlation`` with ``base`` (elementwise), from independent ``own``."""
    return correlation * base + np.sqrt(1.0 - correlation**2) * own
