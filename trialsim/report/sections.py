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
    facts = []
    order = run.by_size()
    for c, comparison in enumerate(run.points[order[0]]["comparisons"]):
        column = [(run.points[i], run.points[i]["comparisons"][c]) for i in order]
        name = comparison_label(comparison)
        if is_null(comparison):
            point, worst = max(column, key=lambda pc: pc[1]["power"] or 0.0)
            text = (
                f"type I error at most {show(worst['power'], 'probability')} ± {show(worst['power_mcse'], 'mcse')} "
                f"(N = {point['sample_size']}); the true effect is 0"
            )
        else:
            reached = [(point, c_) for point, c_ in column if (c_["power"] or 0.0) >= run.target]
            if reached:
                point, best = reached[0]
                text = (
                    f"estimated power reaches the target {run.target:g} at N = {point['sample_size']}: "
                    f"{show(best['power'], 'probability')} ± {show(best['power_mcse'], 'mcse')} (MCSE), median "
                    f"duration {show(point['duration_weeks']['median'], 'weeks')} weeks"
                )
            else:
                point, best = max(column, key=lambda pc: pc[1]["power"] or 0.0)
                text = (
                    f"below the target {run.target:g} at every simulated N; highest power "
                    f"{show(best['power'], 'probability')} ± {show(best['power_mcse'], 'mcse')} at "
                    f"N = {point['sample_size']}"
                )
        largest = run.points[run.largest]["comparisons"][c]
        if "assurance" in largest:
            text += (
                f"; assurance {show(largest['assurance'], 'probability')} ± "
                f"{show(largest['assurance_mcse'], 'mcse')} at N = {run.points[run.largest]['sample_size']}"
            )
        facts.append((name, text))
    paragraphs = [
        f"{run.summary['trials']} simulated trials per design point, seed {run.summary['seed']}. "
        f"Effects are in {run.effect_unit}; {run.summary['effect_sign']}."
    ]
    notes = [] if run.scenario is not None else [NO_MANIFEST]
    return Section("at-a-glance", "At a glance", paragraphs=paragraphs, facts=facts, notes=notes)


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
            f"The first {len(shown)} trials of N = {run.points[run.largest]['sample_size']} simulated again from "
            "their seeds (effects at their point values); each caption gives the run's analysis of that trial."
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
