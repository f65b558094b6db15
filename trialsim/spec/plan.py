"""Pydantic models of an analysis-plan file (a statistical analysis plan, SAP): model, priors, decision rule.

Effects are in PANSS points, positive = improvement (control change minus arm change).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trialsim.spec.base import Strict


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


class Priors(Strict):
    """Priors of the model: the treatment effects and the residual variance (other coefficients are flat)."""

    effect: EffectPrior = EffectPrior()
    residual: ResidualPrior = ResidualPrior()


class DecisionRule(Strict):
    """Success when P(effect > margin | data) ≥ threshold (margin in PANSS points)."""

    margin: float = Field(0.0, ge=-100, le=100)
    threshold: float = Field(0.975, gt=0.5, lt=1.0)


class AnalysisPlan(Strict):
    """A statistical analysis plan: which model, with which priors, and which decision rule."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    model: Literal["ancova"] = "ancova"
    engine: Literal["conjugate"] = "conjugate"
    population: Literal["completers"] = Field(
        "completers", description="which patients enter the analysis; completers = primary endpoint observed"
    )
    priors: Priors = Priors()
    decision: DecisionRule = DecisionRule()
    ci_prob: float = Field(0.95, gt=0.5, lt=1.0, description="probability of the reported credible interval")
