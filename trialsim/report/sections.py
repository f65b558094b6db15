"""The report's sections, in order. Each is a function of the run that returns a :class:`Section`, or ``None``
when its data are absent — so a section appears exactly when the run has what it shows.

To add a section (e.g. interim looks of an adaptive design), write ``def name_section(run: Run) -> Section | None``
reading the summary fields it needs and add it to :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

from trialsim.report import figures, tables
from trialsim.report.content import Section
from trialsim.report.design import plan_facts, scenario_facts
from trialsim.report.gallery import GALLERY_TRIALS, gallery_figure, matches_run
from trialsim.report.numbers import show
from trialsim.report.run import Run, comparison_label, is_null

NO_MANIFEST = (
    "This run directory has no manifest.json (it was saved before runs stored their scenario and plan), so the "
    "design in words, the recruitment curves and the gallery of simulated trials are left out."
)


def glance_section(run: Run) -> Section:
    """The designer's answer: per comparison, the smallest N reaching the target (or the best there is)."""
    first = run.points[run.by_size()[0]]
    facts = [(comparison_label(comparison), _answer(run, c)) for c, comparison in enumerate(first["comparisons"])]
    trials = run.summary["trials"]
    if run.summary["analysis"]["model"] == "responder":
        scale = f"Comparisons are {run.effect_unit}s of response (active − control, positive = improvement)."
    else:
        scale = f"Effects are in PANSS points; {run.summary['effect_sign']}."
    paragraphs = [
        f"Seed {run.summary['seed']}; {trials} simulated trial{'s' * (trials != 1)} per design point. {scale}"
    ]
    notes = [] if run.scenario is not None else [NO_MANIFEST]
    return Section("at-a-glance", "At a glance", paragraphs=paragraphs, facts=facts, notes=notes)


def _answer(run: Run, c: int) -> str:
    """Comparison ``c`` in one sentence: type I error (null), or the smallest N reaching the target power."""
    column = [(run.points[i], run.points[i]["comparisons"][c]) for i in run.by_size()]
    power = lambda pair: pair[1]["power"] or 0.0
    at = lambda pair: f"{show(pair[1]['power'], 'probability')} ± {show(pair[1]['power_mcse'], 'mcse')}"
    if is_null(column[0][1]):
        worst = max(column, key=power)
        text = f"type I error at most {at(worst)} (N = {worst[0]['sample_size']}); the true effect is 0"
    else:
        reached = [pair for pair in column if power(pair) >= run.target]
        if reached:
            point = reached[0][0]
            text = (
                f"estimated power reaches the target {run.target:g} at N = {point['sample_size']}: {at(reached[0])} "
                f"(MCSE), median duration {show(point['duration_weeks']['median'], 'weeks')} weeks"
            )
        else:
            best = max(column, key=power)
            text = (
                f"below the target {run.target:g} at every simulated N; highest power {at(best)} at "
                f"N = {best[0]['sample_size']}"
            )
    largest = run.points[run.largest]
    comparison = largest["comparisons"][c]
    if "assurance" in comparison:
        assurance = f"{show(comparison['assurance'], 'probability')} ± {show(comparison['assurance_mcse'], 'mcse')}"
        text += f"; assurance {assurance} at N = {largest['sample_size']}"
    return text


def design_section(run: Run) -> Section:
    """The design in words (needs the scenario), the resolved arms and the analysis plan."""
    facts = scenario_facts(run.scenario, run.summary) if run.scenario is not None else []
    facts += plan_facts(run.plan, run.summary)
    paragraphs = [run.scenario.description] if run.scenario is not None and run.scenario.description else []
    sourced = any(arm["sources"] for arm in run.summary["arms"])
    return Section(
        "design",
        "The design",
        paragraphs=paragraphs,
        facts=facts,
        tables=[tables.arms_table(run.summary)] + ([tables.sources_table(run.summary)] if sourced else []),
    )


