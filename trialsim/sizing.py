"""Search for the smallest design (total N, number of sites, or recruitment rate) that reaches a target power,
assurance or probability of finishing in time, with Monte Carlo guarantees.

The metric is the probability of a per-trial event (success of a comparison; duration ≤ a target) as a function
of the searched quantity x, assumed monotone increasing. The search:

1. **Spread.** Simulate ``spread`` values of x around a first guess (a closed-form sample size where one exists)
   with the same trial seeds at every x (common random numbers: patient i of trial k is the same person at every
   N, so the curve is smooth).
2. **Fit.** A monotone probit curve P(x) = Φ(a + b·ln x), b > 0, by binomial maximum likelihood over all trials
   simulated so far; the fitted x* solves P(x*) = target. If x* lies outside the simulated range, the spread is
   moved there and step 1 repeats.
3. **Refine.** A narrower spread around x* with more trials, then the fit again.
4. **Verify.** At the candidate x (where the fitted metric exceeds the target by two Monte Carlo standard errors
   of the verification, so that it can be resolved; rounded up to whole allocation blocks for N), fresh trials
   (another seed) must put the target below the one-sided 95% Monte Carlo bound, p̂ − 1.645·MCSE ≥ target, to
   accept x. Otherwise their trials join the fit, the verification size doubles (up to ``max_verify_trials``)
   and x moves up to the refitted aim (at least one step). The answer is the first x on this path whose metric
   is above the target with 95% Monte Carlo confidence.

Every simulated trial is counted (``trials_spent``); a grid of the same resolution over the same range would need
``grid_trials`` (one verification-sized run per step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from trialsim.runner import run_trials
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

Z_ONE_SIDED_95 = 1.6448536269514722
SEARCHES = ("sample_size", "sites", "rate")


@dataclass(frozen=True)
class Target:
    """What the search aims at: ``kind`` power | assurance | duration, its ``level`` (a probability), the
    comparison (active arm name) for power/assurance, and the duration in weeks for ``duration``."""

    kind: str
    level: float
    comparison: str | None = None
    weeks: float | None = None

    def event(self, table: pd.DataFrame) -> np.ndarray:
        """The per-trial event whose probability is the metric."""
        if self.kind == "duration":
            return table["duration_weeks"].to_numpy(dtype=float) <= self.weeks
        return table[f"{self.comparison}.success"].to_numpy(dtype=bool)

    def describe(self) -> str:
        if self.kind == "duration":
            return f"P(duration ≤ {self.weeks:g} weeks) ≥ {self.level:g}"
        return f"{self.kind} of {self.comparison} ≥ {self.level:g}"


@dataclass
class SizeResult:
    """The answer of a search and how it was reached."""

    search: str
    value: float
    target: Target
    metric: float
    metric_mcse: float
    verification_trials: int
    curve: tuple[float, float]  # (a, b) of Φ(a + b·ln x)
    points: list[dict[str, float]]  # every simulated x: trials, events, metric
    trials_spent: int
    grid_trials: int
    expected_n: float
    expected_completers: float
    duration_weeks: dict[str, float]
    seed: int
    notes: list[str] = field(default_factory=list)
    verification: Any = None  # SimulationResults of the accepted verification run (at the answer)

    def fitted(self, x: np.ndarray) -> np.ndarray:
        """The fitted curve at ``x``."""
        a, b = self.curve
        return ndtr(a + b * np.log(np.asarray(x, dtype=float)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (for size.json and the report)."""
        grid = np.linspace(min(p["x"] for p in self.points), max(p["x"] for p in self.points), 50)
        return {
            "search": self.search,
            "value": self.value,
            "target": {"kind": self.target.kind, "level": self.target.level, "comparison": self.target.comparison,
                       "weeks": self.target.weeks},
            "metric": self.metric,
            "metric_mcse": self.metric_mcse,
            "verification_trials": self.verification_trials,
            "curve": {"formula": "Phi(a + b*ln(x))", "a": self.curve[0], "b": self.curve[1],
                      "x": grid.tolist(), "fitted": self.fitted(grid).tolist()},
            "points": self.points,
            "trials_spent": self.trials_spent,
            "grid_trials": self.grid_trials,
            "expected_n": self.expected_n,
            "expected_completers": self.expected_completers,
            "duration_weeks": self.duration_weeks,
            "seed": self.seed,
            "notes": self.notes,
        }


