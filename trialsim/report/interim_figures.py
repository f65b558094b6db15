"""Figures of the interim looks of an adaptive design: stopping per look with Monte Carlo error bars (summary), N
and duration by stopping look, response-adaptive shares and the estimate by stopping look (trials table, with the
summary's means). Each figure is of the largest design point with looks, except the stopping probabilities, which
are shown for every design point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialsim.report.content import Figure
from trialsim.report.drawing import STOP_COLOURS, as_float, colours, hide_unused, panel_grid, panels_width, render
from trialsim.report.run import Run, comparison_label

Z95 = 1.96
#: Width (inches) a figure needs for its legend of several entries in a row.
WIDE_LEGEND = 8.0
#: Jittered trial markers above this many are drawn as an embedded raster inside the SVG.
RASTER_ABOVE = 400


def stopped_at(look: int) -> str:
    """Where a trial stopped, in words (look 0 = it ran to the final analysis)."""
    return "final analysis" if look == 0 else f"look {look}"


def _on_stop(run: Run) -> str | None:
    """What a stop does to follow-up (``overrun`` or ``end_follow_up``); None when the scenario is unknown."""
    return run.scenario.interim.on_stop if run.scenario is not None and run.scenario.interim else None


def _interval(values: np.ndarray, mcse: np.ndarray) -> np.ndarray:
    """Asymmetric error bars of ±1.96 MCSE clipped to probabilities in [0, 1]."""
    return np.array([np.minimum(values, Z95 * mcse), np.minimum(1 - values, Z95 * mcse)])


def stopping_figure(run: Run) -> Figure:
    """Per design point and look: stopping for efficacy and futility, and cumulatively, with ±1.96 MCSE (summary)."""
    indices = run.adaptive_points()
    grid = panel_grid(len(indices))

    def draw(figure, axes):
        for ax, p in zip(axes.flat, indices):
            looks = run.points[p]["adaptive"]["looks"]
            x = np.array([look["look"] for look in looks], dtype=float)
            for offset, reason in ((-0.18, "efficacy"), (0.18, "futility")):
                values = as_float([look[f"stop_{reason}"] for look in looks])
                mcse = as_float([look[f"stop_{reason}_mcse"] for look in looks])
                ax.bar(x + offset, values, 0.36, color=STOP_COLOURS[reason], label=f"stopped for {reason}")
                ax.errorbar(x + offset, values, yerr=_interval(values, mcse), fmt="none", color="black", capsize=3)
            cumulative = as_float([look["stopped_by_now"] for look in looks])
            mcse = as_float([look["stopped_by_now_mcse"] for look in looks])
            ax.errorbar(x, cumulative, yerr=_interval(cumulative, mcse), fmt="o-", color="black", capsize=3,
                        markersize=4, label="stopped by this look")  # fmt: skip
            reached = as_float([look["reached"] for look in looks])
            ax.plot(x, reached, "s", color="#777777", markerfacecolor="none", label="look reached")
            ax.set_xticks(x, [f"look {look['look']}\nweek {look['week']:.0f}" for look in looks])
            ax.set_ylim(0, 1.05)
            ax.set_axisbelow(True)
            ax.set_ylabel("share of trials")
            ax.set_title(f"N = {run.points[p]['sample_size']}")
        hide_unused(axes, len(indices))
        figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=4)

    caption = (
        "Probability of stopping at each interim look for efficacy and for futility, and of having stopped by that "
        "look, with 95% Monte Carlo error bars (±1.96 MCSE); squares: probability the look happened at all (a look "
        "is skipped when its trigger is never reached). Ticks give the mean cut-off week. Source: summary.json."
    )
    size = (max(panels_width(grid), WIDE_LEGEND), 0.6 + 2.9 * grid[0])
    return render("interim-stopping", caption, draw, size=size, grid=grid)


def _stop_groups(rows: pd.DataFrame) -> list[tuple[int, np.ndarray]]:
    """Trials by the look at which they stopped: interim looks in order, then the final analysis (look 0)."""
    stop = rows["stop_look"].to_numpy(dtype=int)
    return [(look, stop == look) for look in sorted(set(stop), key=lambda look: (look == 0, look))]


def _jittered(ax, groups, values, reasons, positions, horizontal: bool) -> None:
    """One marker per trial at its group's position (jittered), coloured by its stop reason."""
    jitter = np.random.default_rng(0).uniform(-0.22, 0.22, size=values.size)
    dense = values.size > RASTER_ABOVE
    for (_, mask), position in zip(groups, positions):
        for reason, colour in STOP_COLOURS.items():
            mine = mask & (reasons == reason) & np.isfinite(values)
            spread = position + jitter[mine]
            xy = (values[mine], spread) if horizontal else (spread, values[mine])
            ax.scatter(*xy, s=6, color=colour, alpha=0.55, linewidths=0, rasterized=dense, zorder=3)


