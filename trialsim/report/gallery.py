"""A gallery of a few simulated trials of the largest design point, simulated again from their seeds: enrolment
by site over calendar time (with the interim looks' cut-offs and a stop), outcome trajectories by arm, and dropouts.

:func:`resimulate_trials` is the one place where the report runs the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator

from trialsim.engine.trial import Timeline
from trialsim.inference.data import TrialData
from trialsim.report.content import Figure
from trialsim.report.drawing import STOP_COLOURS, colours, render
from trialsim.report.run import Run
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Trials shown in the gallery (indices 0, 1, ...).
GALLERY_TRIALS = 3
#: Trials simulated again for the recruitment curves (the gallery's are the first of them).
RESIMULATED_TRIALS = 50
#: Trajectory plots with more patients than this are drawn as an embedded raster inside the SVG.
RASTER_ABOVE = 150


def resimulate_trials(
    scenario: Scenario, plan: AnalysisPlan, seed: int, sample_size: int, indices: range
) -> list[tuple[TrialData, Timeline]]:
    """Trials ``indices`` of the design point with ``sample_size`` simulated again from the run's master seed, with
    effects at their point values: the same patients, visits, dropouts and interim decisions as in the run."""
    from trialsim.runner import rerun_trial

    return [rerun_trial(scenario, plan, seed, index, sample_size)[:2] for index in indices]


def matches_run(data: TrialData, row: pd.Series) -> bool:
    """Whether a re-simulated trial reproduces the run's row (size, completers, recruitment and duration)."""
    return (
        data.n == row["n_randomised"]
        and int(data.endpoint_observed.sum()) == row["n_completed"]
        and math.isclose(float(data.randomised_week.max()), row["recruitment_weeks"], rel_tol=1e-9)
        and math.isclose(data.end_week, row["duration_weeks"], rel_tol=1e-9)
    )


def _scores(run: Run, data: TrialData) -> tuple[np.ndarray, str]:
    """The per-visit scores of the primary endpoint's scale and its name."""
    measure = run.summary["primary_endpoint"]["measure"]
    if measure == "panss_positive_change" and data.panss_positive is not None:
        return data.panss_positive, "PANSS positive"
    if measure == "panss_negative_change" and data.panss_negative is not None:
        return data.panss_negative, "PANSS negative"
    return data.panss, "PANSS total"


def gallery_figure(run: Run, index: int, data: TrialData, enrolment: Timeline) -> Figure:
    """Trial ``index``: enrolment by site, trajectories by arm (dropouts marked ×), cumulative dropout by arm."""
    colour = colours(list(data.arm_names))
    scores, scale = _scores(run, data)
    since = data.visit_time - data.randomised_week[:, None]
    dropped = np.isfinite(data.dropout_week)

    def enrolment_panel(ax):
        end = float(data.randomised_week.max())
        for site, opened in enumerate(enrolment.site_open_week):
            ax.plot([opened, end], [site, site], color="#cccccc", linewidth=0.8, zorder=1)
        for a, name in enumerate(data.arm_names):
            mine = data.arm == a
            ax.scatter(data.randomised_week[mine], data.site[mine], s=9, color=colour[name], label=name, zorder=2)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("calendar week of randomisation")
        ax.set_ylabel("site")
        ax.set_title("enrolment by site (grey: site open)")
        _mark_looks(ax, enrolment)

    def trajectory_panel(ax):
        dense = data.n > RASTER_ABOVE
        for a, name in enumerate(data.arm_names):
            mine = np.flatnonzero(data.arm == a)
            paths = [np.column_stack([since[i], scores[i]])[np.isfinite(scores[i])] for i in mine]
            ax.add_collection(LineCollection(paths, colors=colour[name], alpha=0.18, linewidths=0.6, rasterized=dense))
            seen = np.isfinite(scores[mine])
            with np.errstate(invalid="ignore"):  # a visit nobody in the arm attended has no mean
                means = np.where(seen, scores[mine], 0.0).sum(axis=0) / seen.sum(axis=0)
            ax.plot(data.visit_weeks, means, color=colour[name], linewidth=2.2, marker="o", markersize=3, label=name)
            last = [np.flatnonzero(np.isfinite(scores[i]))[-1] for i in mine if dropped[i]]
            leavers = [i for i in mine if dropped[i]]
            ax.scatter(since[leavers, last], scores[leavers, last], marker="x", s=14, color=colour[name], zorder=3)
        ax.scatter([], [], marker="x", color="black", label="last visit before dropout")
        ax.set_xlabel("weeks since randomisation")
        ax.set_ylabel(scale)
        ax.set_title(f"{scale} by arm (bold: arm mean)")

    def dropout_panel(ax):
        horizon = float(data.visit_weeks[-1])
        for a, name in enumerate(data.arm_names):
            mine = data.arm == a
            times = np.sort(data.dropout_week[mine & dropped])
            steps = np.concatenate([[0.0], times, [horizon]])
            share = np.concatenate([[0], np.arange(1, times.size + 1), [times.size]]) / max(mine.sum(), 1) * 100
            ax.step(steps, share, where="post", color=colour[name], label=name)
        ax.set_xlim(0, horizon)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("weeks since randomisation")
        ax.set_ylabel("dropped out (% of arm)")
        ax.set_title("cumulative dropout")

    def draw(figure, axes):
        enrolment_panel(axes[0, 0])
        trajectory_panel(axes[0, 1])
        dropout_panel(axes[0, 2])
        handles, labels = axes[0, 1].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside upper center", ncols=len(labels))

    return render(f"gallery-{index}", _caption(run, index, data, enrolment), draw, size=(10.0, 3.6), grid=(1, 3))


