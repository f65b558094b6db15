"""Placebo response, uncertain and structured: the control improvement of each trial and site, and how much of
it the active arms share.

A patient's control improvement at the endpoint is control + Δ_trial + Δ_site (points), where Δ_trial ~ N(0,
``outcome.control_improvement_sd``²) is drawn per trial in assurance runs (0 otherwise) and Δ_site ~ N(0,
``heterogeneity.site_sd``²) per site. Both arms get it, so on its own it cancels out of a continuous contrast; it
changes responder rates, which are non-linear (a threshold on the floor-adjusted reduction, scores floored at 30).
The coupling γ = ``outcome.effect_loss_per_control_point`` makes the difference itself depend on it: an active
arm's effect is effect − γ·(Δ_trial + Δ_site), smaller in high-placebo trials and sites, larger in low-placebo ones
(linear, so it can turn negative when Δ > effect/γ). The trial's true (population-average) effect is
effect − γ·Δ_trial, site effects averaging 0 over the population of sites. Sources:
:class:`trialsim.spec.scenario.Outcome`.
"""

from __future__ import annotations

import numpy as np

from trialsim.spec.scenario import Scenario


def trial_shift(scenario: Scenario, z: np.ndarray, assurance: bool) -> np.ndarray:
    """Δ_trial (points) per trial from standard normals ``z``: drawn only in assurance runs."""
    sd = scenario.outcome.control_improvement_sd if assurance else 0.0
    return sd * np.asarray(z, dtype=float)


def coupled(effect: np.ndarray, shift: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Effects after the coupling: effect − γ·shift (shapes broadcast; points)."""
    gamma = scenario.outcome.effect_loss_per_control_point
    return effect - gamma * shift if gamma else effect
