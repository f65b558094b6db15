"""Resolve a scenario's arms against the evidence library into numbers the engine uses.

For each arm: true effects on PANSS total, positive and negative change (points, positive = improvement), the
design prior of the total effect (for assurance), adverse-event incidences and AE discontinuation by the primary
endpoint, and where each came from. Values given in the scenario win; otherwise they come from the arm's
``intervention`` entry:

- total effect: the mean of the library's design prior (:func:`trialsim.evidence.design_prior`: its design
  default where one exists, else the estimate, shrunk when the evidence is weak), times ``outcome.sd_change``;
- subscale effects: the library's design default for that subscale; else its recorded SMD scaled by the ratio of
  the total used here to the recorded total (acute evidence attenuated like the total); else the subscale's own
  design prior mean (shrunk like a total); else the total's SMD (ASSUMPTION); times the subscale's SD of change;
- design prior: the library's, widened when its evidence comes from another population than the scenario's
  ``population.background`` (one ``EvidenceWarning`` per arm), unless ``design_prior`` is given; arms without
  either have no prior;
- adverse events: the library's recorded ``active`` incidences for active arms; a control arm takes the mean of
  the ``control`` incidences recorded by the active arms' entries (the placebo/sham rates of the same trials).
  An event that is not recorded for an arm is absent from its ``adverse_events``: unknown, not 0. Arms whose
  patients are on clozapine also record ``clozapine_level_above_alert`` when smokers may stop smoking;
- AE discontinuation: the library's, except where the intervention added to clozapine is known to be tolerated
  worse than alone (:data:`ON_CLOZAPINE_AE_DISCONTINUATION`, used when ``population.background`` is clozapine);
- an arm stated as a ``responder_rate`` or ``responder_odds_ratio`` gets the effect that produces it
  (:func:`calibrate_arms`, :mod:`trialsim.world.truth`); its subscale effects follow the total's SMD.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from trialsim.evidence import Effect, EvidenceLibrary, Intervention, NormalPrior, design_prior, load_library
from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.scenario import Arm, Scenario
from trialsim.world.exposure import LEVEL_ALERT_EVENT
from trialsim.world.truth import calibrated_effects

DESCRIPTION_WIDTH = 100  # characters of one describe_arm line

#: AE discontinuation by the primary endpoint of an intervention added to clozapine, where the combination is
#: tolerated worse than the intervention alone (library values come from trials without clozapine):
#: intervention → (fraction, source).
ON_CLOZAPINE_AE_DISCONTINUATION: dict[str, tuple[float, str]] = {
    "xanomeline_trospium": (
        0.45,
        "Vadiei et al. 2025: of 20 clozapine-treated TRS patients given xanomeline-trospium, 70% stopped, 45% for "
        "intolerability (trospium adds to clozapine's constipation); EMERGENT-1's 2% was without clozapine. The "
        "case series' follow-up is longer than a trial's endpoint: ASSUMPTION that it applies by the endpoint",
    ),
}


@dataclass(frozen=True)
class ResolvedArm:
    """Numbers for one arm (PANSS points unless stated).

    Provenance of the total effect (SMD, positive = improvement): ``effect_raw_smd`` is the library's recorded
    estimate against the arm's control context ``versus`` (None without an intervention or without an estimate),
    ``effect_used_smd`` the effect simulated (``effect_total`` / ``outcome.sd_change``), ``evidence_certainty`` the
    certainty behind the library value, and ``evidence_adjustments`` the reasons, in order, why the used effect or
    the design prior differ from the raw estimate (conversion from points, design default, shrinkage, indirectness,
    values set by the scenario). Each reason is a short phrase, details in parentheses.

    ``adverse_events`` holds recorded incidences only (an event missing from it is not recorded for this arm:
    unknown, not 0); ``adverse_events_recorded`` names them. ``ae_discontinuation`` is 0 when
    ``ae_discontinuation_recorded`` is False (unknown: no AE discontinuation is simulated).
    """

    name: str
    control: bool
    effect_total: float
    effect_positive: float
    effect_negative: float
    prior_mean: float | None
    prior_sd: float | None
    adverse_events: dict[str, float] = field(default_factory=dict)
    ae_discontinuation: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)
    intervention: str | None = None
    versus: str | None = None
    effect_raw_smd: float | None = None
    effect_used_smd: float = 0.0
    evidence_certainty: str | None = None
    evidence_adjustments: list[str] = field(default_factory=list)
    ae_discontinuation_recorded: bool = False
    derived_events: frozenset[str] = frozenset()

    @property
    def adverse_events_recorded(self) -> frozenset[str]:
        """The adverse events recorded for this arm: those with an incidence, and those the world model derives
        (``derived_events``, e.g. a clozapine level rising above the alert level); every other: not recorded."""
        return frozenset(self.adverse_events) | self.derived_events


def describe_arm(arm: ResolvedArm) -> str:
    """One line (at most 100 characters) for the terminal: the used effect, its raw value and why they differ.

    The certainty reads "low certainty" when the line fits, else "low"; a line that still does not fit is cut
    with "…". Adjustments show without their details in parentheses (those are in ``evidence_adjustments``).

    >>> describe_arm(ResolvedArm("ari", False, 3.0, 0.0, 0.0, 3.0, 2.9, intervention="aripiprazole_augmentation",
    ...     versus="placebo", effect_raw_smd=0.57, effect_used_smd=0.2, evidence_certainty="low",
    ...     evidence_adjustments=["design default (assumption)"]))
    'ari: 0.20 SMD vs placebo (raw 0.57, low certainty; design default)'
    """
    if arm.control:
        return _fit(f"{arm.name}: control" + (f" ({arm.intervention})" if arm.intervention else ""))
    if arm.intervention is None:
        return _fit(f"{arm.name}: {arm.effect_used_smd:.2f} SMD (set by the scenario)")
    raw = "no estimate" if arm.effect_raw_smd is None else f"raw {arm.effect_raw_smd:.2f}"
    certainty = str(arm.evidence_certainty).replace("_", " ")
    tags = [adjustment.split(" (")[0] for adjustment in arm.evidence_adjustments]
    lines = [
        f"{arm.name}: {arm.effect_used_smd:.2f} SMD vs {arm.versus} ({'; '.join([f'{raw}, {words}', *tags])})"
        for words in (certainty if certainty == "not graded" else f"{certainty} certainty", certainty)
    ]
    return next((line for line in lines if len(line) <= DESCRIPTION_WIDTH), _fit(lines[-1]))


def _fit(text: str) -> str:
    return text if len(text) <= DESCRIPTION_WIDTH else text[: DESCRIPTION_WIDTH - 1] + "…"


@lru_cache(maxsize=1)
def _library() -> EvidenceLibrary:
    return load_library()


def _entry(arm: Arm, index: int) -> Intervention | None:
    if arm.intervention is None:
        return None
    try:
        entry = _library().get(arm.intervention)
        entry.context(arm.versus)  # the chosen control context must exist
    except ScenarioError as error:
        detail = "; ".join(p.message for p in error.problems)
        raise ScenarioError(Problem("", f"arms[{index}].intervention", detail, arm.intervention, True)) from None
    if arm.control != entry.is_control:
        kind = "a control" if entry.is_control else "an active intervention"
        raise ScenarioError(
            Problem("", f"arms[{index}].intervention", f"is {kind}; it does not fit this arm", arm.intervention, True)
        )
    return entry


def _subscale_smd(entry: Intervention | None, outcome: str, versus: str | None, total_smd: float) -> tuple[float, str]:
    """A subscale's SMD: the library's design default; else its recorded effect scaled by the same ratio that takes
    the recorded total effect to the total used here (e.g. acute-trial evidence attenuated to TRS); else its own
    design prior mean (shrunk like a total); else the total's SMD (ASSUMPTION)."""
    if entry is not None:
        context = entry.context(versus)
        if outcome in context.design_default:
            default = context.design_default[outcome]
            return default.mean, f"library {entry.name} design default ({default.status})"
        if outcome in context.effects:
            recorded = context.effects[outcome].smd
            total = context.effects.get("panss_total")
            if total is not None and total.smd != 0:
                ratio = total_smd / total.smd
                return recorded * ratio, f"library {entry.name} {outcome} {recorded:+.2f} × {ratio:.2f} (total's ratio)"
            prior = design_prior(entry, outcome, versus)
            return prior.mean_smd, f"library {entry.name}: {prior.basis} ({'; '.join(prior.adjustments) or 'as is'})"
    return total_smd, "same SMD as the total (ASSUMPTION)"


