"""Pydantic models of an analysis-plan file (a statistical analysis plan, SAP): model, priors, decision rule.

Effects are in PANSS points, positive = improvement (control change minus arm change).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trialsim.spec.base import ConsistencyError, Strict


class EffectPrior(Strict):
    """Prior on each treatment effect (PANSS points).

    ``sd: null`` is a flat (improper uniform) prior. For the conjugate engine the prior is normal–inverse-gamma:
    effect | σ² ~ N(mean, (sd·σ/sd_reference)²), i.e. ``sd`` is the prior SD when the residual SD σ equals
    ``sd_reference`` (PANSS points); a skeptical prior is ``mean: 0`` with a small ``sd``.
    """

    mean: float = Field(0.0, ge=-100, le=100)
    sd: float | None = Field(None, gt=0, le=1000)
    sd_reference: float = Field(15.0, gt=0, le=100)


class ResidualPrior(Strict):
    """Prior on the residual variance σ² (PANSS points²).

    ``jeffreys`` is p(σ²) ∝ 1/σ²; with a flat effect prior the posterior of the effect is then exactly the
    frequentist t distribution. ``inverse_gamma`` uses ``shape`` and ``scale``.
    """

    kind: Literal["jeffreys", "inverse_gamma"] = "jeffreys"
    shape: float = Field(0.001, gt=0)
    scale: float = Field(0.001, gt=0)


class ResponsePrior(Strict):
    """Beta(alpha, beta) prior on each arm's response probability (responder model)."""

    alpha: float = Field(1.0, gt=0, le=1000)
    beta: float = Field(1.0, gt=0, le=1000)


class Priors(Strict):
    """Priors of the model: ANCOVA effects and residual variance (other coefficients flat); responder rates."""

    effect: EffectPrior = EffectPrior()
    residual: ResidualPrior = ResidualPrior()
    response: ResponsePrior = ResponsePrior()


class DecisionRule(Strict):
    """Success when P(effect > margin | data) ≥ threshold.

    The margin is in PANSS points for ``ancova`` and a difference in response probability for ``responder``.
    """

    margin: float = Field(0.0, ge=-100, le=100)
    threshold: float = Field(0.975, gt=0.5, lt=1.0)


class AnalysisPlan(Strict):
    """A statistical analysis plan: which model, with which priors, and which decision rule."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    model: Literal["ancova", "responder"] = Field(
        "ancova",
        description="ancova: change from baseline on arm + baseline; responder: beta-binomial on response rates",
    )
    engine: Literal["conjugate"] = "conjugate"
    population: Literal["completers"] = Field(
        "completers", description="which patients enter the analysis; completers = primary endpoint observed"
    )
    priors: Priors = Priors()
    decision: DecisionRule = DecisionRule()
    ci_prob: float = Field(0.95, gt=0.5, lt=1.0, description="probability of the reported credible interval")
    posterior_draws: int = Field(
        4000, ge=100, le=1_000_000, description="Monte Carlo draws per trial where a posterior has no closed form"
    )

    @model_validator(mode="after")
    def _margin_scale(self) -> AnalysisPlan:
        if self.model == "responder" and not -1 < self.decision.margin < 1:
            raise ConsistencyError(
                [("decision.margin", self.decision.margin, "for a responder model the margin is a risk difference in (−1, 1)")]
            )
        return self
