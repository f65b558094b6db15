"""Placebo response, uncertain and structured: the control improvement of each trial and site, and how the
treatment effect shrinks where it is high.

A patient's control improvement at the endpoint is control + Δ_trial + Δ_site (points), where Δ_trial ~ N(0,
``outcome.control_improvement_sd``²) is drawn per trial in assurance runs (0 otherwise) and Δ_site ~ N(0,
``heterogeneity.site_sd``²) per site. Both arms get it, so on its own it cancels out of a continuous contrast; it
changes responder rates, which are non-linear (a threshold on the floor-adjusted reduction, scores floored at 30).
The coupling κ = ``outcome.effect_loss_per_control_point`` makes the difference itself depend on it: an active
arm's effect is multiplied by max(0, 1 − κ·(Δ_trial + Δ_site)), smaller in high-placebo trials and sites, larger
in low-placebo ones, never reversed; a null effect stays null. The trial's true (population-average) effect
averages the multiplier over sites: E[max(0, a − κS)] = a·Φ(a/(κσ)) + κσ·φ(a/(κσ)) with a = 1 − κ·Δ_trial,
S ~ N(0, σ²), σ = site_sd (a⁺ when κσ = 0). Sources: :class:`trialsim.spec.scenario.Outcome`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from trialsim.spec.scenario import Scenario


def trial_shift(scenario: Scenario, z: np.ndarray, assurance: bool) -> np.ndarray:
    """Δ_trial (points) per trial from standard normals ``z``: drawn only in assurance runs."""
    sd = scenario.outcome.control_improvement_sd if assurance else 0.0
    return sd * np.asarray(z, dtype=float)


def effect_multiplier(scenario: Scenario, shift: np.ndarray) -> np.ndarray:
    """max(0, 1 − κ·shift): the share of an active arm's effect left at a placebo deviation ``shift`` (points)."""
    kappa = scenario.outcome.effect_loss_per_control_point
    return np.maximum(1.0 - kappa * np.asarray(shift, dtype=float), 0.0)


def mean_effect_multiplier(scenario: Scenario, trial_shift_points: np.ndarray) -> np.ndarray:
    """The multiplier averaged over the population of sites, per trial (closed form above)."""
    kappa, sd = scenario.outcome.effect_loss_per_control_point, scenario.heterogeneity.site_sd
    a = 1.0 - kappa * np.asarray(trial_shift_points, dtype=float)
    spread = kappa * sd
    if spread == 0:
        return np.maximum(a, 0.0)
    return a * norm.cdf(a / spread) + spread * norm.pdf(a / spread)
