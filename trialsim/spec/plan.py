"""Pydantic models of an analysis-plan file (a statistical analysis plan, SAP): model, engine, priors, missing
data, decision rule.

Effects are in PANSS points, positive = improvement (control change minus arm change); for responder models a
risk difference (conjugate) or a log odds ratio (nuts).

Supported combinations (anything else is rejected when the plan is loaded):

=============  ==========================================  ===============================================
engine         models                                      missing data
=============  ==========================================  ===============================================
conjugate      ancova, responder                           completers, locf, bocf (ancova); completers
nuts           ancova, longitudinal, responder             completers/locf/bocf (ancova); observed
                                                           (longitudinal, MAR); completers (responder)
frequentist    ancova (t-test), longitudinal (MMRM)        as for nuts
laplace        longitudinal (approximate Bayesian MMRM)    observed (MAR)
=============  ==========================================  ===============================================

Longitudinal covariances (``covariance``): nuts — random_intercept, ar1, unstructured; frequentist and laplace —
random_intercept (= compound_symmetry), ar1, unstructured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trialsim.spec.adaptive import Adaptation
from trialsim.spec.base import ConsistencyError, Strict

Model = Literal["ancova", "longitudinal", "responder"]
Engine = Literal["conjugate", "nuts", "frequentist", "laplace"]
MissingData = Literal["completers", "observed", "locf", "bocf"]
Covariance = Literal["random_intercept", "ar1", "unstructured", "compound_symmetry"]

ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("conjugate", "ancova"): ("completers", "locf", "bocf"),
    ("conjugate", "responder"): ("completers",),
    ("nuts", "ancova"): ("completers", "locf", "bocf"),
    ("nuts", "longitudinal"): ("observed",),
    ("nuts", "responder"): ("completers",),
    ("frequentist", "ancova"): ("completers", "locf", "bocf"),
    ("frequentist", "longitudinal"): ("observed",),
    ("laplace", "longitudinal"): ("observed",),
}
#: Each engine in words, for outputs and the plain-language explanation of a plan.
ENGINE_DESCRIPTIONS: dict[str, str] = {
    "conjugate": "exact conjugate posterior",
    "nuts": "PyMC/nutpie NUTS",
    "frequentist": "frequentist",
    "laplace": "Laplace approximation, variance parameters integrated by importance sampling",
}
COVARIANCES: dict[str, tuple[str, ...]] = {
    "nuts": ("random_intercept", "ar1", "unstructured"),
    "frequentist": ("random_intercept", "compound_symmetry", "ar1", "unstructured"),
    "laplace": ("random_intercept", "compound_symmetry", "ar1", "unstructured"),
}


class LibraryPrior(Strict):
    """An evidence-based prior: the design prior of a library intervention (SMD) times ``sd_reference``."""

    intervention: str = Field(min_length=1)
    versus: Literal["placebo", "sham", "treatment_as_usual"] | None = None


class RobustMixture(Strict):
    """Robust mixture: (1 − weight) × the informative effect prior + weight × a vague N(mean, vague_sd²) component
    (conjugate engine). The data move the weight towards the component that predicts them better."""

    weight: float = Field(0.2, gt=0, lt=1)
    vague_sd: float = Field(50.0, ge=0.001, le=1000, description="PANSS points, at least 0.001 (less is a point mass)")


class EffectPrior(Strict):
    """Prior on each treatment effect (PANSS points).

    ``sd: null`` is a flat prior (vague). For the conjugate engine (and nuts ancova, which uses the same form) the
    prior is normal–inverse-gamma: effect | σ² ~ N(mean, (sd·σ/sd_reference)²), i.e. ``sd`` is the prior SD when
    the residual SD σ equals ``sd_reference``; a skeptical prior is ``mean: 0`` with a small ``sd``.
    ``from_library`` replaces mean and sd by an intervention's design prior (SMD × sd_reference).
    """

    mean: float = Field(0.0, ge=-100, le=100)
    sd: float | None = Field(None, ge=0.001, le=1000, description="PANSS points, at least 0.001 (less is a point mass)")
    sd_reference: float = Field(15.0, gt=0, le=100)
    from_library: LibraryPrior | None = None
    robust: RobustMixture | None = None


class ResidualPrior(Strict):
    """Prior on the residual variance σ² (PANSS points²).

    ``jeffreys`` is p(σ²) ∝ 1/σ²; with a flat effect prior the posterior of the effect is then exactly the
    frequentist t distribution. ``inverse_gamma`` uses ``shape`` and ``scale``.
    """

    kind: Literal["jeffreys", "inverse_gamma"] = "jeffreys"
    shape: float = Field(0.001, gt=0)
    scale: float = Field(0.001, gt=0)


class ResponsePrior(Strict):
    """Beta(alpha, beta) prior on each arm's response probability (conjugate responder model)."""

    alpha: float = Field(1.0, gt=0, le=1000)
    beta: float = Field(1.0, gt=0, le=1000)


class Priors(Strict):
    """Priors of the model: ANCOVA effects and residual variance (other coefficients flat); responder rates."""

    effect: EffectPrior = EffectPrior()
    residual: ResidualPrior = ResidualPrior()
    response: ResponsePrior = ResponsePrior()


