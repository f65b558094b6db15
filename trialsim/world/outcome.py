"""PANSS-total trajectories, vectorised over trials, patients and visits.

For patient i in arm a at week t (weeks since randomisation), with shape(t) = (1 − e^{−t/τ}) / (1 − e^{−T/τ})
(T the primary-endpoint week, so shape(T) = 1):

    change_i(t) = shape(t) · [ −(control_improvement + effect_a) − baseline_slope·(baseline_i − μ)
                               + u_i + √(1 − f)·σ·w_i(t) ]

u_i ~ N(0, f·σ²) is a patient random effect (f = patient_variance_fraction, σ = sd_change) and w_i a stationary
unit-variance AR(1) process in continuous time, corr(w(t), w(s)) = ρ^{|t − s|} (t, s in weeks). The SD of change
at the endpoint is therefore exactly σ, and change does not depend on baseline when baseline_slope = 0.
PANSS_i(t) = clip(baseline_i + change_i(t), 30, 210). Positive effects are improvements (larger reductions).
"""

from __future__ import annotations

import numpy as np

from trialsim.spec.scenario import PANSS_TOTAL_RANGE, Outcome


def response_shape(weeks: np.ndarray, onset_weeks: float, endpoint_week: float) -> np.ndarray:
    """Fraction of the full response reached at ``weeks`` (0 at baseline, 1 at the primary endpoint)."""
    weeks = np.maximum(np.asarray(weeks, dtype=float), 0.0)
    return np.expm1(-weeks / onset_weeks) / np.expm1(-endpoint_week / onset_weeks)


def draw_panss(
    outcome: Outcome,
    baseline: np.ndarray,
    baseline_mean: float,
    effect_points: np.ndarray,
    visit_weeks: np.ndarray,
    endpoint_week: float,
    normals: np.ndarray,
) -> np.ndarray:
    """PANSS total at every visit, shape (..., visits); the first visit is the baseline.

    Args:
        outcome: trajectory parameters.
        baseline: baseline PANSS total per patient (points), shape (...).
        baseline_mean: population mean baseline (centre for ``baseline_slope``).
        effect_points: true effect of each patient's arm (points, positive = improvement), shape (...).
        visit_weeks: actual visit weeks since randomisation, shape (..., visits).
        endpoint_week: primary-endpoint week (where shape = 1).
        normals: standard normal variates, shape (..., visits + 1): the patient effect, then one per visit.
    """
    shape = response_shape(visit_weeks, outcome.onset_weeks, endpoint_week)
    sigma, frac, rho = outcome.sd_change, outcome.patient_variance_fraction, outcome.visit_correlation
    innovations = normals[..., 1:]
    ar = np.empty_like(innovations)
    ar[..., 0] = innovations[..., 0]
    for j in range(1, ar.shape[-1]):
        corr = rho ** np.maximum(visit_weeks[..., j] - visit_weeks[..., j - 1], 0.0)
        ar[..., j] = corr * ar[..., j - 1] + np.sqrt(1.0 - corr**2) * innovations[..., j]
    level = (
        np.sqrt(frac) * sigma * normals[..., 0]
        - outcome.control_improvement
        - effect_points
        - outcome.baseline_slope * (baseline - baseline_mean)
    )
    change = shape * (level[..., None] + np.sqrt(1.0 - frac) * sigma * ar)
    return np.clip(baseline[..., None] + change, *PANSS_TOTAL_RANGE)
