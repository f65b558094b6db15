"""Figures of the operating characteristics and of the distributions over simulated trials.

Each function says which data it reads: the summary dict (the numbers of ``summary.json``) or the per-trial
table (``trials.parquet``).
"""

from __future__ import annotations

import numpy as np

from trialsim.report.content import Figure
from trialsim.report.drawing import PALETTE, as_float, colours, hide_unused, panel_grid, panels_width, render
from trialsim.report.run import Run, comparison_label, is_null

Z95 = 1.96
#: Scatters with more points than this are drawn as an embedded raster inside the SVG.
RASTER_ABOVE = 400


def power_figure(run: Run) -> Figure:
    """P(success) and assurance against N with ±1.96 MCSE bands and the target line (summary)."""
    order = run.by_size()
    sizes = np.array([run.points[i]["sample_size"] for i in order], dtype=float)
    colour = colours(run.arm_names)

    def band(ax, values, mcse, style, colour_, label):
        lower, upper = np.clip(values - Z95 * mcse, 0, 1), np.clip(values + Z95 * mcse, 0, 1)
        ax.plot(sizes, values, style, color=colour_, label=label, marker="o", markersize=3.5)
        if sizes.size > 1:
            ax.fill_between(sizes, lower, upper, color=colour_, alpha=0.15, linewidth=0)
        else:
            ax.errorbar(sizes, values, yerr=[values - lower, upper - values], color=colour_, capsize=4, fmt="none")

    def draw(figure, axes):
        ax = axes[0, 0]
        for c, comparison in enumerate(run.points[order[0]]["comparisons"]):
            column = [run.points[i]["comparisons"][c] for i in order]
            name = comparison_label(comparison)
            kind = "type I error" if is_null(comparison) else "power"
            values = as_float([x["power"] for x in column])
            mcse = as_float([x["power_mcse"] for x in column])
            band(ax, values, mcse, "-", colour[comparison["arm"]], f"{name}: {kind}")
            if "assurance" in comparison:
                values = as_float([x["assurance"] for x in column])
                mcse = as_float([x["assurance_mcse"] for x in column])
                band(ax, values, mcse, "--", colour[comparison["arm"]], f"{name}: assurance")
        ax.axhline(run.target, color="#555555", linestyle=":", linewidth=1.2, label=f"target {run.target:g}")
        ax.set_ylim(0, 1)
        ax.set_xlabel("total sample size N (randomised)")
        ax.set_ylabel("probability of success")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    caption = (
        "Probability of success against the total sample size, with 95% Monte Carlo bands (±1.96 MCSE); "
        "solid: effects at their point values (power, or type I error for a null comparison); dashed: assurance "
        f"(effects drawn from the design priors); dotted: the target {run.target:g}. Source: summary.json."
    )
    return render("power-curve", caption, draw, size=(9.0, 3.6))


def estimates_figure(run: Run) -> Figure:
    """Histograms of the estimates at the largest design point, with the true effect (trials table + summary)."""
    point = run.points[run.largest]
    rows = run.rows(run.largest)
    valid = rows["analysis_valid"].to_numpy(dtype=bool)
    comparisons = point["comparisons"]
    colour = colours(run.arm_names)

    def draw(figure, axes):
        for ax, comparison in zip(axes.flat, comparisons):
            arm = comparison["arm"]
            estimates = rows[f"{arm}.estimate"].to_numpy(dtype=float)[valid]
            ax.hist(estimates[np.isfinite(estimates)], bins=30, color=colour[arm], alpha=0.6)
            ax.axvline(comparison["true_effect"], color="black", linewidth=1.4, label="true effect")
            if comparison["mean_estimate"] is not None:
                ax.axvline(comparison["mean_estimate"], color="black", linestyle="--", label="mean estimate")
            ax.set_title(comparison_label(comparison))
            ax.set_xlabel(f"estimate ({run.effect_unit})")
            ax.set_ylabel("trials")
        hide_unused(axes, len(comparisons))
        figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=2)

    caption = (
        f"Estimated effects over the simulated trials at N = {point['sample_size']} (effects at their point values; "
        "trials with an impossible analysis left out), with the true effect. Bias and coverage per N follow. "
        "Source: trials.parquet."
    )
    grid = panel_grid(len(comparisons))
    return render("estimates", caption, draw, size=(panels_width(grid), 0.4 + 2.7 * grid[0]), grid=grid)


