"""Pydantic models of the evidence library file (``interventions.yaml``).

Each effect is stored *as printed* in its source, in its printed unit (an SMD, or PANSS points for a mean
difference), together with the source's sign convention; :attr:`Effect.smd` and :attr:`Effect.ci95` return it in
the project convention, where a positive standardised mean difference (SMD) means improvement (greater PANSS
reduction than the control). A mean difference is converted with one documented SD of change per outcome
(:data:`POINTS_SD_CHANGE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from trialsim.exceptions import Problem, ScenarioError

Certainty = Literal["high", "moderate", "low", "very_low", "not_graded"]
Status = Literal["verified", "derived", "assumption"]
SignConvention = Literal["benefit_positive", "reduction_negative"]
Outcome = Literal["panss_total", "panss_positive", "panss_negative"]
Measure = Literal["hedges_g", "cohens_d", "smd", "mean_difference"]
Background = Literal["clozapine", "trs_not_on_clozapine", "not_trs"]
Control = Literal["placebo", "sham", "treatment_as_usual", "standard_dose_antipsychotic", "other_antipsychotic"]
MechanismFamily = Literal[
    "clozapine_augmentation",
    "muscarinic_agonist",
    "neuromodulation",
    "high_dose_antipsychotic",
    "glycine_site_agonist",
    "psychotherapy",
    "antidepressant_augmentation",
    "clozapine",
    "control",
]

CERTAINTIES: tuple[str, ...] = get_args(Certainty)
STATUSES: tuple[str, ...] = get_args(Status)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
CONTROLS: tuple[str, ...] = get_args(Control)
MECHANISM_FAMILIES: tuple[str, ...] = get_args(MechanismFamily)
#: Populations of the evidence and background treatments of a trial, ordered so that the number of steps between
#: two of them is the difference of their positions: on clozapine, TRS not on clozapine, not TRS.
BACKGROUNDS: tuple[str, ...] = get_args(Background)

#: SD of change (PANSS points) that turns a printed mean difference into an SMD, one per outcome (derived).
#: Total 15: the pooled EMERGENT difference and d give 9.9 / 0.65 = 15.2 (Kaul et al., npj Schizophr 2024),
#: EMERGENT-2's interval 17.0 (Kaul et al., Lancet 2024), FOCUS's 12.5 (Morrison et al., Lancet Psychiatry 2018);
#: 15 is the middle of that range.
#: Positive 4.8 and negative 4.3: the pooled EMERGENT subscale differences and d, 3.2 / 0.67 and 1.7 / 0.40
#: (Kaul et al. 2024). Small trials with atypically small SDs (4.0 in Lin et al. 2018) would inflate an SMD.
POINTS_SD_CHANGE: dict[str, float] = {"panss_total": 15.0, "panss_positive": 4.8, "panss_negative": 4.3}
#: Largest |SMD| the library accepts for an SMD measure: 1.7 x the largest drug-placebo SMD for overall symptoms in
#: schizophrenia (clozapine 0.88, Leucht et al., Lancet 2013;382:951-962). A larger printed value is almost
#: certainly a difference in PANSS points labelled as an effect size: store it as a mean_difference.
MAX_PLAUSIBLE_SMD = 1.5

SIGN_OF_CONVENTION: dict[str, int] = {"benefit_positive": 1, "reduction_negative": -1}
_CONVERSION_RULES = {
    "benefit_positive": "printed benefit-positive (positive = improvement): project value = +printed, CI kept",
    "reduction_negative": (
        "printed reduction-negative (negative = improvement): project value = -printed, CI negated and swapped"
    ),
}

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Interval = tuple[float, float]


def se_from_ci95(interval: Interval) -> float:
    """Standard error implied by a 95% interval: (upper - lower) / (2 * 1.96)."""
    return (interval[1] - interval[0]) / (2 * 1.96)


def _check_interval(interval: Interval | None, what: str) -> None:
    if interval is not None and not interval[0] <= interval[1]:
        raise ValueError(f"{what} {list(interval)} must be [lower, upper] with lower <= upper")


class StrictModel(BaseModel):
    """Frozen model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Effect(StrictModel):
    """One effect estimate against one control, as printed in its source.

    Attributes:
        outcome: the outcome it measures (filled in from its key in ``effects``).
        measure: hedges_g, cohens_d or smd (SMD scale), or mean_difference (PANSS points).
        as_printed: the value as printed (its measure's unit, source sign convention).
        ci95_as_printed: the printed 95% interval, [lower, upper], source sign convention.
        se: printed standard error, in the measure's unit (sign-free), if any.
        source_sign_convention: benefit_positive or reduction_negative.
        conversion: how the printed value maps to the project convention (a default text is filled in).
        certainty: GRADE certainty of this estimate; ``None`` means the entry's certainty.
        status: verified (verbatim), derived (computed from verified numbers) or assumption.
        source: citation when it differs from the entry's.
    """

    outcome: Outcome
    measure: Measure = "smd"
    as_printed: float
    ci95_as_printed: Interval | None = None
    se: float | None = Field(default=None, gt=0)
    source_sign_convention: SignConvention
    conversion: Text
    certainty: Certainty | None = None
    status: Status
    source: Text | None = None
    note: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_conversion(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("conversion"):
            rule = _CONVERSION_RULES.get(data.get("source_sign_convention"))  # type: ignore[arg-type]
            if rule is not None:
                return {**data, "conversion": rule}
        return data

    @model_validator(mode="after")
    def _check(self) -> Effect:
        _check_interval(self.ci95_as_printed, "ci95_as_printed")
        if self.ci95_as_printed is not None and not (
            self.ci95_as_printed[0] <= self.as_printed <= self.ci95_as_printed[1]
        ):
            raise ValueError(f"as_printed {self.as_printed} lies outside ci95_as_printed {list(self.ci95_as_printed)}")
        if self.unit == "SMD" and abs(self.as_printed) > MAX_PLAUSIBLE_SMD:
            raise ValueError(
                f"{self.measure} {self.as_printed} exceeds the plausible |SMD| <= {MAX_PLAUSIBLE_SMD}; if the source "
                "printed a difference in PANSS points, give measure: mean_difference"
            )
        return self

    @property
    def unit(self) -> str:
        """``"points"`` for a mean difference (PANSS points), else ``"SMD"``."""
        return "points" if self.measure == "mean_difference" else "SMD"

    @property
    def sd_change(self) -> float | None:
        """The SD of change that converts a mean difference to an SMD (:data:`POINTS_SD_CHANGE`); None for SMDs."""
        return POINTS_SD_CHANGE[self.outcome] if self.unit == "points" else None

    @property
    def value(self) -> float:
        """Effect in the project convention (positive = improvement), in its own unit (:attr:`unit`)."""
        return SIGN_OF_CONVENTION[self.source_sign_convention] * self.as_printed

    @property
    def smd(self) -> float:
        """Effect in the project convention as an SMD (a mean difference divided by :attr:`sd_change`)."""
        return self.value / (self.sd_change or 1.0)

    @property
    def interval(self) -> Interval | None:
        """95% interval in the project convention, in its own unit (:attr:`unit`), ordered [lower, upper]."""
        if self.ci95_as_printed is None:
            return None
        lo, hi = sorted(SIGN_OF_CONVENTION[self.source_sign_convention] * v for v in self.ci95_as_printed)
        return (lo, hi)

    @property
    def ci95(self) -> Interval | None:
        """95% interval in the project convention (SMD), ordered [lower, upper]."""
        if self.interval is None:
            return None
        return (self.interval[0] / (self.sd_change or 1.0), self.interval[1] / (self.sd_change or 1.0))

    @property
    def standard_error(self) -> float | None:
        """Printed SE, else the SE implied by the 95% interval, (upper - lower) / (2 * 1.96); SMD."""
        if self.se is not None:
            return self.se / (self.sd_change or 1.0)
        return None if self.ci95_as_printed is None else se_from_ci95(self.ci95_as_printed) / (self.sd_change or 1.0)


class DesignDefault(StrictModel):
    """A design value of the true effect that replaces the recorded estimate (project convention, SMD).

    Used where the estimate does not fit a TRS design (acute evidence, benefit lost in high-quality studies) or
    where there is none; ``basis`` says why and how, ``source`` where its numbers come from (or ASSUMPTION).
    """

    mean: float = Field(ge=-MAX_PLAUSIBLE_SMD, le=MAX_PLAUSIBLE_SMD)
    ci95: Interval | None = None
    status: Status
    basis: Text
    source: Text

    @model_validator(mode="after")
    def _check(self) -> DesignDefault:
        _check_interval(self.ci95, "ci95")
        return self

    @property
    def standard_error(self) -> float | None:
        """SE implied by ``ci95`` (SMD), or ``None`` without an interval."""
        return None if self.ci95 is None else se_from_ci95(self.ci95)


def _outcomes_from_keys(data: Any) -> Any:
    """Fill in each effect's ``outcome`` from its key in ``effects`` (like an entry's name from its key)."""
    effects = data.get("effects") if isinstance(data, dict) else None
    if isinstance(effects, dict):
        named = {
            key: {"outcome": key, **value} if isinstance(value, dict) and "outcome" not in value else value
            for key, value in effects.items()
        }
        data = {**data, "effects": named}
    return data


def _check_outcome_keys(effects: dict[str, Effect]) -> None:
    wrong = [f"{key} (outcome: {effect.outcome})" for key, effect in effects.items() if effect.outcome != key]
    if wrong:
        raise ValueError(f"an effect's outcome must equal its key: {', '.join(wrong)}")


class ControlContext(StrictModel):
    """The evidence and design default of an intervention against one kind of control."""

    effects: dict[Outcome, Effect] = {}
    design_default: dict[Outcome, DesignDefault] = {}
    note: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _outcome_from_key(cls, data: Any) -> Any:
        return _outcomes_from_keys(data)

    @model_validator(mode="after")
    def _check(self) -> ControlContext:
        _check_outcome_keys(self.effects)
        return self


class AdverseEvent(StrictModel):
    """Adverse-event frequency: proportion of patients (or mean change in ``units``), active vs control."""

    active: float = Field(ge=0)
    control: float | None = Field(default=None, ge=0)
    units: Literal["proportion", "kg"] = "proportion"
    status: Status
    source: Text
    note: Text | None = None

    @model_validator(mode="after")
    def _check(self) -> AdverseEvent:
        if self.units == "proportion" and max(self.active, self.control or 0.0) > 1:
            raise ValueError("a proportion must lie in [0, 1]")
        return self


class Intervention(StrictModel):
    """One intervention of the library with its evidence, certainty, source and design default.

    Effects are either given directly (``effects``/``design_default``, against ``comparator``) or, for
    interventions whose effect depends on the control (ECT: open treatment-as-usual vs sham), per control
    in ``effects_by_control``; ``comparator`` then names the default context.

    ``background`` is the population the total-symptom evidence comes from (patients on clozapine, TRS not on
    clozapine, or not TRS); every active entry gives it, a control entry does not. ``population`` describes it.
    """

    name: Name
    label: Text
    mechanism_family: MechanismFamily
    certainty: Certainty
    status: Status
    source: Text
    population: Text
    background: Background | None = None
    n_studies: int | None = Field(default=None, gt=0)
    n_patients: int | None = Field(default=None, gt=0)
    comparator: Control = "placebo"
    effects: dict[Outcome, Effect] = {}
    design_default: dict[Outcome, DesignDefault] = {}
    effects_by_control: dict[Control, ControlContext] = {}
    adverse_events: dict[Name, AdverseEvent] = {}
    ae_discontinuation: AdverseEvent | None = None
    note: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _outcome_from_key(cls, data: Any) -> Any:
        return _outcomes_from_keys(data)

    @model_validator(mode="after")
    def _check(self) -> Intervention:
        _check_outcome_keys(self.effects)
        if self.is_control:
            if self.effects or self.design_default or self.effects_by_control or self.comparator != self.name:
                raise ValueError(
                    "a control entry has effect 0 by definition: give no effects, design_default or "
                    f"effects_by_control, and set comparator to its own name ({self.name!r})"
                )
            if self.background is not None:
                raise ValueError("a control entry has no evidence population: remove background")
        elif self.background is None:
            raise ValueError(f"give background, the population of the evidence: one of {', '.join(BACKGROUNDS)}")
        elif self.effects_by_control:
            if self.effects or self.design_default:
                raise ValueError("give either effects/design_default or effects_by_control, not both")
            if self.comparator not in self.effects_by_control:
                raise ValueError(
                    f"comparator {self.comparator!r} must be one of the effects_by_control keys "
                    f"{sorted(self.effects_by_control)}"
                )
        return self

    @property
    def is_control(self) -> bool:
        """True for placebo, sham and treatment-as-usual (effect 0 by definition)."""
        return self.mechanism_family == "control"

    @property
    def contexts(self) -> dict[str, ControlContext]:
        """Evidence per control context; the default context is ``comparator``."""
        if self.effects_by_control:
            return dict(self.effects_by_control)
        return {self.comparator: ControlContext(effects=self.effects, design_default=self.design_default)}

    def context(self, control: str | None = None) -> ControlContext:
        """The evidence against ``control`` (default: ``comparator``); error listing the known controls."""
        key = self.comparator if control is None else control
        contexts = self.contexts
        if key not in contexts:
            raise self._missing("control", key, "no evidence against this control", contexts)
        return contexts[key]

    def effect(self, outcome: str = "panss_total", control: str | None = None) -> Effect:
        """The effect on ``outcome`` against ``control`` (project convention via ``.smd``)."""
        effects = self.context(control).effects
        if outcome not in effects:
            raise self._missing("outcome", outcome, "no effect recorded for this outcome", effects)
        return effects[outcome]

    def _missing(self, field: str, value: object, what: str, available: Iterable[str]) -> ScenarioError:
        names = ", ".join(sorted(available)) or "none"
        return ScenarioError(
            Problem(
                file=f"intervention {self.name!r}",
                field=field,
                value=value,
                has_value=True,
                message=f"{what}; available: {names}",
            )
        )
