"""The design in words: arms, effects and their sources, population, recruitment, visits, dropout, resources,
interim looks and the analysis plan with its decision rule and interim decisions. Reads the scenario and plan (when
stored with the run) and the summary's resolved arms."""

from __future__ import annotations

from typing import Any

from trialsim.report.run import decision_text
from trialsim.spec.adaptive import Adaptation
from trialsim.spec.looks import Interim
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

MEASURES = {
    "panss_total_change": "change from baseline in PANSS total",
    "panss_positive_change": "change from baseline in the PANSS positive subscale",
    "panss_negative_change": "change from baseline in the PANSS negative subscale",
}


def _weeks(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _endpoint(scenario: Scenario) -> str:
    endpoint = scenario.primary_endpoint
    if endpoint.measure == "responder":
        what = f"response (a reduction of at least {endpoint.responder_threshold:.0%} of PANSS total − 30)"
    else:
        what = MEASURES[endpoint.measure]
    return f"{what} at week {endpoint.week:g}"


def scenario_facts(scenario: Scenario, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The scenario (world and design) as labelled sentences."""
    arms = scenario.arms
    control = arms[scenario.control_index].name
    block = scenario.recruitment.block_size or 2 * sum(scenario.ratio)
    sizes = scenario.sample_sizes
    facts = [
        (
            "Design",
            f"randomised parallel-group trial of {len(arms)} arms ({', '.join(a.name for a in arms)}; control: "
            f"{control}), allocation {':'.join(map(str, scenario.ratio))} in permuted blocks of {block} "
            "stratified by site",
        ),
        (
            "Sample size",
            f"N = {', '.join(map(str, sizes))} randomised in total ({len(sizes)} design point"
            f"{'s' if len(sizes) > 1 else ''}), {summary['trials']} simulated trials each"
            + (
                "; each design point also run with effects drawn from the design priors (assurance)"
                if scenario.assurance
                else ""
            ),
        ),
    ]
    population = scenario.population
    facts.append(
        (
            "Population",
            f"baseline PANSS total ~ N({population.baseline_panss.mean:g}, {population.baseline_panss.sd:g}²) "
            f"truncated at ≥ {population.inclusion_min_panss:g}; age {population.age.mean:g} ± {population.age.sd:g} "
            f"years ({population.age.min:g}–{population.age.max:g}); {population.female_fraction:.0%} female; "
            f"{population.smoking_fraction:.0%} smokers",
        )
    )
    recruitment = scenario.recruitment
    start, end = recruitment.activation_weeks
    arrivals = "at fixed intervals" if recruitment.fixed_interarrival else "as Poisson processes"
    facts.append(
        (
            "Recruitment",
            f"{recruitment.sites} sites opening uniformly in weeks {start:g}–{end:g}, each screening "
            f"{recruitment.rate_per_site_per_week:g} patients per week on average {arrivals} (between-site CV "
            f"{recruitment.rate_cv:g}); {recruitment.screen_failure:.0%} fail screening",
        )
    )
    window = f" (± {scenario.visit_window_days:g} days)" if scenario.visit_window_days else ""
    facts.append(("Visits", f"weeks {_weeks(scenario.visits_weeks)}{window}"))
    facts.append(("Primary endpoint", _endpoint(scenario)))
    outcome = scenario.outcome
    facts.append(
        (
            "Outcome model",
            f"control improves by {outcome.control_improvement:g} PANSS points by the endpoint; SD of change "
            f"{outcome.sd_change:g}; response curve 1 − e^(−t/{outcome.onset_weeks:g} weeks); "
            f"{outcome.patient_variance_fraction:.0%} of the endpoint variance between patients; AR(1) correlation "
            f"{outcome.visit_correlation:g} per week"
            + (f"; {outcome.baseline_slope:g} extra points per point of baseline" if outcome.baseline_slope else ""),
        )
    )
    facts += _effect_facts(scenario, summary)
    facts.append(("Dropout", _dropout_text(scenario, summary)))
    heterogeneity = _heterogeneity_text(scenario)
    if heterogeneity:
        facts.append(("Heterogeneity", heterogeneity))
    for name, resource in scenario.resources.items():
        users = [a for a in arms if a.treatment is not None and a.treatment.resource == name]
        courses = "; ".join(
            f"{a.name}: "
            + ", then ".join(f"{phase.per_week:g}/week for {phase.weeks:g} weeks" for phase in a.treatment.schedule)
            + f" ({a.treatment.sessions:g} sessions)"
            for a in users
        )
        shortage = {"wait": "patients wait for a slot", "cap_enrolment": "sites stop randomising while full"}
        facts.append(
            (
                f"Resource {name}",
                f"{resource.units_per_site} per site × {resource.sessions_per_day:g} sessions a day × "
                f"{resource.days_per_week:g} days a week, {resource.session_hours:g} h per session; when full, "
                f"{shortage[resource.on_shortage]}. Courses: {courses}",
            )
        )
    for arm in arms:
        if arm.monitoring is not None:
            m = arm.monitoring
            facts.append(
                (
                    f"Monitoring {arm.name}",
                    f"blood counts weekly for {m.weekly_weeks:g} weeks, then every {m.then_every_weeks:g} weeks; "
                    f"neutropenia risk {m.neutropenia_risk:.2%} in weeks {m.risk_window_weeks[0]:g}–"
                    f"{m.risk_window_weeks[1]:g}",
                )
            )
    if scenario.interim is not None:
        facts.append(("Interim looks", _looks_text(scenario.interim)))
    return facts


TRIGGERS = {
    "completed": "when {at:g} patients have reached the primary endpoint",
    "randomised": "when {at:g} patients have been randomised",
    "week": "at calendar week {at:g}",
}


def _looks_text(interim: Interim) -> str:
    looks = "; ".join(
        f"look {k}: {TRIGGERS[look.trigger].format(at=look.at)}" for k, look in enumerate(interim.looks, 1)
    )
    lag = interim.analysis_lag_weeks
    decision = (
        f"each decided {lag:g} weeks after its data cut-off while enrolment goes on" if lag else "decided at once"
    )
    after = {
        "overrun": "patients randomised before a stop complete follow-up and enter a final (overrun) analysis",
        "end_follow_up": "a stop ends follow-up",
    }[interim.on_stop]
    return f"{len(interim.looks)} before the final analysis ({looks}), {decision}; {after}"


def _per_look(values: float | list[float]) -> str:
    return f"{values:g}" if isinstance(values, float | int) else ", ".join(f"{v:g}" for v in values) + " by look"


SPENDING = {
    "obrien_fleming": "O'Brien–Fleming-type",
    "pocock": "Pocock-type",
    "hsd": "Hwang–Shih–DeCani (γ = {gamma:g})",
}


def _interim_decisions_text(rules: Adaptation) -> str:
    parts = []
    if rules.efficacy is not None:
        if rules.efficacy.thresholds is not None:
            parts.append(f"stop for efficacy when P(effect > margin) ≥ {_per_look(rules.efficacy.thresholds)}")
        else:
            spending = rules.efficacy.spending
            shape = SPENDING[spending.function].format(gamma=spending.gamma)
            parts.append(
                f"stop for efficacy at boundaries from {shape} alpha spending (one-sided α {spending.alpha:g})"
            )
        if rules.stop_on_efficacy == "all":
            parts[-1] += " once every remaining active arm has crossed"
    if rules.futility is not None:
        futility = rules.futility
        tests = []
        if futility.thresholds is not None:
            tests.append(f"P(effect > {futility.margin:g}) ≤ {_per_look(futility.thresholds)}")
        if futility.predictive is not None:
            tests.append(f"predictive probability of success ≤ {_per_look(futility.predictive)}")
        if futility.conditional_power is not None:
            tests.append(f"conditional power ≤ {_per_look(futility.conditional_power)}")
        action = "drop the arm" if rules.drop_arms else "stop when every active arm is futile"
        parts.append(f"futility when {' or '.join(tests)}: {action}")
    if rules.keep_best_only:
        parts.append("at the first look keep only the active arm most likely to be best")
    if rules.response_adaptive is not None:
        adaptive = rules.response_adaptive
        parts.append(
            f"response-adaptive randomisation after each look (shares ∝ P(best)^{adaptive.power:g}, at least "
            f"{adaptive.min_allocation:.0%} each; control: {adaptive.control.replace('_', ' ')})"
        )
    return "; ".join(parts)


def _effect_facts(scenario: Scenario, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Per active arm: its true effects (points; SMD of the total) and its design prior."""
    facts = []
    sd = scenario.outcome.sd_change
    for arm in summary["arms"]:
        if arm["control"]:
            continue
        effects = arm["effect_points"]
        text = (
            f"{effects['total']:+.2f} PANSS points on the total (SMD {effects['total'] / sd:+.2f}), "
            f"{effects['positive']:+.2f} on the positive and {effects['negative']:+.2f} on the negative subscale"
        )
        prior = arm["design_prior_points"]
        if prior is not None:
            text += f"; design prior N({prior['mean']:.2f}, {prior['sd']:.2f}²) points"
        facts.append((f"Effect of {arm['name']}", text + " (sources in the table below)"))
    return facts


def _dropout_text(scenario: Scenario, summary: dict[str, Any]) -> str:
    dropout = scenario.dropout
    mechanism = {
        "mcar": "completely at random (constant hazard)",
        "mar": f"at random: hazard × e^({dropout.efficacy_log_hazard_ratio:g} z), z the last observed worsening",
        "mnar": f"not at random: hazard × e^({dropout.efficacy_log_hazard_ratio:g} z), z the current worsening",
    }[dropout.mechanism]
    fractions = scenario.dropout_fractions()
    if len(set(fractions)) == 1:
        share = f"{fractions[0]:.0%}"
    else:
        share = ", ".join(f"{arm.name} {f:.0%}" for arm, f in zip(scenario.arms, fractions))
    text = f"{share} by week {scenario.primary_endpoint.week:g} ('{dropout.reason}'), {mechanism}"
    ae = [f"{arm['name']} {arm['ae_discontinuation']:.1%}" for arm in summary["arms"] if arm["ae_discontinuation"]]
    if ae:
        text += f"; discontinuation for adverse events by the endpoint: {', '.join(ae)}"
    return text


def _heterogeneity_text(scenario: Scenario) -> str:
    het = scenario.heterogeneity
    parts = []
    if het.ultra_trs_fraction:
        parts.append(
            f"{het.ultra_trs_fraction:.0%} ultra-TRS patients get {het.ultra_trs_effect_ratio:g} of the effect"
        )
    dependent = [arm.name for arm in scenario.arms if arm.clozapine_dependent]
    if dependent:
        parts.append(f"smokers get {het.smoker_exposure_ratio:g} of the effect of {', '.join(dependent)}")
    if het.site_sd:
        parts.append(f"placebo response varies across sites (SD {het.site_sd:g} points)")
    if het.rater_sd:
        parts.append(f"rater noise SD {het.rater_sd:g} points per assessment")
    return "; ".join(parts)


def plan_facts(plan: AnalysisPlan | None, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The analysis plan and decision rule as labelled sentences (the plan's own fields when it is known)."""
    analysis = summary["analysis"]
    facts = [("Analysis", f"{summary['analysis_plan']}: {analysis['note']}")]
    if plan is not None:
        if plan.description:
            facts.append(("Plan", plan.description))
        if plan.model == "responder" and plan.engine == "conjugate":
            response = plan.priors.response
            facts.append(("Response prior", f"Beta({response.alpha:g}, {response.beta:g}) for each arm's rate"))
        elif plan.engine != "frequentist":
            facts.append(("Effect prior", _prior_text(plan)))
    facts.append(("Decision rule", f"success when {decision_text(summary)}"))
    if plan is not None and plan.interim is not None:
        facts.append(("Interim decisions", _interim_decisions_text(plan.interim)))
    facts.append(("Interval", f"{analysis['ci_prob']:.0%} interval of the effect (coverage is checked against it)"))
    return facts


def _prior_text(plan: AnalysisPlan) -> str:
    effect = plan.priors.effect
    if effect.from_library is not None:
        text = f"the design prior of {effect.from_library.intervention} (evidence library), in points"
    elif effect.sd is None:
        text = "flat"
    else:
        text = f"N({effect.mean:g}, {effect.sd:g}²) points at residual SD {effect.sd_reference:g}"
    if effect.robust is not None:
        text += f", robust mixture with weight {effect.robust.weight:g} on N(·, {effect.robust.vague_sd:g}²)"
    return text