def bias_coverage_figure(run: Run) -> Figure:
    """Bias and interval coverage against N with ±1.96 MCSE bars (summary)."""
    order = run.by_size()
    sizes = np.array([run.points[i]["sample_size"] for i in order], dtype=float)
    comparisons = run.points[order[0]]["comparisons"]
    colour = colours(run.arm_names)
    nominal = run.summary["analysis"]["ci_prob"]
    spacing = np.diff(sizes).min() if sizes.size > 1 else max(sizes[0], 1.0)
    offsets = (np.arange(len(comparisons)) - (len(comparisons) - 1) / 2) * 0.04 * spacing

    def draw(figure, axes):
        bias_ax, coverage_ax = axes[0]
        for c, comparison in enumerate(comparisons):
            column = [run.points[i]["comparisons"][c] for i in order]
            style = {"color": colour[comparison["arm"]], "fmt": "o-", "capsize": 3, "markersize": 3.5}
            bias = as_float([x["bias"] for x in column])
            bias_ax.errorbar(sizes + offsets[c], bias, yerr=Z95 * as_float([x["bias_mcse"] for x in column]), **style)
            coverage = as_float([x["coverage"] for x in column])
            coverage_se = as_float([x["coverage_mcse"] for x in column])
            coverage_ax.errorbar(sizes + offsets[c], coverage, yerr=Z95 * coverage_se, **style)
            bias_ax.plot([], [], "o-", color=style["color"], label=comparison_label(comparison))
        bias_ax.axhline(0, color="black", linewidth=0.8)
        bias_ax.set_ylabel(f"bias ({run.effect_unit})")
        coverage_ax.axhline(nominal, color="#555555", linestyle=":")
        coverage_ax.set_ylabel(f"{nominal:.0%} interval coverage")
        for ax in (bias_ax, coverage_ax):
            ax.set_xlabel("total sample size N")
        coverage_ax.plot([], [], ":", color="#555555", label=f"nominal coverage {nominal:g}")
        handles = bias_ax.get_legend_handles_labels()[0] + coverage_ax.get_legend_handles_labels()[0]
        figure.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4))

    caption = (
        "Bias (mean estimate − true effect) and coverage of the credible/confidence interval against N, with 95% "
        "Monte Carlo error bars (±1.96 MCSE). Source: summary.json."
    )
    return render("bias-coverage", caption, draw, size=(9.0, 3.2), grid=(1, 2))


def assurance_figure(run: Run) -> Figure:
    """Estimated against true effects under the design priors at the largest design point (trials table)."""
    point = run.points[run.largest]
    rows = run.rows(run.largest, "assurance")
    comparisons = [c for c in point["comparisons"] if "assurance" in c]

    def draw(figure, axes):
        for ax, comparison in zip(axes.flat, comparisons):
            arm = comparison["arm"]
            truth = rows[f"{arm}.true_effect"].to_numpy(dtype=float)
            estimate = rows[f"{arm}.estimate"].to_numpy(dtype=float)
            success = rows[f"{arm}.success"].to_numpy(dtype=bool)
            dense = truth.size > RASTER_ABOVE
            for flag, colour, name in ((False, "#999999", "failure"), (True, PALETTE[0], "success")):
                mask = success == flag
                ax.scatter(truth[mask], estimate[mask], s=6, color=colour, alpha=0.6, label=name, rasterized=dense)
            finite = np.isfinite(estimate)
            low = min(truth.min(), estimate[finite].min(initial=truth.min()))
            high = max(truth.max(), estimate[finite].max(initial=truth.max()))
            ax.plot([low, high], [low, high], color="black", linewidth=0.8)
            ax.axvline(0, color="#555555", linestyle=":", linewidth=0.8)
            ax.set_title(f"{comparison_label(comparison)}: assurance {comparison['assurance']:.3f}")
            ax.set_xlabel(f"true effect ({run.effect_unit})")
            ax.set_ylabel("estimate")
        hide_unused(axes, len(comparisons))
        figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=2)

    caption = (
        f"Assurance trials at N = {point['sample_size']}: each trial's true effect drawn from the arm's design prior "
        "against its estimate; successes in colour; the line is estimate = truth. Source: trials.parquet."
    )
    grid = panel_grid(len(comparisons))
    return render("assurance-effects", caption, draw, size=(panels_width(grid), 0.4 + 2.9 * grid[0]), grid=grid)