def operating_characteristics_section(run: Run) -> Section:
    return Section(
        "operating-characteristics",
        "Power, type I error and assurance",
        figures=[figures.power_figure(run)],
        tables=[tables.operating_characteristics_table(run.summary)],
    )


def assurance_section(run: Run) -> Section | None:
    if not any("assurance" in c for point in run.points for c in point["comparisons"]):
        return None
    return Section(
        "assurance",
        "Assurance: effects drawn from the design priors",
        figures=[figures.assurance_figure(run)],
        tables=[tables.assurance_table(run.summary)],
    )


def estimates_section(run: Run) -> Section:
    return Section(
        "estimates",
        "Estimated and true effects: bias and coverage",
        figures=[figures.estimates_figure(run), figures.bias_coverage_figure(run)],
    )


def timeline_section(run: Run) -> Section:
    return Section(
        "recruitment",
        "Recruitment and trial duration",
        figures=[figures.recruitment_figure(run), figures.duration_figure(run)],
        tables=[tables.design_points_table(run.summary)],
    )


def dropout_section(run: Run) -> Section:
    any_dropout = any(
        share for point in run.points for per_arm in point["dropout_by_reason"].values() for share in per_arm.values()
    )
    return Section(
        "dropout",
        "Dropout",
        figures=[figures.dropout_figure(run)] if any_dropout else [],
        tables=[tables.dropout_table(run.summary)],
    )


def adverse_events_section(run: Run) -> Section | None:
    if not any(arm["adverse_event_incidence"] for arm in run.summary["arms"]):
        return None
    return Section(
        "adverse-events",
        "Adverse events",
        figures=[figures.adverse_events_figure(run)],
        tables=[tables.adverse_events_table(run.summary), tables.assumed_adverse_events_table(run.summary)],
    )


def resources_section(run: Run) -> Section | None:
    resources = any("resources" in point for point in run.points)
    monitoring = any("monitoring_visits" in point for point in run.points)
    if not (resources or monitoring):
        return None
    return Section(
        "resources",
        "Treatment resources and monitoring",
        figures=[figures.resources_figure(run)] if resources else [],
        tables=([tables.resources_table(run.summary)] if resources else [])
        + ([tables.monitoring_table(run.summary)] if monitoring else []),
    )


def diagnostics_section(run: Run) -> Section | None:
    if not any("failed_diagnostics" in point for point in run.points):
        return None
    return Section(
        "diagnostics",
        "Fit diagnostics",
        paragraphs=["Fits failing their convergence diagnostics are counted as they are, never dropped."],
        tables=[tables.diagnostics_table(run.summary)],
    )


def gallery_section(run: Run) -> Section | None:
    if not run.resimulated:
        return None
    shown = run.resimulated[:GALLERY_TRIALS]
    which = f"Trials 0–{len(shown) - 1}" if len(shown) > 1 else "Trial 0"
    rows = run.rows(run.largest).set_index("trial")
    notes = [
        f"Trial {k} simulated again does not reproduce the run's row in trials.parquet (the engine or its "
        "version differs from the run's); it is shown as simulated now."
        for k, (data, _) in enumerate(shown)
        if not matches_run(data, rows.loc[k])
    ]
    return Section(
        "gallery",
        "Gallery of simulated trials",
        paragraphs=[
            f"{which} of N = {run.points[run.largest]['sample_size']} simulated again from the run's seeds (effects "
            "at their point values); each caption gives the run's analysis of that trial."
        ],
        figures=[gallery_figure(run, k, data, enrolment) for k, (data, enrolment) in enumerate(shown)],
        notes=notes,
    )


def provenance_section(run: Run) -> Section:
    return Section("provenance", "Provenance", tables=[tables.provenance_table(run.summary)])


SECTIONS: tuple[Callable[[Run], Section | None], ...] = (
    glance_section,
    design_section,
    operating_characteristics_section,
    assurance_section,
    estimates_section,
    timeline_section,
    dropout_section,
    adverse_events_section,
    resources_section,
    diagnostics_section,
    gallery_section,
    provenance_section,
)
