"""Virtual TRS patients at baseline: PANSS total with positive and negative subscales, age, sex, smoking.

Defaults come from ../shared/evidence/trs_parameters.yaml (baseline PANSS total ≈ 98 ± 20, [D]; subscale
baselines 23 ± 5 and 24 ± 6, [U] — assumptions; smoking 70–80 %, [V]).

The functions transform uniform variates drawn by the caller (one block per trial from the trial's own stream),
so they vectorise over any leading shape, e.g. (trials, patients).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from trialsim.spec.base import PANSS_SUBSCALE_RANGE, PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Population

#: Uniform variates used per patient by :func:`draw_baseline`.
BASELINE_UNIFORMS = 6


def truncated_normal(u: np.ndarray, mean: np.ndarray | float, sd: float, low: float, high: float) -> np.ndarray:
    """Map uniforms ``u`` to N(mean, sd²) truncated to [low, high] by the inverse CDF (exact, no rejection)."""
    a = ndtr((low - mean) / sd)
    b = ndtr((high - mean) / sd)
    p = np.clip(a + u * (b - a), 1e-300, 1 - 1e-16)
    return np.clip(mean + sd * ndtri(p), low, high)


@dataclass(frozen=True)
class Baseline:
    """Baseline characteristics (arrays of the patients' shape). The subscales, age and sex are None when only the
    model's inputs were drawn (:func:`draw_baseline` with ``covariates=False``)."""

    panss_total: np.ndarray
    smoker: np.ndarray
    panss_positive: np.ndarray | None = None
    panss_negative: np.ndarray | None = None
    age: np.ndarray | None = None
    female: np.ndarray | None = None

    def covariates(self) -> dict[str, np.ndarray]:
        """Covariate columns for the per-patient table (those drawn)."""
        columns = {
            "panss_positive": self.panss_positive,
            "panss_negative": self.panss_negative,
            "age": self.age,
            "female": self.female,
            "smoker": self.smoker,
        }
        return {name: values for name, values in columns.items() if values is not None}


def draw_baseline(population: Population, uniforms: np.ndarray, covariates: bool = True) -> Baseline:
    """Eligible patients from uniforms of shape (..., BASELINE_UNIFORMS).

    The total is a normal truncated at the inclusion threshold and the scale range (30–210); each subscale is
    drawn from its normal conditional on the total (correlation ``correlation_with_total``), truncated to 7–49.
    ``covariates=False`` draws only what the outcome model uses (total and smoking): every uniform keeps its
    column, so the others are the same when drawn.
    """
    u = np.moveaxis(uniforms, -1, 0)
    total_mean, total_sd = population.baseline_panss.mean, population.baseline_panss.sd
    total = truncated_normal(u[0], total_mean, total_sd, population.inclusion_min_panss, PANSS_TOTAL_RANGE[1])
    smoker = u[5] < population.smoking_fraction
    if not covariates:
        return Baseline(panss_total=total, smoker=smoker)
    z_total = (total - total_mean) / total_sd
    subscales = []
    for k, sub in ((1, population.positive), (2, population.negative)):
        rho = sub.correlation_with_total
        mean = sub.mean + rho * sub.sd * z_total
        subscales.append(truncated_normal(u[k], mean, sub.sd * np.sqrt(1 - rho**2), *PANSS_SUBSCALE_RANGE))
    age = population.age
    return Baseline(
        panss_total=total,
        smoker=smoker,
        panss_positive=subscales[0],
        panss_negative=subscales[1],
        age=truncated_normal(u[3], age.mean, age.sd, age.min, age.max),
        female=u[4] < population.female_fraction,
    )