def _ae(entry: Intervention | None, column: str) -> dict[str, float]:
    """The recorded incidences of one column (``active`` or ``control``); unrecorded events are left out."""
    if entry is None:
        return {}
    rates = {}
    for name, event in entry.adverse_events.items():
        value = event.active if column == "active" else event.control
        if event.units == "proportion" and value is not None:
            rates[name] = value
    return rates


def _resolve_total(
    arm: Arm, entry: Intervention | None, scenario: Scenario
) -> tuple[float, NormalPrior | None, list[str], dict[str, str]]:
    """An active arm's total effect (SMD), design prior (SMD), adjustments and sources."""
    sd_total = scenario.outcome.sd_change
    needs_library = entry is not None and (arm.effect is None or arm.design_prior is None)
    library_prior = (
        design_prior(entry, "panss_total", arm.versus, scenario.population.background) if needs_library else None
    )
    adjustments = list(library_prior.adjustments) if library_prior is not None else []
    sources: dict[str, str] = {}
    if arm.effect is not None:
        total_smd = arm.effect.in_points(sd_total) / sd_total
        sources["effect"] = "scenario"
        if entry is not None:
            adjustments.append("effect from the scenario")
    elif arm.responder_rate is not None or arm.responder_odds_ratio is not None:
        total_smd = 0.0  # replaced by calibrate_arms
    else:
        assert library_prior is not None and entry is not None
        total_smd = library_prior.mean_smd
        sources["effect"] = f"library {entry.name}: {library_prior.basis}"
    if arm.design_prior is not None:
        prior: NormalPrior | None = NormalPrior(arm.design_prior.mean_smd, arm.design_prior.sd_smd, basis="scenario")
        sources["design_prior"] = "scenario"
        if entry is not None:
            adjustments.append("design prior from the scenario")
    else:
        prior = library_prior
        if entry is not None and prior is not None:
            sources["design_prior"] = f"library {entry.name}: {prior.basis}"
    return total_smd, prior, adjustments, sources


