"""Calibrate efficacy thresholds to a target type I error on a scenario's null twin.

The null twin is the scenario with every active arm's effect set to 0 (each arm keeps its dropout and adverse
events). Its trials are simulated once with the plan's interim rules but **without efficacy stopping**: a trial
that would stop for efficacy at look j follows the same path up to j (futility stops, arm dropping and
response-adaptive shares do not depend on the efficacy thresholds), so one simulation holds, for every trial, the
statistic at every analysis it reaches — common random numbers for every candidate threshold. For thresholds of a
given shape, γ_j = Φ(c·s_j), a trial succeeds (some open arm crosses at some analysis) iff

    M = max over analyses j and open comparisons of Φ⁻¹(P_j(effect > margin)) / s_j  ≥  c,

so the type I error is P(M ≥ c) and the calibrated c is the (1 − α) empirical quantile of M: no search, exact for
the simulated trials. Shapes: ``constant`` (s_j = 1: one threshold for every analysis), ``obrien_fleming``
(s_j = 1/√t_j) and ``pocock``-like constant z (the same as ``constant``), with t_j the planned information
fractions. The Monte Carlo uncertainty of c comes from the order statistics around the quantile (a binomial 95%
interval of the rank), and of the type I error at c from the binomial MCSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from trialsim.decisions import information_fractions
from trialsim.runner import run_trials
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Effect, Scenario

SHAPES = ("constant", "obrien_fleming")


def null_twin(scenario: Scenario) -> Scenario:
    """The scenario with every active arm's true effect (total and subscales) 0 and no assurance draws."""
    zero = Effect(points=0.0)
    arms = [
        arm if arm.control else arm.model_copy(update={"effect": zero, "effect_positive": zero,
                                                        "effect_negative": zero, "design_prior": None})
        for arm in scenario.arms
    ]
    return scenario.model_copy(update={"arms": arms, "assurance": False, "name": f"{scenario.name}_null"})


def without_efficacy_stopping(plan: AnalysisPlan) -> AnalysisPlan:
    """The plan with its interim efficacy rule removed (everything else unchanged)."""
    if plan.interim is None:
        return plan
    return plan.model_copy(update={"interim": plan.interim.model_copy(update={"efficacy": None})})


@dataclass(frozen=True)
class Calibration:
    """Calibrated thresholds on P(effect > margin): one per interim look and the final, with their Monte Carlo
    uncertainty (thresholds at the ends of the 95% interval of the quantile)."""

    shape: str
    target: float
    trials: int
    sample_size: int
    critical: float  # c
    thresholds: list[float]
    thresholds_low: list[float]
    thresholds_high: list[float]
    type1: float  # on the calibration trials (≈ target by construction)
    type1_mcse: float
    seed: int

    def as_plan(self, plan: AnalysisPlan) -> AnalysisPlan:
        """``plan`` with these thresholds (interim efficacy per look, final decision threshold)."""
        from trialsim.spec.adaptive import Efficacy

        final = plan.decision.model_copy(update={"threshold": self.thresholds[-1]})
        if plan.interim is None:
            return plan.model_copy(update={"decision": final})
        efficacy = Efficacy(thresholds=self.thresholds[:-1])
        return plan.model_copy(update={"decision": final, "interim": plan.interim.model_copy(
            update={"efficacy": efficacy})})


def _statistic(table, scenario: Scenario, scales: np.ndarray) -> np.ndarray:
    """Per trial, M = max over reached analyses and open comparisons of Φ⁻¹(P(effect > margin)) / s_j."""
    looks = len(scenario.interim.looks) if scenario.interim else 0
    best = np.full(len(table), -np.inf)
    actives = [a.name for a in scenario.arms if not a.control]
    for arm in actives:
        dropped = table[f"{arm}.dropped_look"].to_numpy() if f"{arm}.dropped_look" in table else np.zeros(len(table))
        for j in range(looks):
            column = f"{arm}.look{j + 1}.prob_effect_gt_margin"
            prob = table[column].to_numpy(dtype=float)
            open_ = (dropped == 0) | (j + 1 <= dropped)
            z = np.where(open_ & np.isfinite(prob), ndtri(np.clip(prob, 1e-300, 1 - 1e-16)), -np.inf)
            best = np.maximum(best, z / scales[j])
        # The final analysis: trials that stopped for futility never reach it; open arms only.
        final = table[f"{arm}.final_estimate"].notna() if f"{arm}.final_estimate" in table else np.ones(len(table))
        prob = table[f"{arm}.prob_effect_gt_margin"].to_numpy(dtype=float)
        if "stop_look" in table:
            stopped = table["stop_look"].to_numpy() > 0
            prob = np.where(stopped, np.nan, prob)  # a stopped trial's decision was its stopping look's
        open_ = dropped == 0
        z = np.where(open_ & np.asarray(final) & np.isfinite(prob), ndtri(np.clip(prob, 1e-300, 1 - 1e-16)), -np.inf)
        best = np.maximum(best, z / scales[-1])
    return best


def calibrate(
    scenario: Scenario,
    plan: AnalysisPlan,
    target: float = 0.025,
    *,
    trials: int = 10_000,
    seed: int = 0,
    shape: str = "constant",
    sample_size: int | None = None,
    workers: int | None = None,
    progress=None,
) -> Calibration:
    """Thresholds of the given shape that give type I error ``target`` on the scenario's null twin (at
    ``sample_size``, default the largest), from ``trials`` simulated null trials."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    if not 0 < target < 0.5:
        raise ValueError("the target type I error must be in (0, 0.5)")
    size = sample_size or max(scenario.sample_sizes)
    null = null_twin(scenario).model_copy(update={"sample_size": size})
    fractions = information_fractions(null, plan, size) if scenario.interim else np.array([1.0])
    scales = np.ones_like(fractions) if shape == "constant" else 1.0 / np.sqrt(fractions)
    table, used = run_trials(null, without_efficacy_stopping(plan), trials, seed, workers=workers, progress=progress)
    statistic = np.sort(_statistic(table, null, scales))
    k = statistic.size
    rank = k * (1.0 - target)  # c = the (1 − α) quantile: P(M ≥ c) = α
    half = 1.96 * math.sqrt(k * target * (1.0 - target))

    def at(position: float) -> float:
        return float(statistic[int(np.clip(math.ceil(position), 0, k - 1))])

    critical = at(rank)
    type1 = float(np.mean(statistic >= critical))

    def thresholds(c: float) -> list[float]:
        return [float(ndtr(c * s)) for s in scales]

    return Calibration(
        shape=shape,
        target=target,
        trials=k,
        sample_size=size,
        critical=critical,
        thresholds=thresholds(critical),
        thresholds_low=thresholds(at(rank - half)),
        thresholds_high=thresholds(at(rank + half)),
        type1=type1,
        type1_mcse=math.sqrt(type1 * (1.0 - type1) / k),
        seed=used,
    )