def _reason_legend(ax) -> None:
    for reason, colour in STOP_COLOURS.items():
        ax.scatter([], [], s=14, color=colour, label=f"stopped for {reason}" if reason else "ran to the final analysis")


def n_duration_figure(run: Run) -> Figure:
    """Patients randomised and trial duration by stopping look at the largest adaptive design point (trials table,
    with the means over all trials from the summary)."""
    p = run.adaptive_points()[-1]
    rows = run.rows(p)
    adaptive = run.points[p]["adaptive"]
    groups = _stop_groups(rows)
    reasons = rows["stop_reason"].fillna("").to_numpy(dtype=str)
    positions = np.arange(len(groups), dtype=float)
    names = [f"{stopped_at(look)} ({int(mask.sum())})" for look, mask in groups]

    def draw(figure, axes):
        panels = (("n_randomised", "patients randomised"), ("duration_weeks", "trial duration (weeks)"))
        for i, (ax, (column, name)) in enumerate(zip(axes[0], panels)):
            values = rows[column].to_numpy(dtype=float)
            ax.boxplot([values[mask] for _, mask in groups], positions=positions, orientation="horizontal",
                       whis=(10, 90), showfliers=False, widths=0.6, medianprops={"color": "black"})  # fmt: skip
            _jittered(ax, groups, values, reasons, positions, horizontal=True)
            ax.axvline(adaptive[column]["mean"], color="#555555", linestyle="--", linewidth=1, label="mean, all trials")
            ax.set_yticks(positions, names if i == 0 else [])
            ax.invert_yaxis()
            ax.set_xlabel(name)
        _reason_legend(axes[0, 0])
        figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=4)

    on_stop = _on_stop(run)
    follow_up = {
        "overrun": "patients randomised before a stop complete their follow-up (overrun), so a stopped trial still "
        "runs on after the decision",
        "end_follow_up": "follow-up ends at a stop",
        None: "a stopped trial randomises nobody after the stop",
    }[on_stop]
    caption = (
        f"Patients randomised and trial duration at N = {run.points[p]['sample_size']} by the look at which each "
        f"trial stopped (trials in brackets): one marker per trial, coloured by the reason; boxes are quartiles, "
        f"whiskers the 10th–90th percentiles; dashed: the mean over all trials. Duration runs to the last patient's "
        f"last visit; {follow_up}. Source: trials.parquet (means: summary.json)."
    )
    return render("interim-n-duration", caption, draw, size=(9.0, 1.2 + 0.55 * len(groups)), grid=(1, 2))


def share_columns(run: Run) -> dict[int, dict[str, str]]:
    """Response-adaptive share columns of the trials table: look → arm → column (empty without such shares)."""
    out: dict[int, dict[str, str]] = {}
    looks = len(run.points[run.adaptive_points()[-1]]["adaptive"]["looks"])
    for look in range(1, looks + 1):
        found = {arm: f"{arm}.look{look}.share" for arm in run.arm_names if f"{arm}.look{look}.share" in run.trials}
        if found:
            out[look] = found
    return out


