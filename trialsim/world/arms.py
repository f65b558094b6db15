"""Resolve a scenario's arms against the evidence library into numbers the engine uses.

For each arm: true effects on PANSS total, positive and negative change (points, positive = improvement), the
design prior of the total effect (for assurance), adverse-event incidences and AE discontinuation by the primary
endpoint. Values given in the scenario win; otherwise they come from the arm's ``intervention`` entry:

- total effect: the mean of the library's design prior (its design default where one exists; implausible
  evidence is shrunk, with an ``EvidenceWarning``), times ``outcome.sd_change``;
- subscale effects: the library's design default for that subscale; else its recorded SMD scaled by the ratio of
  the total used here to the recorded total (acute evidence attenuated like the total); else the total's SMD
  (ASSUMPTION); times the subscale's SD of change;
- design prior: the library's, unless ``design_prior`` is given; arms without either have no prior;
- adverse events: the library's ``active`` incidences for active arms; a control arm takes the mean of the
  ``control`` incidences reported by the active arms' entries (the placebo/sham rates of the same trials).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from trialsim.evidence import EvidenceLibrary, Intervention, design_prior, load_library
from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.scenario import Arm, Scenario


@dataclass(frozen=True)
class ResolvedArm:
    """Numbers for one arm (PANSS points unless stated)."""

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
    the recorded total effect to the total used here (e.g. acute-trial evidence attenuated to TRS); else the
    total's SMD (ASSUMPTION)."""
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
            return recorded, f"library {entry.name} {outcome} {recorded:+.2f}"
    return total_smd, "same SMD as the total (ASSUMPTION)"


def _ae(entry: Intervention | None, column: str) -> dict[str, float]:
    if entry is None:
        return {}
    rates = {}
    for name, event in entry.adverse_events.items():
        value = event.active if column == "active" else event.control
        if event.units == "proportion" and value is not None:
            rates[name] = value
    return rates


def resolve_arms(scenario: Scenario) -> list[ResolvedArm]:
    """Every arm's effects, design prior and adverse events, from the scenario and the evidence library."""
    sd_total = scenario.outcome.sd_change
    sd_pos, sd_neg = scenario.subscales.positive_sd_change, scenario.subscales.negative_sd_change
    entries = [_entry(arm, i) for i, arm in enumerate(scenario.arms)]
    resolved: list[ResolvedArm] = []
    for arm, entry in zip(scenario.arms, entries):
        sources: dict[str, str] = {}
        prior_mean = prior_sd = None
        if arm.control:
            total_smd = 0.0
        else:
            library_prior = design_prior(entry, "panss_total", arm.versus) if entry is not None else None
            if arm.effect is not None:
                total_smd = arm.effect.in_points(sd_total) / sd_total
                sources["effect"] = "scenario"
            else:
                assert library_prior is not None
                total_smd = library_prior.mean_smd
                sources["effect"] = f"library {entry.name}: {library_prior.basis}"
            if arm.design_prior is not None:
                prior_mean, prior_sd = arm.design_prior.mean_smd * sd_total, arm.design_prior.sd_smd * sd_total
                sources["design_prior"] = "scenario"
            elif library_prior is not None:
                prior_mean, prior_sd = library_prior.mean_smd * sd_total, library_prior.sd_smd * sd_total
                sources["design_prior"] = f"library {entry.name}: {library_prior.basis}"
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
        resolved.append(
            ResolvedArm(
                name=arm.name,
                control=arm.control,
                effect_total=total_smd * sd_total,
                effect_positive=effects["panss_positive"],
                effect_negative=effects["panss_negative"],
                prior_mean=prior_mean,
                prior_sd=prior_sd,
                adverse_events=arm.adverse_events if arm.adverse_events is not None else _ae(entry, "active"),
                ae_discontinuation=_discontinuation(arm, entry, "active"),
                sources=sources,
            )
        )
    return _fill_control_rates(scenario, entries, resolved)


def _discontinuation(arm: Arm, entry: Intervention | None, column: str) -> float:
    """The arm's own override (active column only), else the library's value for ``column``, else 0."""
    if column == "active" and arm.ae_discontinuation is not None:
        return arm.ae_discontinuation
    if entry is None or entry.ae_discontinuation is None:
        return 0.0
    value = entry.ae_discontinuation.active if column == "active" else entry.ae_discontinuation.control
    return value or 0.0


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
                values = [_discontinuation(a, e, "control") for a, e in zip(scenario.arms, entries) if not a.control]
                values = [v for v in values if v > 0]
                discontinuation = sum(values) / len(values) if values else 0.0
            resolved_arm = ResolvedArm(
                **{**resolved_arm.__dict__, "adverse_events": rates, "ae_discontinuation": discontinuation}
            )
        out.append(resolved_arm)
    return out


def adverse_event_names(arms: list[ResolvedArm]) -> list[str]:
    """All adverse events simulated in a scenario, sorted."""
    return sorted({name for arm in arms for name in arm.adverse_events})
