"""PANSS-total trajectories, vectorised over patients and visits.

For patient i in arm a at week t (weeks since randomisation), with shape(t) = (1 − e^{−t/τ}) / (1 − e^{−T/τ})
(T the primary-endpoint week, so shape(T) = 1):

    change_i(t) = −(control_improvement + effect_a)·shape(t) − baseline_slope·(baseline_i − μ)·shape(t)
                  + u_i·shape(t) + w_i(t)

u_i ~ N(0, f·σ²) is a patient random effect (f = patient_variance_fraction, σ = sd_change); w_i is a stationary
AR(1) process over post-baseline visits with correlation ρ^{|Δt|} (Δt in weeks) and variance (1 − f)·σ²·shape(t)²,
so the SD of change at the endpoint is exactly σ and change does not depend on baseline when baseline_slope = 0.
PANSS_i(t) = clip(baseline_i + change_i(t), 30, 210). Positive effects are improvements (larger reductions).
"""

from __future__ import annotations

import numpy as np

from trialsim.spec.scenario import PANSS_TOTAL_RANGE, Outcome


def response_shape(weeks: np.ndarray, onset_weeks: float, endpoint_week: float) -> np.ndarray:
    """Fraction of the full response reached at ``weeks`` (0 at baseline, 1 at the primary endpoint)."""
    weeks = np.maximum(np.asarray(weeks, dtype=float), 0.0)
    return -np.expm1(-weeks / onset_weeks) / -np.expm1(-endpoint_week / onset_weeks)


def draw_panss(
    outcome: Outcome,
    baseline: np.ndarray,
    baseline_mean: float,
    effect_points: np.ndarray,
    visit_weeks: np.ndarray,
    endpoint_week: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """PANSS total at each visit for each patient, shape (patients, visits); column 0 is the baseline.

    Args:
        outcome: trajectory parameters.
        baseline: baseline PANSS total per patient (points).
        baseline_mean: population mean baseline (centre for ``baseline_slope``).
        effect_points: true effect of each patient's arm (points, positive = improvement).
        visit_weeks: visit times per patient in weeks since randomisation, shape (patients, visits), or (visits,).
        endpoint_week: primary-endpoint week (where shape = 1).
        rng: the trial's outcome generator.
    """
    n = baseline.shape[0]
    weeks = np.broadcast_to(np.asarray(visit_weeks, dtype=float), (n, np.shape(visit_weeks)[-1]))
    shape = response_shape(weeks, outcome.onset_weeks, endpoint_week)
    sigma = outcome.sd_change
    frac = outcome.patient_variance_fraction
    patient = rng.standard_normal(n) * (np.sqrt(frac) * sigma)
    # AR(1) across visits in continuous time: corr = rho ** (gap in weeks), stationary unit variance.
    rho = outcome.visit_correlation
    innovations = rng.standard_normal(weeks.shape)
    ar = np.empty_like(weeks)
    ar[:, 0] = innovations[:, 0]
    for j in range(1, weeks.shape[1]):
        corr = rho ** np.maximum(weeks[:, j] - weeks[:, j - 1], 0.0)
        ar[:, j] = corr * ar[:, j - 1] + np.sqrt(1.0 - corr**2) * innovations[:, j]
    drift = outcome.control_improvement + effect_points + outcome.baseline_slope * (baseline - baseline_mean)
    change = shape * (-drift[:, None] + patient[:, None] + np.sqrt(1.0 - frac) * sigma * ar)
    return np.clip(baseline[:, None] + change, *PANSS_TOTAL_RANGE)