def _certainty(entry: Intervention, raw_effect: Effect | None, prior: NormalPrior | None) -> str:
    """The certainty behind the library value: the library prior's, else the raw estimate's, else the entry's."""
    if prior is not None and prior.certainty is not None:
        return prior.certainty
    return (raw_effect.certainty if raw_effect is not None else None) or entry.certainty


def resolve_arms(scenario: Scenario) -> list[ResolvedArm]:
    """Every arm's effects, design prior, provenance and adverse events, from the scenario and the library."""
    sd_total = scenario.outcome.sd_change
    sd_pos, sd_neg = scenario.subscales.positive_sd_change, scenario.subscales.negative_sd_change
    entries = [_entry(arm, i) for i, arm in enumerate(scenario.arms)]
    resolved: list[ResolvedArm] = []
    for arm, entry in zip(scenario.arms, entries):
        versus = None if entry is None else arm.versus or entry.comparator
        raw_effect = None if entry is None else entry.context(arm.versus).effects.get("panss_total")
        raw = None if raw_effect is None or arm.control else raw_effect.smd
        if arm.control:
            total_smd, prior, adjustments, sources = 0.0, None, [], {}
            certainty = None
        else:
            total_smd, prior, adjustments, sources = _resolve_total(arm, entry, scenario)
            certainty = None if entry is None else _certainty(entry, raw_effect, prior)
        effects = {}
        for outcome, given, sd in (
            ("panss_positive", arm.effect_positive, sd_pos),
            ("panss_negative", arm.effect_negative, sd_neg),
        ):
            if arm.control:
                effects[outcome] = 0.0
            elif given is not None:
                effects[outcome] = given.in_points(sd)
                sources[outcome] = "scenario"
            else:
                smd, source = _subscale_smd(entry, outcome, arm.versus, total_smd)
                effects[outcome] = smd * sd
                sources[outcome] = source
        discontinuation = _discontinuation(arm, entry, "active", scenario.population.background)
        on_clozapine = scenario.population.background == "clozapine"
        if arm.ae_discontinuation is None and on_clozapine and arm.intervention in ON_CLOZAPINE_AE_DISCONTINUATION:
            sources["ae_discontinuation"] = ON_CLOZAPINE_AE_DISCONTINUATION[arm.intervention][1]
        resolved.append(
            ResolvedArm(
                name=arm.name,
                control=arm.control,
                effect_total=total_smd * sd_total,
                effect_positive=effects["panss_positive"],
                effect_negative=effects["panss_negative"],
                prior_mean=None if prior is None else prior.mean_smd * sd_total,
                prior_sd=None if prior is None else prior.sd_smd * sd_total,
                adverse_events=arm.adverse_events if arm.adverse_events is not None else _ae(entry, "active"),
                ae_discontinuation=discontinuation or 0.0,
                sources=sources,
                intervention=arm.intervention,
                versus=versus,
                effect_raw_smd=raw,
                effect_used_smd=total_smd,
                evidence_certainty=certainty,
                evidence_adjustments=adjustments,
                ae_discontinuation_recorded=discontinuation is not None,
                derived_events=_derived_events(arm, scenario),
            )
        )
    return calibrate_arms(scenario, _fill_control_rates(scenario, entries, resolved))


