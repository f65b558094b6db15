"""A design restated in plain words, for ``trialsim validate``: what each arm resolved to against the evidence
library (effects, design priors, sources) and, with ``--explain``, the design and the decision rule — what counts
as success, at which looks, on which data."""

from __future__ import annotations

import warnings

from trialsim.spec.plan import ENGINE_DESCRIPTIONS, AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Which patients' data the final analysis uses, by missing-data handling ({week}: the primary endpoint's).
DATA = {
    "completers": "the patients who attended the week-{week} visit; patients who dropped out before it are left out",
    "locf": "every randomised patient, a dropout's last observed value carried forward to week {week}",
    "bocf": "every randomised patient, a dropout's baseline value carried forward to week {week} (no change)",
    "observed": "every visit attended by every randomised patient up to week {week} (valid if dropout is at "
    "random given the observed visits)",
}


def arm_lines(scenario: Scenario) -> list[str]:
    """Each arm as resolved: the one-line description, its effects and design prior, and where they came from."""
    from trialsim.world.arms import describe_arm, resolve_arms

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the evidence warnings are shown when the design is checked
        resolved = resolve_arms(scenario)
    lines = []
    for arm in resolved:
        lines.append(describe_arm(arm))
        if not arm.control:
            text = (f"  true effect {arm.effect_total:+.2f} PANSS points on the total ({arm.effect_positive:+.2f} "
                    f"positive, {arm.effect_negative:+.2f} negative subscale)")
            if arm.prior_mean is not None:
                text += f"; design prior N({arm.prior_mean:.2f}, {arm.prior_sd:.2f}²) points"
            lines.append(text)
        by_source: dict[str, list[str]] = {}
        for what, source in arm.sources.items():
            by_source.setdefault(source, []).append(what.replace("_", " "))
        lines += [f"  {' and '.join(whats)}: {source}" for source, whats in by_source.items()]
    return lines


def _effect_words(scenario: Scenario, plan: AnalysisPlan) -> str:
    control = scenario.arms[scenario.control_index].name
    if plan.model != "responder":
        from trialsim.report.design import MEASURES

        measure = MEASURES[scenario.primary_endpoint.measure]
        return (f"the effect is the mean {measure} in {control} minus that in the arm, in PANSS points (positive = "
                "improvement)")
    if plan.engine == "conjugate":
        return f"the effect is the arm's response rate minus {control}'s (a risk difference)"
    return f"the effect is the log odds ratio of response, arm vs {control}"


def success_text(scenario: Scenario, plan: AnalysisPlan) -> str:
    """What counts as success, for each active arm: at the final analysis, or at a look that stops for efficacy."""
    decision = plan.decision
    control = scenario.arms[scenario.control_index].name
    actives = [arm.name for arm in scenario.arms if not arm.control]
    frequentist = plan.engine == "frequentist"
    statistic = (f"1 − the one-sided p-value for effect > {decision.margin:g}" if frequentist
                 else f"P(effect > {decision.margin:g} | data)")
    if plan.interim is not None and plan.interim.efficacy is not None:
        rule = (f"{statistic} reaches the efficacy threshold of an interim look or of the final analysis (under "
                "When)")
    elif frequentist:
        rule = (f"at the final analysis the one-sided p-value for effect > {decision.margin:g} is at most "
                f"{1 - decision.threshold:.4g}")
    else:
        rule = f"at the final analysis {statistic} ≥ {decision.threshold:g}"
    if frequentist and decision.multiplicity != "none":
        rule += f", the p-values adjusted for the {len(actives)} arms ({decision.multiplicity})"
    if decision.clinical_margin is not None:
        rule += f", and P(effect > {decision.clinical_margin:g} | data) ≥ {decision.clinical_threshold:g}"
    text = f"An active arm succeeds when {rule}; {_effect_words(scenario, plan)}."
    if len(actives) > 1:
        text += f" Each of the {len(actives)} active arms ({', '.join(actives)}) is judged against {control} on its own"
        if not frequentist or decision.multiplicity == "none":
            text += (", without adjustment: the chance that at least one succeeds when none works is larger than "
                     "for one arm (`trialsim calibrate` finds thresholds for a family-wise type I error)")
        text += "."
    return text