def _stop_week(timeline: Timeline) -> float:
    return next(week for week, event, _, _ in timeline.events if event.startswith("stop_"))


def _mark_looks(ax, timeline: Timeline) -> None:
    """Dashed lines at the interim looks' data cut-offs and a solid line at a stop, labelled above the panel."""
    marks = [(look["cutoff_week"], f"look {look['look'] + 1}", "#555555", "--") for look in timeline.looks]
    marks = [mark for mark, look in zip(marks, timeline.looks) if look["look"] >= 0]  # the final analysis is the end
    if timeline.stop:
        marks.append((_stop_week(timeline), f"stop: {timeline.stop}", STOP_COLOURS[timeline.stop], "-"))
    if not marks:
        return
    for week, _, colour, style in marks:
        ax.axvline(week, color=colour, linestyle=style, linewidth=1.1, zorder=1)
    top = ax.secondary_xaxis("top")
    top.set_xticks([week for week, *_ in marks], [text for _, text, *_ in marks], rotation=90, fontsize=7)
    for tick, (*_, colour, _) in zip(top.get_xticklabels(), marks):
        tick.set_color(colour)


def _looks_text(timeline: Timeline, row: pd.Series) -> str:
    """The interim looks of a trial and how it ended, in words."""
    looks = [look for look in timeline.looks if look["look"] >= 0]
    if not looks:
        return ""
    text = " Interim looks at " + ", ".join(
        f"week {look['cutoff_week']:.1f} ({look['n_randomised']} randomised, {look['n_completed']} completers)"
        for look in looks
    )
    if timeline.stop:
        return text + f"; stopped for {timeline.stop} at week {_stop_week(timeline):.1f} (look {row['stop_look']})."
    return text + "; ran to the final analysis."


def _caption(run: Run, index: int, data: TrialData, timeline: Timeline) -> str:
    """What happened in trial ``index``: recruitment, duration, completers, dropouts by reason, interim looks and a
    stop, the analysis."""
    rows = run.rows(run.largest)
    row = rows[rows["trial"] == index].iloc[0]
    reasons = pd.Series(data.dropout_reason[np.isfinite(data.dropout_week)]).value_counts()
    dropouts = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in reasons.items()) or "none"
    text = (
        f"Trial {index} of N = {row['sample_size']}: {data.n} randomised over {row['recruitment_weeks']:.1f} weeks "
        f"at {np.unique(data.site).size} sites, finished after {row['duration_weeks']:.1f} weeks; "
        f"{int(row['n_completed'])} completers; dropouts: {dropouts}."
    )
    text += _looks_text(timeline, row)
    overrun = bool(timeline.stop) and run.scenario.interim.on_stop == "overrun"
    for comparison in run.points[run.largest]["comparisons"]:
        arm = comparison["arm"]
        verdict = "success" if row[f"{arm}.success"] else "no success"
        text += (
            f" {arm} vs {comparison['control']}: estimate {row[f'{arm}.estimate']:.2f} "
            f"[{row[f'{arm}.ci_low']:.2f}, {row[f'{arm}.ci_high']:.2f}], {verdict}"
        )
        if row.get(f"{arm}.dropped_look", 0) > 0:
            text += f", dropped at look {row[f'{arm}.dropped_look']}"
        if overrun and np.isfinite(row.get(f"{arm}.final_estimate", np.nan)):
            text += f"; with the overrun patients {row[f'{arm}.final_estimate']:.2f}"
        text += "."
    return text