def fit_probit(x: np.ndarray, events: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """Binomial maximum-likelihood fit of P(x) = Φ(a + b·ln x) with b > 0 (monotone increasing)."""
    from scipy.optimize import minimize

    logx = np.log(np.asarray(x, dtype=float))
    events, trials = np.asarray(events, dtype=float), np.asarray(trials, dtype=float)

    def loss(theta: np.ndarray) -> float:
        p = np.clip(ndtr(theta[0] + math.exp(theta[1]) * logx), 1e-12, 1 - 1e-12)
        return -float(np.sum(events * np.log(p) + (trials - events) * np.log1p(-p)))

    rate = np.clip((events + 0.5) / (trials + 1.0), 1e-3, 1 - 1e-3)
    slope, intercept = np.polyfit(logx, ndtri(rate), 1) if np.ptp(logx) > 0 else (1.0, 0.0)
    start = np.array([intercept, math.log(max(slope, 0.05))])
    best = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    return float(best.x[0]), float(math.exp(best.x[1]))


def solve(curve: tuple[float, float], level: float) -> float:
    """x with Φ(a + b·ln x) = level."""
    a, b = curve
    return float(math.exp((ndtri(level) - a) / b))


def normal_guess(scenario: Scenario, target: Target) -> float | None:
    """Closed-form total N for a comparison of means (normal approximation, 1:1 for the two arms compared,
    inflated for dropout), as the search's first centre; None when it does not apply."""
    if target.kind == "duration" or scenario.primary_endpoint.measure == "responder":
        return None
    from trialsim.engine.cohort import World

    names = [arm.name for arm in scenario.arms]
    world = World.of(scenario)
    effect = world.arms[names.index(target.comparison)].effect_total
    if effect <= 0:
        return None
    z = ndtri(0.975) + ndtri(target.level)
    per_arm = 2 * (z * scenario.outcome.sd_change / effect) ** 2 / (1 - max(scenario.dropout_fractions()))
    return per_arm * len(scenario.arms)


class _Space:
    """The searched quantity: how to set it in a scenario and its resolution (whole allocation blocks for N)."""

    def __init__(self, scenario: Scenario, search: str, sample_size: int) -> None:
        self.scenario, self.search, self.sample_size = scenario, search, sample_size
        recruitment = scenario.recruitment
        self.step = {
            "sample_size": recruitment.block_size or 2 * sum(scenario.ratio),
            "sites": 1,
            "rate": recruitment.rate_per_site_per_week / 20,
        }[search]

    def round_up(self, x: float) -> float:
        value = math.ceil(x / self.step - 1e-9) * self.step
        return float(max(value, self.step)) if self.search == "rate" else float(max(int(value), self.step))

    def lowest(self) -> float:
        return {"sample_size": max(4, self.step), "sites": 1, "rate": self.step}[self.search]

    def scenario_at(self, values: list[float]) -> list[Scenario]:
        """Scenarios at these values: one with a list of sample sizes for N (one run, common random numbers),
        one per value otherwise (same seeds, so also common random numbers)."""
        if self.search == "sample_size":
            return [self.scenario.model_copy(update={"sample_size": sorted({int(v) for v in values})})]
        out = []
        for v in values:
            field_name = "sites" if self.search == "sites" else "rate_per_site_per_week"
            recruitment = self.scenario.recruitment.model_copy(update={field_name: int(v) if self.search == "sites"
                                                                       else float(v)})
            out.append(self.scenario.model_copy(update={"recruitment": recruitment,
                                                        "sample_size": self.sample_size}))
        return out

    def value_of(self, scenario: Scenario, table: pd.DataFrame) -> pd.Series:
        if self.search == "sample_size":
            return table["sample_size"].astype(float)
        value = scenario.recruitment.sites if self.search == "sites" else scenario.recruitment.rate_per_site_per_week
        return pd.Series(float(value), index=table.index)


def find_size(
    scenario: Scenario,
    plan: AnalysisPlan,
    target: Target,
    *,
    search: str = "sample_size",
    seed: int = 0,
    workers: int | None = None,
    maximum: float | None = None,
    sample_size: int | None = None,
    spread: int = 6,
    spread_trials: int = 200,
    refine_trials: int = 400,
    verify_trials: int = 2000,
    max_verify_trials: int = 8000,
    progress: Callable[[int], None] | None = None,
) -> SizeResult:
    """The smallest ``search`` value (total N, sites, or rate per site per week) whose metric reaches ``target``
    with 95% Monte Carlo confidence (see the module docstring). ``maximum`` caps the search; ``sample_size`` is
    the N used when searching sites or rate (default: the scenario's largest)."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}")
    assurance = target.kind == "assurance"
    base = scenario.model_copy(update={"assurance": assurance})
    space = _Space(base, search, sample_size or max(scenario.sample_sizes))
    current = {"sample_size": max(scenario.sample_sizes), "sites": scenario.recruitment.sites,
               "rate": scenario.recruitment.rate_per_site_per_week}[search]
    guess = (normal_guess(base, target) if search == "sample_size" else None) or float(current)
    cap = maximum or {"sample_size": 100_000.0, "sites": 2000.0, "rate": 1000.0}[search]
    rows: list[pd.DataFrame] = []
    spent = 0

    def simulate_at(values: list[float], trials: int, run_seed: int) -> pd.DataFrame:
        nonlocal spent
        frames = []
        for sc in space.scenario_at(values):
            table, _ = run_trials(sc, plan, trials, run_seed, workers=workers, progress=progress)
            spent += len(table)  # every simulated trial counts (an assurance run also simulates the point effects)
            if assurance:
                table = table[table["effect_mode"] == "assurance"]
            else:
                table = table[table["effect_mode"] == "point"]
            frames.append(table.assign(x=space.value_of(sc, table), event=target.event(table)))
        return pd.concat(frames, ignore_index=True)

    def fit() -> tuple[float, float]:
        data = pd.concat(rows, ignore_index=True).groupby("x")["event"].agg(["sum", "count"])
        return fit_probit(data.index.to_numpy(), data["sum"].to_numpy(), data["count"].to_numpy())

    def spread_around(centre: float, width: float) -> list[float]:
        low, high = max(space.lowest(), centre / width), min(cap, centre * width)
        return sorted({space.round_up(v) for v in np.geomspace(low, high, spread)})

    # 1-2. Spread and fit, moving the spread until the solution lies inside it.
    centre = min(max(guess, space.lowest()), cap)
    for _ in range(6):
        values = spread_around(centre, 2.0)
        rows.append(simulate_at(values, spread_trials, seed))
        curve = fit()
        estimate = solve(curve, target.level)
        if values[0] <= estimate <= values[-1] or (estimate > cap and values[-1] >= cap):
            break
        centre = min(max(estimate, space.lowest()), cap)
    if estimate > cap:
        raise ValueError(f"the target is not reached below the maximum {cap:g} (fitted {search} {estimate:,.0f})")
    # 3. Refine around the fitted value.
    rows.append(simulate_at(spread_around(estimate, 1.25), refine_trials, seed))
    curve = fit()
    # 4. Verify with fresh trials (another seed), aiming where the fitted metric exceeds the target by what the
    # verification can resolve (≈ 2 of its MCSE); a failed check refits with its trials and moves up.
    trials, notes = verify_trials, []
    candidate = space.lowest()
    for attempt in range(12):
        margin = 2.0 * math.sqrt(target.level * (1 - target.level) / trials)
        aim = space.round_up(min(max(solve(curve, min(target.level + margin, (1 + target.level) / 2)),
                                     space.lowest()), cap))
        candidate = aim if attempt == 0 else max(aim, space.round_up(candidate + space.step))
        if candidate > cap:
            raise ValueError(f"the target is not reached with confidence below the maximum {cap:g}")
        verify_seed = seed + 1 + attempt
        table = simulate_at([candidate], trials, verify_seed)
        events = table["event"].to_numpy()
        metric = float(events.mean())
        mcse = math.sqrt(max(metric * (1 - metric), 1e-12) / len(events))
        if metric - Z_ONE_SIDED_95 * mcse >= target.level:
            break
        notes.append(f"{search} {candidate:g}: {metric:.3f} ± {mcse:.3f} after {len(events)} trials; moved up")
        rows.append(table)
        curve = fit()
        trials = min(2 * trials, max_verify_trials)
    else:
        raise ValueError(f"the search did not settle: {notes[-1]}")
    points = (
        pd.concat(rows, ignore_index=True).groupby("x")["event"].agg(["sum", "count"]).reset_index()
    )
    span = max(p for p in points["x"]) - min(p for p in points["x"])
    return SizeResult(
        search=search,
        value=candidate,
        target=target,
        metric=metric,
        metric_mcse=mcse,
        verification_trials=len(events),
        curve=curve,
        points=[{"x": float(r.x), "trials": int(r["count"]), "events": int(r["sum"]),
                 "metric": float(r["sum"] / r["count"])} for _, r in points.iterrows()],
        trials_spent=spent,
        grid_trials=int(span / space.step + 1) * len(events),
        expected_n=float(table["n_randomised"].mean()),
        expected_completers=float(table["n_completed"].mean()),
        duration_weeks={"median": float(table["duration_weeks"].median()),
                        "p90": float(table["duration_weeks"].quantile(0.9))},
        seed=seed,
        notes=notes,
        verification=_verification_results(space.scenario_at([candidate])[0], plan, table, verify_seed),
    )


def _verification_results(scenario: Scenario, plan: AnalysisPlan, table: pd.DataFrame, seed: int):
    """The accepted verification run as ordinary results (a run directory: summary, trials, manifest)."""
    from trialsim.results import SimulationResults

    if scenario.sample_size != table["sample_size"].iloc[0] and isinstance(scenario.sample_size, list):
        scenario = scenario.model_copy(update={"sample_size": int(table["sample_size"].iloc[0])})
    trials = table.drop(columns=["x", "event"]).assign(design_point=0).reset_index(drop=True)
    return SimulationResults.build(scenario, plan, trials, seed, int(trials["trial"].nunique()))