class DecisionRule(Strict):
    """Success when P(effect > margin | data) ≥ threshold — and, for a dual criterion, also
    P(effect > clinical_margin | data) ≥ clinical_threshold (a clinically relevant benefit).

    Frequentist plans: success when the one-sided p-value for effect > margin is ≤ 1 − threshold; with several
    active arms against one control, ``multiplicity`` adjusts the p-values: ``bonferroni`` (m·p), ``holm``
    (step-down, Holm 1979) or ``dunnett`` (the maximum of the correlated comparisons with a shared control,
    Dunnett 1955, normal approximation). Bayesian plans keep a family-wise error by their thresholds
    (``trialsim calibrate``).
    """

    margin: float = Field(0.0, ge=-100, le=100)
    threshold: float = Field(0.975, gt=0.5, lt=1.0)
    clinical_margin: float | None = Field(None, ge=-100, le=100)
    clinical_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    multiplicity: Literal["none", "bonferroni", "holm", "dunnett"] = "none"


class Sampler(Strict):
    """NUTS settings (nutpie), the diagnostics a fit must pass, and what a fit that fails them decides.

    ``failed_fit``: ``no_success`` (default) — a fit that failed its diagnostics never declares success (nor
    crosses an efficacy boundary at a look); ``keep`` — its decision stands as computed. Either way its estimate
    is left out of the mean estimate, bias, RMSE and coverage, and counted beside them. Applies to every per-trial
    engine (NUTS diagnostics, frequentist convergence).
    """

    draws: int = Field(1000, ge=10, le=100_000)
    tune: int = Field(1000, ge=10, le=100_000)
    chains: int = Field(2, ge=1, le=16)
    rhat_max: float = Field(1.01, gt=1.0, le=2.0)
    ess_min: float = Field(400.0, ge=1)
    failed_fit: Literal["no_success", "keep"] = "no_success"


class AnalysisPlan(Strict):
    """A statistical analysis plan: which model, engine, priors, missing-data handling and decision rule."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    model: Model = Field("ancova", description="ancova | longitudinal (MMRM-like) | responder")
    engine: Engine = Field(
        "conjugate", description="conjugate (exact) | nuts (PyMC + nutpie) | frequentist | laplace (approximate)"
    )
    covariance: Covariance = Field("random_intercept", description="residual structure of the longitudinal model")
    missing_data: MissingData | None = Field(
        None, description="completers | observed (all visits, MAR) | locf | bocf; default per model"
    )
    priors: Priors = Priors()
    decision: DecisionRule = DecisionRule()
    interim: Adaptation | None = Field(None, description="decisions at the design's interim looks")
    sampler: Sampler = Sampler()
    ci_prob: float = Field(0.95, gt=0.5, lt=1.0, description="probability of the reported credible interval")
    posterior_draws: int = Field(
        4000, ge=100, le=1_000_000, description="Monte Carlo draws per trial where a posterior has no closed form"
    )

    @property
    def missing(self) -> str:
        """The missing-data handling in force (explicit, or the model's default)."""
        if self.missing_data is not None:
            return self.missing_data
        return "observed" if self.model == "longitudinal" else "completers"

    @model_validator(mode="after")
    def _consistency(self) -> AnalysisPlan:
        problems: list[tuple[str, object, str]] = []
        allowed = ALLOWED.get((self.engine, self.model))
        if allowed is None:
            models = sorted(m for e, m in ALLOWED if e == self.engine)
            problems.append(("model", self.model, f"engine '{self.engine}' supports the models {models}"))
        elif self.missing not in allowed:
            problems.append(("missing_data", self.missing, f"{self.engine} {self.model} supports {list(allowed)}"))
        if allowed is not None and self.model == "longitudinal" and self.covariance not in COVARIANCES[self.engine]:
            problems.append(
                ("covariance", self.covariance, f"engine '{self.engine}' supports {list(COVARIANCES[self.engine])}")
            )
        if self.model == "responder" and self.engine == "conjugate":
            for field, value in (
                ("decision.margin", self.decision.margin),
                ("decision.clinical_margin", self.decision.clinical_margin),
            ):
                if value is not None and not -1 < value < 1:
                    problems.append(
                        (field, value, "for a conjugate responder model the margin is a risk difference in (−1, 1)")
                    )
        if self.decision.multiplicity != "none" and self.engine != "frequentist":
            problems.append(
                ("decision.multiplicity", self.decision.multiplicity,
                 "p-value adjustments apply to frequentist plans; calibrate a Bayesian plan's thresholds instead "
                 "(trialsim calibrate)")
            )
        effect = self.priors.effect
        if effect.robust is not None and self.engine != "conjugate":
            problems.append(
                ("priors.effect.robust", "…", "robust mixture priors are supported by the conjugate engine")
            )
        if effect.robust is not None and effect.sd is None and effect.from_library is None:
            problems.append(
                ("priors.effect.robust", "…", "a robust mixture needs an informative component (sd or from_library)")
            )
        if effect.from_library is not None and effect.sd is not None:
            problems.append(
                (
                    "priors.effect.from_library",
                    effect.from_library.intervention,
                    "give either sd (with mean) or from_library, not both",
                )
            )
        if problems:
            raise ConsistencyError(problems)
        return self