def shares_figure(run: Run) -> Figure:
    """Response-adaptive shares set at each look (trials table) and the allocation achieved (summary), at the
    largest adaptive design point."""
    p = run.adaptive_points()[-1]
    rows = run.rows(p)
    columns = share_columns(run)
    colour = colours(run.arm_names)
    arms = run.arm_names
    width = 0.8 / len(arms)
    allocation = run.points[p]["adaptive"]["allocation"]
    planned = None if run.scenario is None else np.array(run.scenario.ratio, dtype=float) / sum(run.scenario.ratio)

    def draw(figure, axes):
        shares_ax, achieved_ax = axes[0]
        for a, arm in enumerate(arms):
            offset = (a - (len(arms) - 1) / 2) * width
            data = [rows[columns[look][arm]].dropna().to_numpy(dtype=float) for look in columns if arm in columns[look]]
            positions = [look + offset for look in columns if arm in columns[look]]
            boxes = shares_ax.boxplot(data, positions=positions, widths=width * 0.85, whis=(10, 90), showfliers=False,
                                      patch_artist=True, medianprops={"color": "black"})  # fmt: skip
            for box in boxes["boxes"]:
                box.set(facecolor=colour[arm], alpha=0.6)
            shares_ax.plot([], [], "s", color=colour[arm], label=arm)
        shares_ax.set_xticks(list(columns), [f"look {look}" for look in columns])
        shares_ax.set_ylim(0, 1)
        shares_ax.set_ylabel("share set for later patients")
        shares_ax.set_title("response-adaptive shares per look")
        y = np.arange(len(arms))
        achieved_ax.barh(y, [allocation[arm] for arm in arms], color=[colour[arm] for arm in arms])
        if planned is not None:
            achieved_ax.plot(planned, y, "|", color="black", markersize=14, label="planned ratio")
            achieved_ax.legend(loc="lower right")
        achieved_ax.set_yticks(y, arms)
        achieved_ax.invert_yaxis()
        achieved_ax.set_xlim(0, 1)
        achieved_ax.set_axisbelow(True)
        achieved_ax.set_xlabel("share of all patients randomised")
        achieved_ax.set_title("allocation achieved")
        figure.legend(*shares_ax.get_legend_handles_labels(), loc="outside upper center", ncols=len(arms))

    caption = (
        f"Response-adaptive randomisation at N = {run.points[p]['sample_size']}: the shares each look set for the "
        "patients randomised after its decision (boxes: quartiles, whiskers: 10th–90th percentiles over the trials "
        "that reached the look and went on) and each arm's share of all patients randomised"
        + (", with the planned ratio (ticks)" if planned is not None else "")
        + ". Source: trials.parquet (shares), summary.json (allocation achieved)."
    )
    return render("interim-shares", caption, draw, size=(9.0, 3.2), grid=(1, 2))


def estimates_figure(run: Run) -> Figure:
    """Per comparison: the deciding estimate of each trial by stopping look with the summary's mean (±1.96 MCSE)
    and, for stopped trials, the mean of the final analysis with the overrun patients (trials table, summary)."""
    p = run.adaptive_points()[-1]
    rows = run.rows(p)
    comparisons = [c for c in run.points[p]["comparisons"] if "estimate_by_stopping_look" in c]
    groups = _stop_groups(rows)
    reasons = rows["stop_reason"].fillna("").to_numpy(dtype=str)
    positions = np.arange(len(groups), dtype=float)
    overrun = _on_stop(run) == "overrun"

    def draw(figure, axes):
        for ax, comparison in zip(axes.flat, comparisons):
            arm = comparison["arm"]
            _jittered(ax, groups, rows[f"{arm}.estimate"].to_numpy(dtype=float), reasons, positions, horizontal=False)
            by_look = {group["stop_look"]: group for group in comparison["estimate_by_stopping_look"]}
            means = as_float([by_look[look]["mean_estimate"] for look, _ in groups])
            mcse = as_float([by_look[look]["bias_mcse"] for look, _ in groups])
            ax.errorbar(positions, means, yerr=Z95 * mcse, fmt="o", color="black", capsize=4, markersize=5,
                        zorder=4, label="mean at stopping (±1.96 MCSE)")  # fmt: skip
            if overrun and f"{arm}.final_estimate" in rows:
                final = rows[f"{arm}.final_estimate"].to_numpy(dtype=float)
                stopped = [(position, np.nanmean(final[mask])) for position, (look, mask) in zip(positions, groups)
                           if look > 0 and np.isfinite(final[mask]).any()]  # fmt: skip
                if stopped:
                    ax.plot(*zip(*stopped), "D", color="black", markerfacecolor="white", markersize=6, zorder=4,
                            label="mean with the overrun patients")  # fmt: skip
            ax.axhline(comparison["true_effect"], color="black", linewidth=1.2, label="true effect")
            ax.set_xticks(positions, [f"{stopped_at(look)}\n({int(mask.sum())})" for look, mask in groups])
            ax.set_title(comparison_label(comparison))
            ax.set_ylabel(f"estimate ({run.effect_unit})")
        hide_unused(axes, len(comparisons))
        _reason_legend(axes[0, 0])
        handles, labels = axes[0, 0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 3))

    caption = (
        f"Estimates at N = {run.points[p]['sample_size']} by the look at which the trial stopped (trials in "
        "brackets): each trial's estimate from the analysis that decided it, coloured by the reason, with their mean "
        "per look (±1.96 MCSE) and the true effect. A trial stops early for efficacy because its estimate is high "
        "(and for futility because it is low), so conditional on an efficacy stop the estimate overstates the effect"
        + (
            "; white diamonds: the mean of the final analysis that includes the patients followed up after the stop"
            if overrun
            else ""
        )
        + ". Source: trials.parquet (trials), summary.json (means)."
    )
    grid = panel_grid(len(comparisons), columns=2)
    size = (max(panels_width(grid), WIDE_LEGEND), 1.0 + 3.0 * grid[0])
    return render("interim-estimates", caption, draw, size=size, grid=grid)
