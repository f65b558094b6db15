"""Follow-up of randomised patients: visit times (with optional window jitter) and time-to-event dropout.

Vectorised over patients: visit and dropout times are fixed once a patient is randomised, so they need no
simpy events of their own (DESIGN.md §4: keep simpy for events that need a clock, numpy for arithmetic).
"""

from __future__ import annotations

import numpy as np


def dropout_hazards(fractions: list[float], endpoint_week: float) -> np.ndarray:
    """Constant weekly hazard per arm such that ``fraction`` have dropped out by ``endpoint_week``.

    P(D ≤ T) = 1 − exp(−λT) = p  ⇒  λ = −ln(1 − p) / T.
    """
    return -np.log1p(-np.asarray(fractions, dtype=float)) / endpoint_week


def draw_dropout_weeks(hazard: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Weeks from randomisation to dropout for each patient (``inf`` where the hazard is 0)."""
    with np.errstate(divide="ignore"):
        scale = np.where(hazard > 0, 1.0 / np.where(hazard > 0, hazard, 1.0), np.inf)
    return rng.exponential(1.0, size=hazard.shape) * scale


def draw_visit_weeks(
    visit_weeks: list[float], n: int, window_days: float, rng: np.random.Generator
) -> np.ndarray:
    """Actual visit weeks since randomisation, shape (n, visits); baseline stays at 0."""
    nominal = np.asarray(visit_weeks, dtype=float)
    weeks = np.broadcast_to(nominal, (n, nominal.size)).copy()
    if window_days > 0:
        weeks[:, 1:] += rng.uniform(-window_days, window_days, size=(n, nominal.size - 1)) / 7.0
    return weeks