def _derived_events(arm: Arm, scenario: Scenario) -> frozenset[str]:
    """Events the world model derives for the arm: a clozapine level rising above the alert level, recorded when
    the arm's patients are on clozapine and smokers may stop smoking."""
    on_clozapine = scenario.population.background == "clozapine" or arm.clozapine_dependent
    return frozenset({LEVEL_ALERT_EVENT}) if on_clozapine and scenario.clozapine.smokers_quitting > 0 else frozenset()


def calibrate_arms(scenario: Scenario, arms: list[ResolvedArm]) -> list[ResolvedArm]:
    """Arms stated as a ``responder_rate`` or ``responder_odds_ratio`` with the effect (points) that gives that
    rate in this world; subscale effects not set by the scenario follow the total's SMD (ASSUMPTION)."""
    effects = calibrated_effects(scenario)
    out = []
    for a, (spec, arm) in enumerate(zip(scenario.arms, arms)):
        if a in effects:
            points, sd = effects[a], scenario.outcome.sd_change
            sub = scenario.subscales
            target = (
                f"responder rate {spec.responder_rate:g}" if spec.responder_rate is not None
                else f"responder odds ratio {spec.responder_odds_ratio:g} vs control"
            )
            sources = {**arm.sources, "effect": f"calibrated to {target} ({points:.2f} points)"}
            positive = spec.effect_positive.in_points(sub.positive_sd_change) if spec.effect_positive else None
            negative = spec.effect_negative.in_points(sub.negative_sd_change) if spec.effect_negative else None
            for name, given in (("panss_positive", positive), ("panss_negative", negative)):
                if given is None:
                    sources[name] = "same SMD as the calibrated total (ASSUMPTION)"
            arm = replace(
                arm,
                effect_total=points,
                effect_positive=positive if positive is not None else points / sd * sub.positive_sd_change,
                effect_negative=negative if negative is not None else points / sd * sub.negative_sd_change,
                effect_used_smd=points / sd,
                sources=sources,
                evidence_adjustments=[*arm.evidence_adjustments, f"effect calibrated to the {target}"],
            )
        out.append(arm)
    return out


def _discontinuation(arm: Arm, entry: Intervention | None, column: str, background: str) -> float | None:
    """The arm's own override (active column only), else the value on clozapine where it differs
    (:data:`ON_CLOZAPINE_AE_DISCONTINUATION`, active column), else the library's value for ``column``, else None
    (unknown)."""
    if column == "active" and arm.ae_discontinuation is not None:
        return arm.ae_discontinuation
    if column == "active" and background == "clozapine" and arm.intervention in ON_CLOZAPINE_AE_DISCONTINUATION:
        return ON_CLOZAPINE_AE_DISCONTINUATION[arm.intervention][0]
    if entry is None or entry.ae_discontinuation is None:
        return None
    return entry.ae_discontinuation.active if column == "active" else entry.ae_discontinuation.control


def _fill_control_rates(
    scenario: Scenario, entries: list[Intervention | None], resolved: list[ResolvedArm]
) -> list[ResolvedArm]:
    """A control arm without its own AE rates takes the mean control-column rates of the active arms' entries."""
    active_entries = [e for e, arm in zip(entries, scenario.arms) if not arm.control and e is not None]
    out = []
    for arm, resolved_arm in zip(scenario.arms, resolved):
        if arm.control:
            rates = arm.adverse_events
            if rates is None:
                pooled: dict[str, list[float]] = {}
                for entry in active_entries:
                    for name, value in _ae(entry, "control").items():
                        pooled.setdefault(name, []).append(value)
                rates = {name: sum(v) / len(v) for name, v in pooled.items()}
            discontinuation = arm.ae_discontinuation
            if discontinuation is None:
                values = [
                    _discontinuation(a, e, "control", scenario.population.background)
                    for a, e in zip(scenario.arms, entries)
                    if not a.control
                ]
                recorded = [v for v in values if v is not None]
                discontinuation = sum(recorded) / len(recorded) if recorded else None
            resolved_arm = replace(
                resolved_arm,
                adverse_events=rates,
                ae_discontinuation=discontinuation or 0.0,
                ae_discontinuation_recorded=discontinuation is not None,
            )
        out.append(resolved_arm)
    return out


def adverse_event_names(arms: list[ResolvedArm]) -> list[str]:
    """All adverse events simulated in a scenario (recorded for at least one arm), sorted."""
    return sorted({name for arm in arms for name in arm.adverse_events})