def data_text(scenario: Scenario, plan: AnalysisPlan) -> str:
    """Which model, on which patients and visits."""
    from trialsim.report.design import MEASURES

    week = f"{scenario.primary_endpoint.week:g}"
    if plan.model == "responder":
        model = "beta-binomial comparison of responders" if plan.engine == "conjugate" else "logistic model of response"
        analysis = f"{model} at week {week}"
    elif plan.model == "longitudinal":
        covariance = plan.covariance.replace("_", " ")
        analysis = f"longitudinal (MMRM-like, {covariance}) model of the {MEASURES[scenario.primary_endpoint.measure]}"
    else:
        analysis = f"ANCOVA of the {MEASURES[scenario.primary_endpoint.measure]} at week {week} on arm and baseline"
    data = DATA[plan.missing].format(week=week)
    return f"{analysis[0].upper()}{analysis[1:]} ({ENGINE_DESCRIPTIONS[plan.engine]}), on {data}."


def prior_sentence(plan: AnalysisPlan) -> str | None:
    """The analysis prior (Bayesian plans)."""
    from trialsim.report.design import prior_text

    if plan.engine == "frequentist":
        return None
    if plan.model == "responder" and plan.engine == "conjugate":
        response = plan.priors.response
        return f"Prior: Beta({response.alpha:g}, {response.beta:g}) on each arm's response rate."
    return f"Prior on each effect: {prior_text(plan)}."


def looks_paragraphs(scenario: Scenario, plan: AnalysisPlan) -> list[str]:
    """When the looks happen, what they decide with which thresholds, and on which data."""
    from trialsim.decisions import Thresholds
    from trialsim.report.design import interim_decisions_text, looks_text

    if scenario.interim is None:
        return ["No interim looks: one final analysis once every patient has finished follow-up or dropped out."]
    paragraphs = [f"Interim looks: {looks_text(scenario.interim)}."]
    if plan.interim is not None:
        paragraphs.append(f"At the looks: {interim_decisions_text(plan.interim)}.")
    for size in scenario.sample_sizes:
        used = Thresholds.of(scenario, plan, size)
        looks = ", ".join("none" if t == float("inf") else f"{t:.4f}" for t in used.looks)
        paragraphs.append(f"Efficacy thresholds on P(effect > {plan.decision.margin:g}) at N = {size}: looks {looks}; "
                          f"final {used.final:.4f}.")
    data = ("the visits they attended by then" if plan.model == "longitudinal"
            else "those who had reached the primary endpoint by then")
    paragraphs.append(f"A look analyses the patients randomised by its data cut-off, with {data}; later dropouts are "
                      "not yet known.")
    return paragraphs


def explain(scenario: Scenario, plan: AnalysisPlan) -> list[tuple[str, list[str]]]:
    """The design and decision rule in plain words: (heading, paragraphs) sections."""
    from trialsim.report.design import endpoint_text

    arms = scenario.arms
    sizes = ", ".join(map(str, scenario.sample_sizes))
    control = arms[scenario.control_index].name
    design = (
        f"{len(arms)} arms ({', '.join(arm.name for arm in arms)}; the control arm: {control}), "
        f"allocation {':'.join(map(str, scenario.ratio))}, N = {sizes} randomised in total; primary endpoint: "
        f"{endpoint_text(scenario)}; visits at weeks {', '.join(f'{w:g}' for w in scenario.visits_weeks)}."
    )
    if scenario.assurance:
        design += " Each N is also simulated with effects drawn from the design priors (assurance)."
    success = [success_text(scenario, plan)]
    prior = prior_sentence(plan)
    if prior:
        success.append(prior)
    return [
        ("Design", [design]),
        ("Arms as resolved", arm_lines(scenario)),
        (f"What counts as success (plan {plan.name})", success),
        ("On which data", [data_text(scenario, plan)]),
        ("When", looks_paragraphs(scenario, plan)),
    ]
