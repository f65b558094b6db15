"""Virtual TRS patients at baseline: PANSS total with positive and negative subscales, age, sex, smoking.

Defaults come from ../shared/evidence/trs_parameters.yaml (baseline PANSS total ≈ 98 ± 20, [D]; subscale
baselines 23 ± 5 and 24 ± 6, [U] — assumptions; smoking 70–80 %, [V]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from trialsim.spec.scenario import PANSS_SUBSCALE_RANGE, PANSS_TOTAL_RANGE, Population


def truncated_normal(
    rng: np.random.Generator, mean: np.ndarray | float, sd: float, low: float, high: float, size: int
) -> np.ndarray:
    """Draw from N(mean, sd²) truncated to [low, high] by inverse-CDF sampling (exact, no rejection loop)."""
    a = ndtr((low - np.asarray(mean)) / sd)
    b = ndtr((high - np.asarray(mean)) / sd)
    u = a + rng.random(size) * (b - a)
    u = np.clip(u, 1e-300, 1 - 1e-16)
    return np.clip(np.asarray(mean) + sd * ndtri(u), low, high)


@dataclass(frozen=True)
class Baseline:
    """Baseline characteristics of ``n`` patients (arrays of length n)."""

    panss_total: np.ndarray
    panss_positive: np.ndarray
    panss_negative: np.ndarray
    age: np.ndarray
    female: np.ndarray
    smoker: np.ndarray

    def covariates(self) -> dict[str, np.ndarray]:
        """Covariate columns for the per-patient table."""
        return {
            "panss_positive": self.panss_positive,
            "panss_negative": self.panss_negative,
            "age": self.age,
            "female": self.female,
            "smoker": self.smoker,
        }


def draw_baseline(population: Population, n: int, rng: np.random.Generator) -> Baseline:
    """Draw ``n`` eligible patients.

    The total is a normal truncated at the inclusion threshold and the scale range (30–210); each subscale is
    drawn from its normal conditional on the total (correlation ``correlation_with_total``), truncated to 7–49.
    """
    total_mean, total_sd = population.baseline_panss.mean, population.baseline_panss.sd
    total = truncated_normal(rng, total_mean, total_sd, population.inclusion_min_panss, PANSS_TOTAL_RANGE[1], n)
    z_total = (total - total_mean) / total_sd
    subscales = []
    for sub in (population.positive, population.negative):
        rho = sub.correlation_with_total
        mean = sub.mean + rho * sub.sd * z_total
        subscales.append(truncated_normal(rng, mean, sub.sd * np.sqrt(1 - rho**2), *PANSS_SUBSCALE_RANGE, n))
    age = population.age
    return Baseline(
        panss_total=total,
        panss_positive=subscales[0],
        panss_negative=subscales[1],
        age=truncated_normal(rng, age.mean, age.sd, age.min, age.max, n),
        female=rng.random(n) < population.female_fraction,
        smoker=rng.random(n) < population.smoking_fraction,
    )