def _boxes(ax, run: Run, column: str, ylabel: str) -> None:
    """Box plots of a trials-table column per design point (increasing N): quartiles, whiskers at the 10th and
    90th percentiles."""
    order = run.by_size()
    data = []
    for i in order:
        values = run.rows(i)[column].to_numpy(dtype=float)
        data.append(values[np.isfinite(values)])
    ax.boxplot(data, whis=(10, 90), showfliers=False, widths=0.6, medianprops={"color": PALETTE[1]})
    ax.set_xticks(range(1, len(order) + 1), [str(run.points[i]["sample_size"]) for i in order])
    ax.set_xlabel("total sample size N")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)


def duration_figure(run: Run) -> Figure:
    """Recruitment and trial duration per design point (trials table)."""

    def draw(figure, axes):
        _boxes(axes[0, 0], run, "recruitment_weeks", "weeks to recruit")
        _boxes(axes[0, 1], run, "duration_weeks", "trial duration (weeks)")

    caption = (
        "Weeks to randomise the last patient and total trial duration (to the last patient's last visit or course "
        "end) per design point: boxes are quartiles, whiskers the 10th–90th percentiles. Source: trials.parquet."
    )
    return render("duration", caption, draw, size=(9.0, 3.0), grid=(1, 2))


def _times_to_randomise(run: Run) -> list[tuple[int, np.ndarray]]:
    """Per design point (increasing N): N and the weeks to randomise N over the trials that randomised N (a trial
    stopped at an interim look randomises fewer); design points where none did are left out."""
    out = []
    for i in run.by_size():
        size, rows = run.points[i]["sample_size"], run.rows(i)
        full = rows["n_randomised"].to_numpy() >= size
        if full.any():
            out.append((size, rows["recruitment_weeks"].to_numpy(dtype=float)[full]))
    return out


def recruitment_figure(run: Run) -> Figure:
    """Cumulative randomised against calendar weeks: median and 10–90% band of re-simulated trials (when the
    scenario is known), and each design point's time to randomise N over the trials that did (trials table)."""

    def draw(figure, axes):
        ax = axes[0, 0]
        if run.resimulated:
            weeks = [np.sort(data.randomised_week) for data, _ in run.resimulated]
            grid = np.linspace(0.0, max(w[-1] for w in weeks), 300)
            counts = np.array([np.searchsorted(w, grid, side="right") for w in weeks])
            low, median, high = np.quantile(counts, [0.1, 0.5, 0.9], axis=0)
            ax.fill_between(grid, low, high, color=PALETTE[0], alpha=0.2, linewidth=0, label="10–90% of trials")
            ax.plot(grid, median, color=PALETTE[0], label=f"median ({len(weeks)} re-simulated trials)")
        for k, (size, times) in enumerate(_times_to_randomise(run)):
            centre = np.median(times)
            spread = [[centre - np.quantile(times, 0.1)], [np.quantile(times, 0.9) - centre]]
            ax.errorbar(
                [centre], [size], xerr=spread, fmt="o", color="black", capsize=3, markersize=4,
                label="time to randomise N: median, 10–90% (simulated trials that randomised N)" if k == 0 else None,
            )  # fmt: skip
        ax.set_xlabel("calendar weeks since the first site could open")
        ax.set_ylabel("patients randomised")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.legend(loc="upper left")

    if run.resimulated:
        n = run.points[run.largest]["sample_size"]
        source = (
            f"Curve and band: the first {len(run.resimulated)} trials of N = {n} simulated again from their seeds; "
            "points: trials.parquet."
        )
    else:
        source = "Points: trials.parquet (the cumulative curves need the scenario, which this run did not store)."
    caption = f"Recruitment over calendar time. {source}"
    return render("recruitment", caption, draw, size=(9.0, 3.4))


