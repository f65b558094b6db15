"""Follow-up of randomised patients: visit times (with optional window jitter) and time-to-event dropout.

Vectorised: visit and dropout times are fixed once a patient is randomised, so they need no simpy events of
their own (DESIGN.md §4: keep simpy for events that need a clock, numpy for arithmetic). The functions
transform uniform variates drawn by the caller from each trial's own stream.
"""

from __future__ import annotations

import numpy as np


def dropout_hazards(fractions: list[float], endpoint_week: float) -> np.ndarray:
    """Constant weekly hazard per arm such that ``fraction`` have dropped out by ``endpoint_week``.

    P(D ≤ T) = 1 − exp(−λT) = p  ⇒  λ = −ln(1 − p) / T.
    """
    return -np.log1p(-np.asarray(fractions, dtype=float)) / endpoint_week


def dropout_weeks(hazard: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Exponential weeks from randomisation to dropout, −ln(U)/λ (``inf`` where the hazard is 0)."""
    with np.errstate(divide="ignore"):
        return -np.log(uniforms) / hazard


def visit_weeks(nominal: list[float], window_days: float, uniforms: np.ndarray) -> np.ndarray:
    """Actual visit weeks since randomisation, shape (..., visits); baseline stays at 0.

    ``uniforms`` has shape (..., visits − 1): visit j > 0 happens at nominal ± window_days (uniform).
    """
    weeks = np.asarray(nominal, dtype=float)
    jitter = (2.0 * uniforms - 1.0) * (window_days / 7.0)
    out = np.empty(uniforms.shape[:-1] + (weeks.size,))
    out[..., 0] = weeks[0]
    out[..., 1:] = weeks[1:] + jitter
    return out
