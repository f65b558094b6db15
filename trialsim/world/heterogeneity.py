"""Patient-level modifiers of an arm's effect that do not change over time: ultra-TRS and baseline severity.

Multiplier_i = (ultra-TRS ratio if ultra-TRS else 1) × severity_i, with severity_i = (B_i − 20)/(E[B] − 20) when
``severity_effect_interaction`` is on (Furukawa et al., JAMA Psychiatry 2015: the drug–placebo difference is
0.25·(baseline − 20) points in acute trials; E[B] the mean of the truncated baseline distribution, so severity
averages 1) and 1 otherwise. Parameters and sources: :class:`trialsim.spec.scenario.Heterogeneity`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from trialsim.spec.base import PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Scenario

#: Baseline PANSS at which Furukawa et al. 2015's line 0.25·(baseline − 20) reaches 0 (derived:
#: 9.5 points at 58 and 24.0 at 116 → slope 14.5/58 = 0.25, zero at 58 − 9.5/0.25 = 20).
SEVERITY_ZERO_PANSS = 20.0


def mean_baseline(scenario: Scenario) -> float:
    """E[B]: the mean of the baseline PANSS total, a normal truncated to [inclusion threshold, 210]."""
    population = scenario.population
    mean, sd = population.baseline_panss.mean, population.baseline_panss.sd
    low, high = (population.inclusion_min_panss - mean) / sd, (PANSS_TOTAL_RANGE[1] - mean) / sd
    return float(stats.truncnorm.mean(low, high, loc=mean, scale=sd))


def effect_multiplier(scenario: Scenario, ultra_trs: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Each patient's multiplier of the arm's effect (ultra-TRS × severity), shape of ``baseline``."""
    het = scenario.heterogeneity
    multiplier = np.where(ultra_trs, het.ultra_trs_effect_ratio, 1.0)
    if het.severity_effect_interaction:
        multiplier = multiplier * (baseline - SEVERITY_ZERO_PANSS) / (mean_baseline(scenario) - SEVERITY_ZERO_PANSS)
    return multiplier


def marginal_multiplier(scenario: Scenario) -> float:
    """The population average of :func:`effect_multiplier` (ultra-TRS and baseline are independent; severity
    averages 1)."""
    het = scenario.heterogeneity
    return (1 - het.ultra_trs_fraction) + het.ultra_trs_fraction * het.ultra_trs_effect_ratio