def dropout_figure(run: Run) -> Figure:
    """Dropout by reason per arm at the largest design point (summary)."""
    point = run.points[run.largest]
    by_arm = point["dropout_by_reason"]
    names = dict.fromkeys(reason for per_arm in by_arm.values() for reason in per_arm)
    reasons = [reason for reason in names if any(per_arm.get(reason) for per_arm in by_arm.values())]

    def draw(figure, axes):
        ax = axes[0, 0]
        arms = list(by_arm)
        left = np.zeros(len(arms))
        for j, reason in enumerate(reasons):
            share = as_float([by_arm[arm].get(reason) for arm in arms])
            share = np.nan_to_num(share) * 100
            ax.barh(arms, share, left=left, color=PALETTE[(j + 1) % len(PALETTE)], label=reason.replace("_", " "))
            left += share
        ax.invert_yaxis()
        ax.set_xlabel("dropped out before the primary endpoint (% of randomised)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    caption = f"Dropout by reason and arm at N = {point['sample_size']}. Source: summary.json."
    return render("dropout", caption, draw, size=(9.0, 0.5 + 0.42 * len(by_arm) + 0.6))


def adverse_events_figure(run: Run) -> Figure:
    """Observed and assumed AE incidence per arm at the largest design point (summary); events an arm does not
    record are left out."""
    point = run.points[run.largest]
    assumed = {arm["name"]: arm["adverse_event_incidence"] for arm in run.summary["arms"]}
    observed = point["adverse_events"]
    events = list(dict.fromkeys(e for arm in observed for e in observed[arm] if e in assumed.get(arm, {})))
    arms = [arm for arm in observed if assumed.get(arm)]
    colour = colours(run.arm_names)
    height = 0.8 / max(len(arms), 1)

    def draw(figure, axes):
        ax = axes[0, 0]
        for a, arm in enumerate(arms):
            y = np.arange(len(events)) + (a - (len(arms) - 1) / 2) * height
            recorded = np.array([e in assumed[arm] for e in events])
            seen = np.array([observed[arm].get(e) or 0.0 for e in events]) * 100
            expected = np.array([assumed[arm].get(e, np.nan) for e in events]) * 100
            ax.barh(y[recorded], seen[recorded], height=height, color=colour[arm], label=arm)
            ax.plot(expected[recorded], y[recorded], "|", color="black", markersize=7)
        ax.plot([], [], "|", color="black", label="assumed incidence")
        ax.set_yticks(range(len(events)), ["any TEAE" if e == "any_teae" else e.replace("_", " ") for e in events])
        ax.invert_yaxis()
        ax.set_xlabel("patients with the event (% of randomised)")
        ax.legend(loc="lower right")

    caption = (
        f"Adverse events per arm at N = {point['sample_size']}: observed while on study (bars) and the incidence "
        "assumed by the primary endpoint (ticks); events after dropout are not observed. Source: summary.json."
    )
    return render("adverse-events", caption, draw, size=(9.0, 1.0 + 0.16 * len(events) * max(len(arms), 1)))


def resources_figure(run: Run) -> Figure:
    """Patients waiting and mean waits per trial for each resource and design point (trials table)."""
    names = list(dict.fromkeys(name for point in run.points for name in point.get("resources", {})))

    def draw(figure, axes):
        for r, name in enumerate(names):
            _boxes(axes[r, 0], run, f"{name}.patients_waiting", "patients waiting")
            _boxes(axes[r, 1], run, f"{name}.mean_wait_weeks", "mean wait (weeks)")
            axes[r, 0].set_title(f"{name}: patients who waited for a course slot")
            axes[r, 1].set_title(f"{name}: mean wait per trial")

    caption = (
        "Waiting for a treatment slot per trial and design point: boxes are quartiles, whiskers the 10th–90th "
        "percentiles. Source: trials.parquet."
    )
    return render("resources", caption, draw, size=(9.0, 2.9 * len(names)), grid=(len(names), 2))
