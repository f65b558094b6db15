"""Decisions at interim looks (analysis-plan file): efficacy and futility stopping, arm dropping, response-adaptive
randomisation.

When the looks happen is part of the design (``interim`` in the scenario, :mod:`trialsim.spec.looks`); what is
decided at each look is part of the analysis plan. Per-look values are a single number (every look) or a list with
one value per interim look. Probabilities refer to the plan's posterior of each active-vs-control effect (for
frequentist plans, "P(effect > margin)" is 1 − the one-sided p-value, so thresholds map to nominal levels).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trialsim.spec.base import ConsistencyError, Strict

PerLook = float | list[float]


def per_look(value: PerLook | None, looks: int) -> list[float] | None:
    """A per-look setting expanded to one value per interim look (None stays None)."""
    if value is None:
        return None
    return [float(value)] * looks if isinstance(value, float | int) else [float(v) for v in value]


def _lengths(values: dict[str, PerLook | None]) -> list[tuple[str, object, str]]:
    """Problems of per-look lists: each value a probability in [0, 1]."""
    problems = []
    for name, value in values.items():
        items = [] if value is None else [value] if isinstance(value, float | int) else value
        if isinstance(value, list) and not value:
            problems.append((name, value, "give one value per interim look (or a single value for every look)"))
        for v in items:
            if not 0.0 <= v <= 1.0:
                problems.append((name, value, "each value must be a probability in [0, 1]"))
                break
    return problems


class Spending(Strict):
    """Efficacy boundaries from an alpha-spending function (Lan & DeMets 1983), computed for the planned
    information fractions: z_k critical values, used as thresholds Φ(z_k) on P(effect > margin) (Bayesian plans)
    or on 1 − p (frequentist plans); the last one replaces ``decision.threshold`` at the final analysis.

    ``function``: ``obrien_fleming`` (Lan–DeMets O'Brien–Fleming type), ``pocock`` (Lan–DeMets Pocock type),
    ``hsd`` (Hwang, Shih & DeCani 1990, parameter ``gamma``). ``information_fractions``: one per analysis
    (interims and final, increasing, last 1); default: from ``completed`` triggers, ``at`` / the expected number of
    completers at the final analysis.
    """

    function: Literal["obrien_fleming", "pocock", "hsd"] = "obrien_fleming"
    alpha: float = Field(0.025, gt=0.0, lt=0.5, description="one-sided")
    gamma: float | None = Field(None, ge=-40, le=40)
    information_fractions: list[float] | None = Field(None, min_length=2, max_length=21)

    @model_validator(mode="after")
    def _consistent(self) -> Spending:
        problems = []
        if self.function == "hsd" and self.gamma is None:
            problems.append(("gamma", None, "the Hwang–Shih–DeCani function needs gamma (e.g. -4)"))
        if self.function != "hsd" and self.gamma is not None:
            problems.append(("gamma", self.gamma, f"gamma applies to the hsd function only, not {self.function}"))
        fractions = self.information_fractions
        if fractions is not None:
            if any(b <= a for a, b in zip(fractions, fractions[1:])) or fractions[0] <= 0 or fractions[-1] != 1.0:
                problems.append(("information_fractions", fractions, "must increase from above 0 to exactly 1"))
        if problems:
            raise ConsistencyError(problems)
        return self


class Efficacy(Strict):
    """Stop for efficacy at interim look k when P(effect > decision.margin) ≥ threshold_k (for a multi-arm
    trial: an arm that crosses is declared successful; see ``Adaptation.stop_on_efficacy``). Give ``thresholds``
    or ``spending``."""

    thresholds: PerLook | None = None
    spending: Spending | None = None

    @model_validator(mode="after")
    def _one(self) -> Efficacy:
        problems = _lengths({"thresholds": self.thresholds})
        if (self.thresholds is None) == (self.spending is None):
            problems.append(("thresholds", self.thresholds, "give either thresholds or spending"))
        if problems:
            raise ConsistencyError(problems)
        return self


class Futility(Strict):
    """Stop (or drop an arm) for futility at interim look k when any given rule fires:

    - ``thresholds``: P(effect > ``margin``) ≤ φ_k (``margin`` is δ_min, the smallest effect worth having);
    - ``predictive``: the predictive probability of success at the final analysis ≤ ψ_k (posterior predictive of the
      patients still to come, then the final decision rule; exact for the conjugate ANCOVA, simulated otherwise);
    - ``conditional_power``: conditional power under the current trend ≤ value (B-value formula, Lan & Wittes
      1988).
    """

    margin: float = Field(0.0, ge=-100, le=100, description="δ_min (PANSS points, or a risk difference)")
    thresholds: PerLook | None = None
    predictive: PerLook | None = None
    conditional_power: PerLook | None = None

    @model_validator(mode="after")
    def _some(self) -> Futility:
        rules = {"thresholds": self.thresholds, "predictive": self.predictive,
                 "conditional_power": self.conditional_power}
        problems = _lengths(rules)
        if all(v is None for v in rules.values()):
            problems.append(("thresholds", None, "give at least one of thresholds, predictive, conditional_power"))
        if problems:
            raise ConsistencyError(problems)
        return self


class ResponseAdaptive(Strict):
    """Response-adaptive randomisation after each look: active arm a gets a share ∝ P(a is the best arm)^power
    (Thall & Wathen 2007), at least ``min_allocation`` each; the control arm's share follows ``control``:
    ``match_best`` — equal to the largest active share; ``sqrt`` — √(active arms) times an average active share
    (Dunnett-optimal, the square-root rule); ``fixed`` — its initial share. The new shares apply to patients
    randomised after the decision, in newly formed permuted blocks of ``block_size`` per site."""

    power: float = Field(0.5, ge=0.0, le=5.0)
    min_allocation: float = Field(0.05, ge=0.0, lt=0.5)
    control: Literal["match_best", "sqrt", "fixed"] = "match_best"
    block_size: int = Field(20, ge=2, le=1000)


class Adaptation(Strict):
    """What is decided at interim looks. A trial stops for efficacy when an active arm crosses its efficacy
    threshold (``stop_on_efficacy: any``) or when every remaining active arm has (``all``); it stops for futility
    when every active arm has been dropped (with ``drop_arms``) or, with ``drop_arms: false``, when every active arm
    meets a futility rule. ``keep_best_only``: at the first look, keep only the active arm most likely to be best."""

    efficacy: Efficacy | None = None
    futility: Futility | None = None
    drop_arms: bool = True
    keep_best_only: bool = False
    stop_on_efficacy: Literal["any", "all"] = "any"
    response_adaptive: ResponseAdaptive | None = None

    @model_validator(mode="after")
    def _does_something(self) -> Adaptation:
        if self.efficacy is None and self.futility is None and self.response_adaptive is None and not (
            self.keep_best_only
        ):
            raise ValueError("interim rules must do something: give efficacy, futility, response_adaptive or "
                             "keep_best_only")
        return self

    def lists(self) -> dict[str, PerLook | None]:
        """Every per-look setting by its field path (to check lengths against the design's looks)."""
        out: dict[str, PerLook | None] = {}
        if self.efficacy is not None:
            out["interim.efficacy.thresholds"] = self.efficacy.thresholds
        if self.futility is not None:
            for name in ("thresholds", "predictive", "conditional_power"):
                out[f"interim.futility.{name}"] = getattr(self.futility, name)
        return out
