"""The report's sections, in order. Each is a function of the run that returns a :class:`Section`, or ``None``
when its data are absent — so a section appears exactly when the run has what it shows.

To add a section, write ``def name_section(run: Run) -> Section | None`` reading the summary fields it needs and add
it to :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

from trialsim.report import figures, interim_figures, interim_tables, size_search, tables
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
    if run.size_search is not None:
        facts.insert(0, ("Sample-size search", size_search.answer_text(run.size_search)))
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
        if "adaptive" in worst[0]:
            text += f"; {_cost(worst[0])}"
    else:
        reached = [pair for pair in column if power(pair) >= run.target]
        if reached:
            point = reached[0][0]
            text = (
                f"estimated power reaches the target {run.target:g} at N = {point['sample_size']}: {at(reached[0])} "
                f"(MCSE), " + _cost(point)
            )
        else:
            best = max(column, key=power)
            text = (
                f"below the target {run.target:g} at every simulated N; highest power {at(best)} at "
                f"N = {best[0]['sample_size']}" + (f"; {_cost(best[0])}" if "adaptive" in best[0] else "")
            )
    largest = run.points[run.largest]
    comparison = largest["comparisons"][c]
    if "assurance" in comparison:
        assurance = f"{show(comparison['assurance'], 'probability')} ± {show(comparison['assurance_mcse'], 'mcse')}"
        text += f"; assurance {assurance} at N = {largest['sample_size']}"
    return text


def _cost(point: dict) -> str:
    """What a design point costs: its median duration, or with interim looks the expected N (± MCSE), the share of
    trials stopped early and the mean duration (± MCSE)."""
    if "adaptive" not in point:
        return f"median duration {show(point['duration_weeks']['median'], 'weeks')} weeks"
    adaptive = point["adaptive"]
    n, weeks = adaptive["n_randomised"], adaptive["duration_weeks"]
    return (
        f"expected N {show(n['mean'], 'mean')} ± {show(n['mean_mcse'], 'mean')} with "
        f"{show(adaptive['stopped_early'], 'percent')} of trials stopped at an interim look, mean duration "
        f"{show(weeks['mean'], 'weeks')} ± {show(weeks['mean_mcse'], 'weeks')} weeks (median "
        f"{show(weeks['median'], 'weeks')})"
    )


def size_search_section(run: Run) -> Section | None:
    """The search of ``trialsim size`` whose verification run this is: fitted curve, answer, simulated points."""
    size = run.size_search
    if size is None:
        return None
    return Section(
        "size-search",
        "Sample-size search",
        paragraphs=[
            f"The {size_search.searched(size)} was searched for {size_search.metric_name(size)} ≥ "
            f"{size['target']['level']:g}: a spread of values simulated with common random numbers, a monotone probit "
            "curve fitted to every simulated trial by binomial maximum likelihood, a refined spread around its "
            "solution, then fresh trials (another seed) at the candidate until the target lies below the one-sided "
            "95% Monte Carlo bound. The rest of this report is that verification run, at the answer."
        ],
        figures=[size_search.curve_figure(size)],
        tables=[size_search.search_table(size), size_search.points_table(size)],
        notes=["The search noted: " + "; ".join(size["notes"]) + "."] if size["notes"] else [],
    )


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


def interim_section(run: Run) -> Section | None:
    """Interim looks of an adaptive design: stopping per look, N and duration, allocation, estimates, thresholds."""
    if not run.adaptive_points():
        return None
    shares = interim_figures.share_columns(run)
    thresholds = any("thresholds" in point for point in run.points)
    return Section(
        "interim-looks",
        "Interim looks",
        paragraphs=[
            "At each interim look the plan analyses the data observed by its cut-off and may stop the trial for "
            "efficacy or futility"
            + (", drop arms or change the allocation" if shares else "")
            + ". Each trial's estimate and success are those of the analysis that decided it, so the bias and power "
            "above are at stopping; the bias conditional on where a trial stopped is in the last table."
        ],
        figures=[interim_figures.stopping_figure(run), interim_figures.n_duration_figure(run)]
        + ([interim_figures.shares_figure(run)] if shares else [])
        + [interim_figures.estimates_figure(run)],
        tables=[
            interim_tables.looks_table(run.summary),
            interim_tables.stopping_size_table(run.summary),
            interim_tables.allocation_table(run.summary),
            interim_tables.estimate_by_look_table(run.summary),
        ]
        + ([interim_tables.thresholds_table(run.summary)] if thresholds else []),
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
    size_search_section,
    design_section,
    operating_characteristics_section,
    interim_section,
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
