"""Clozapine plasma levels (ng/mL): dose × concentration-to-dose (C/D) ratio, smoking, titration, eligibility.

A patient's C/D ratio ((ng/mL)/(mg/day)) is log-normal, C/D = m·exp(σZ), with mean μ the smoker's or the
non-smoker's and median m = μ·exp(−σ²/2) (smoking induces CYP1A2, which metabolises clozapine; Tsuda et al., BMJ
Open 2014, compare means). The dose is
titrated towards the target level (``level_guided``: dose = min(max dose, target / C/D), so the level is
min(target, max dose × C/D)) or ``fixed``. Either way the level at entry is K·m·exp(σZ) capped at the target,
with K the maximum or the fixed dose: monotone in Z, so an eligibility threshold on a confirmed level truncates
Z exactly (inverse-CDF sampling, like the baseline PANSS). A smoker who stops during the trial keeps their dose;
their C/D ratio becomes the non-smoker's, m_ns·exp(σZ): the level rises by μ_ns/μ_s.

Everything is a function of per-patient uniforms (:data:`EXPOSURE_UNIFORMS` columns), vectorised over any leading
shape. Parameters: :class:`trialsim.spec.scenario.ClozapineExposure` (sources there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from trialsim.spec.scenario import ClozapineExposure

#: Uniform variates per patient: C/D quantile, whether a smoker stops smoking, when.
EXPOSURE_UNIFORMS = 3
#: Adverse event recorded when a clozapine level rises above the alert level during the trial.
LEVEL_ALERT_EVENT = "clozapine_level_above_alert"


@dataclass(frozen=True)
class Levels:
    """Clozapine plasma levels (ng/mL) of patients, arrays of the patients' shape.

    ``entry``: the steady-state level at randomisation; ``after_quit``: the level once a smoker has stopped
    (equal to ``entry`` for everyone else); ``quit_week``: weeks from randomisation to stopping (inf: never).
    """

    entry: np.ndarray
    after_quit: np.ndarray
    quit_week: np.ndarray


def _dose_scale(spec: ClozapineExposure) -> float:
    """K: the dose (mg/day) that multiplies the C/D ratio before the target cap (the maximum when level-guided)."""
    return spec.max_dose_mg_per_day if spec.dosing == "level_guided" else spec.dose_mg_per_day


def _z_of_level(spec: ClozapineExposure, level: float, median: np.ndarray | float) -> np.ndarray:
    """The Z at which K·median·exp(σZ) equals ``level`` (±inf when σ = 0)."""
    ratio = np.log(level / (_dose_scale(spec) * np.asarray(median, dtype=float)))
    if spec.cd_ratio_log_sd == 0:
        return np.where(ratio < 0, -np.inf, np.inf)
    return ratio / spec.cd_ratio_log_sd


def _lowest_z(spec: ClozapineExposure, median: np.ndarray | float) -> np.ndarray:
    """The smallest eligible Z (−inf without an eligibility threshold)."""
    if spec.eligibility_min_level_ng_ml is None:
        return np.full(np.shape(median), -np.inf)
    return _z_of_level(spec, spec.eligibility_min_level_ng_ml, median)


def medians(spec: ClozapineExposure, smoker: np.ndarray | bool) -> np.ndarray:
    """Median C/D ratio of each patient's smoking group: its mean × exp(−σ²/2)."""
    mean = np.where(smoker, spec.cd_ratio_smoker, spec.cd_ratio_nonsmoker)
    return mean * np.exp(-0.5 * spec.cd_ratio_log_sd**2)


def draw_levels(spec: ClozapineExposure, smoker: np.ndarray, uniforms: np.ndarray, endpoint_week: float) -> Levels:
    """Levels from uniforms of shape (..., EXPOSURE_UNIFORMS): Z from the first (truncated to the eligible range),
    stopping smoking from the second (smokers only, probability ``smokers_quitting`` by the primary endpoint) at
    a week uniform up to the endpoint from the third."""
    median = medians(spec, smoker)
    low = ndtr(_lowest_z(spec, median))
    z = ndtri(np.clip(low + uniforms[..., 0] * (1.0 - low), 1e-300, 1 - 1e-16))
    entry = np.minimum(_dose_scale(spec) * median * np.exp(spec.cd_ratio_log_sd * z), _cap(spec))
    quits = smoker & (uniforms[..., 1] < spec.smokers_quitting)
    rise = spec.cd_ratio_nonsmoker / spec.cd_ratio_smoker
    quit_week = np.where(quits, uniforms[..., 2] * endpoint_week, np.inf)
    return Levels(entry, np.where(quits, entry * rise, entry), quit_week)


def _cap(spec: ClozapineExposure) -> float:
    return spec.target_level_ng_ml if spec.dosing == "level_guided" else np.inf


def effect_ratio(spec: ClozapineExposure, level: np.ndarray) -> np.ndarray:
    """Share of a clozapine-dependent effect at a level: 1 at or above the target, else the subtherapeutic ratio."""
    return np.where(level >= spec.target_level_ng_ml, 1.0, spec.subtherapeutic_effect_ratio)


def above_alert(spec: ClozapineExposure, levels: Levels) -> np.ndarray:
    """Patients whose level rises above the alert level during the trial (from at or below it at entry)."""
    return (levels.after_quit > spec.alert_level_ng_ml) & (levels.entry <= spec.alert_level_ng_ml)


def expected_effect_ratios(spec: ClozapineExposure, smoking_fraction: float) -> tuple[float, float]:
    """Population averages (eligible patients) of the effect ratio at entry, E[f₀], and of its rise on stopping
    smoking, E[f₁ − f₀] (closed form: each level is monotone in Z, so being below the target is an interval of Z).

    P(below target ∣ group) = (Φ(z_target) − Φ(z_min))⁺ / (1 − Φ(z_min)), with z_target where K·m·exp(σZ)·q
    equals the target (q = 1 at entry, m_ns/m_s after stopping: K·m_ns·exp(σZ)) and z_min the eligibility bound.
    """
    loss = 1.0 - spec.subtherapeutic_effect_ratio

    def below(target_median: float, group_median: float) -> float:
        low = float(ndtr(_lowest_z(spec, group_median)))
        high = float(ndtr(_z_of_level(spec, spec.target_level_ng_ml, target_median)))
        return max(high - low, 0.0) / (1.0 - low) if low < 1.0 else 0.0

    smoker, nonsmoker = float(medians(spec, True)), float(medians(spec, False))
    smoker_entry = below(smoker, smoker)
    nonsmoker_entry = below(nonsmoker, nonsmoker)
    smoker_after = below(nonsmoker, smoker)
    at_entry = 1.0 - loss * (smoking_fraction * smoker_entry + (1.0 - smoking_fraction) * nonsmoker_entry)
    rise = loss * smoking_fraction * spec.smokers_quitting * (smoker_entry - smoker_after)
    return at_entry, rise
