"""Time to dropout: withdrawal (MCAR, MAR or MNAR), adverse-event discontinuation and neutropenia.

All times are weeks since randomisation and come from uniforms drawn per patient by the caller.

- Withdrawal: hazard λ = −ln(1 − p)/T (p dropped by the endpoint week T when outcomes play no role). Under
  ``mar`` and ``mnar`` the hazard in visit interval (t_{j−1}, t_j] is λ·exp(β·z), z = (PANSS − baseline)/σ,
  with PANSS the last observed value (at t_{j−1}, MAR) or the current unobserved one (at t_j, MNAR); patients
  whose symptoms worsen drop out more ("lack of efficacy"). The time solves H(t) = −ln U for the piecewise-
  constant cumulative hazard H.
- AE discontinuation: constant hazard calibrated to the arm's fraction by the endpoint.
- Neutropenia (clozapine-monitored arms): with probability ``risk``, at a time uniform in the risk window.
"""

from __future__ import annotations

import numpy as np


def hazard_for(fraction: np.ndarray | float, endpoint_week: float) -> np.ndarray:
    """Constant weekly hazard with P(event by ``endpoint_week``) = ``fraction``: λ = −ln(1 − p)/T."""
    return -np.log1p(-np.asarray(fraction, dtype=float)) / endpoint_week


def exponential_time(hazard: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """−ln(U)/λ (``inf`` where the hazard is 0)."""
    with np.errstate(divide="ignore"):
        return -np.log(uniforms) / hazard


def outcome_driven_time(
    hazard: np.ndarray, log_hr: float, z: np.ndarray, visit_weeks: np.ndarray, uniforms: np.ndarray
) -> np.ndarray:
    """Dropout time with hazard λ·exp(log_hr·z_j) in visit interval j (z: shape (..., visits − 1)).

    Beyond the last visit the hazard stays at the last interval's (only the order relative to visits matters).
    """
    target = -np.log(uniforms)
    rates = hazard[..., None] * np.exp(log_hr * z)
    widths = np.diff(visit_weeks, axis=-1)
    cumulative = np.cumsum(rates * widths, axis=-1)
    before = np.concatenate([np.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], axis=-1)
    crossed = cumulative >= target[..., None]
    first = np.where(crossed.any(axis=-1), crossed.argmax(axis=-1), widths.shape[-1] - 1)
    take = lambda a: np.take_along_axis(a, first[..., None], axis=-1)[..., 0]  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        time = take(visit_weeks[..., :-1]) + (target - take(before)) / take(rates)
    return np.where(take(rates) > 0, time, np.inf)
