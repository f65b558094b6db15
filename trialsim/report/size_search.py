"""The search of ``trialsim size``: the fitted probit curve with every simulated point, the target and the answer
(a figure), the search's answer and cost and its simulated points (tables read from size.json)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trialsim.report.content import SIZE_FILE, Figure, Table
from trialsim.report.drawing import PALETTE, as_float, render
from trialsim.report.numbers import label, number, show

Z95 = 1.96
SEARCHED = {
    "sample_size": "total sample size N",
    "sites": "number of sites",
    "rate": "screening rate per site per week",
}


def searched(size: dict[str, Any]) -> str:
    """What the search varied, in words."""
    return SEARCHED[size["search"]]


def value_kind(size: dict[str, Any]) -> str:
    """How a searched value is written: whole patients or sites, or a rate."""
    return "rate" if size["search"] == "rate" else "whole"


def metric_name(size: dict[str, Any]) -> str:
    """The probability the search aims at, in words."""
    target = size["target"]
    if target["kind"] == "duration":
        return f"P(duration ≤ {target['weeks']:g} weeks)"
    return f"{target['kind']} of {target['comparison']}"


def answer_text(size: dict[str, Any]) -> str:
    """The search's answer in one sentence."""
    value = show(size["value"], value_kind(size))
    return (
        f"{searched(size)} = {value} for {metric_name(size)} ≥ {size['target']['level']:g}: "
        f"{show(size['metric'], 'probability')} ± {show(size['metric_mcse'], 'mcse')} (MCSE) on "
        f"{size['verification_trials']:,} fresh trials; {size['trials_spent']:,} trials simulated in the search "
        f"(a grid of the same resolution: {size['grid_trials']:,})"
    )


def _cell(size: dict[str, Any], path: tuple[str | int, ...], kind: str):
    return number(size, path, kind, source=SIZE_FILE)


def search_table(size: dict[str, Any]) -> Table:
    """The target, the answer with its verified metric, what the search cost, and the fitted curve."""
    kind = value_kind(size)
    rows = [[label(f"target: {metric_name(size)} ≥"), _cell(size, ("target", "level"), "probability")]]
    if size["target"]["weeks"] is not None:
        rows.append([label("target duration (weeks)"), _cell(size, ("target", "weeks"), "weeks")])
    rows += [
        [label(f"answer: {searched(size)}"), _cell(size, ("value",), kind)],
        [label(f"{metric_name(size)} at the answer"), _cell(size, ("metric",), "probability")],
        [label("MCSE"), _cell(size, ("metric_mcse",), "mcse")],
        [label("verification trials (fresh seed)"), _cell(size, ("verification_trials",), "integer")],
        [label("expected patients randomised at the answer"), _cell(size, ("expected_n",), "mean")],
        [label("expected completers at the answer"), _cell(size, ("expected_completers",), "mean")],
        [label("duration at the answer (weeks): median"), _cell(size, ("duration_weeks", "median"), "weeks")],
        [label("duration at the answer (weeks): 90%"), _cell(size, ("duration_weeks", "p90"), "weeks")],
        [label("trials simulated in the search"), _cell(size, ("trials_spent",), "integer")],
        [label("trials a grid of the same resolution needs"), _cell(size, ("grid_trials",), "integer")],
        [label("fitted curve Φ(a + b·ln x): a"), _cell(size, ("curve", "a"), "coefficient")],
        [label("b"), _cell(size, ("curve", "b"), "coefficient")],
        [label("seed"), _cell(size, ("seed",), "integer")],
    ]
    caption = (
        "The search: the answer is the first value whose metric, on fresh trials, lies above the target with 95% "
        "Monte Carlo confidence (one-sided); a grid needs one verification-sized run per step of the search's "
        "resolution over the range it covered. Source: size.json."
    )
    return Table("size-search", caption, ["", "value"], rows)


def points_table(size: dict[str, Any]) -> Table:
    """Every simulated value of the search with its trials, events and observed metric."""
    rows = [
        [
            _cell(size, ("points", i, "x"), value_kind(size)),
            _cell(size, ("points", i, "trials"), "integer"),
            _cell(size, ("points", i, "events"), "integer"),
            _cell(size, ("points", i, "metric"), "probability"),
        ]
        for i in range(len(size["points"]))
    ]
    caption = (
        f"Simulated values of the search (common random numbers across values; the accepted verification is in the "
        f"table above): trials, trials meeting the target event, and the observed {metric_name(size)}. Source: "
        "size.json."
    )
    return Table("size-points", caption, [searched(size), "trials", "events", metric_name(size)], rows)


def curve_figure(size: dict[str, Any]) -> Figure:
    """The fitted curve, the simulated points with binomial 95% bars, the target, and the verified answer."""
    points = size["points"]
    x = as_float([point["x"] for point in points])
    trials = as_float([point["trials"] for point in points])
    metric = as_float([point["metric"] for point in points])
    half = Z95 * np.sqrt(metric * (1 - metric) / trials)
    bars = np.array([np.minimum(metric, half), np.minimum(1 - metric, half)])
    level = size["target"]["level"]

    def draw(figure, axes):
        ax = axes[0, 0]
        ax.plot(size["curve"]["x"], size["curve"]["fitted"], color=PALETTE[0], linewidth=1.8, label="fitted probit")
        ax.errorbar(x, metric, yerr=bars, fmt="none", color="#555555", capsize=3, linewidth=0.9)
        ax.scatter(x, metric, s=6 + 1.2 * np.sqrt(trials), color="#555555", zorder=3,
                   label="simulated (area ∝ √trials, 95% binomial bars)")  # fmt: skip
        verified = Z95 * size["metric_mcse"]
        answer = f"answer: {size['verification_trials']:,} fresh trials (±1.96 MCSE)"
        ax.errorbar([size["value"]], [size["metric"]], yerr=[[verified], [verified]], fmt="D", color=PALETTE[1],
                    capsize=4, markersize=7, zorder=4, label=answer)  # fmt: skip
        ax.axhline(level, color="#555555", linestyle=":", linewidth=1.2, label=f"target {level:g}")
        ax.axvline(size["value"], color=PALETTE[1], linestyle="--", linewidth=1)
        ax.set_xlabel(searched(size))
        ax.set_ylabel(metric_name(size))
        ax.set_ylim(max(0.0, min(metric.min(), level) - 0.1), min(1.0, max(metric.max(), level) + 0.05))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    caption = (
        f"The search's fitted curve Φ(a + b·ln x) of {metric_name(size)} against the {searched(size)}, with every "
        "simulated value (95% binomial bars, ±1.96 √(p(1 − p)/trials)), the target (dotted) and the answer "
        f"(dashed) with its verification on fresh trials (±1.96 MCSE). Source: size.json."
    )
    return render("size-curve", caption, draw, size=(9.0, 3.6))
