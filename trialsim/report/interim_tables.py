"""Tables of the interim looks of an adaptive design, from the summary dict alone: per look the probability it
happened and of stopping there (efficacy, futility, cumulatively) with MCSE; N and duration with and without early
stops; the allocation achieved; the estimate by stopping look; the efficacy thresholds used
(``design_points[*].adaptive``, ``.thresholds`` and the comparisons' ``estimate_by_stopping_look``)."""

from __future__ import annotations

from typing import Any

from trialsim.report.content import Table
from trialsim.report.numbers import label, number
from trialsim.report.run import comparison_label, effect_unit

NO_EFFICACY_STOP = "no efficacy stop"


def _size(summary: dict[str, Any], p: int):
    return number(summary, ("design_points", p, "sample_size"), "integer")


#: Columns of the looks table: summary field of a look, heading, format.
LOOK_COLUMNS = (
    ("look", "look", "integer"),
    ("reached", "reached", "probability"),
    ("stop_efficacy", "stop: efficacy", "probability"),
    ("stop_efficacy_mcse", "MCSE", "mcse"),
    ("stop_futility", "futility", "probability"),
    ("stop_futility_mcse", "MCSE", "mcse"),
    ("stopped_by_now", "stopped by this look", "probability"),
    ("stopped_by_now_mcse", "MCSE", "mcse"),
    ("week", "cut-off week", "weeks"),
    ("n_randomised", "randomised", "mean"),
    ("n_completed", "completers", "mean"),
)


def looks_table(summary: dict[str, Any]) -> Table:
    """Per design point and look: how often it happened, stopping for efficacy / futility and cumulatively (each
    with its MCSE), and its mean cut-off week, patients randomised and completers."""
    rows = [
        [_size(summary, p)]
        + [number(summary, ("design_points", p, "adaptive", "looks", j, name), kind) for name, _, kind in LOOK_COLUMNS]
        for p, point in enumerate(summary["design_points"])
        for j, _ in enumerate(point.get("adaptive", {}).get("looks", []))
    ]
    header = ["N"] + [heading for _, heading, _ in LOOK_COLUMNS]
    caption = (
        "Interim looks: probability that each look happened and that the trial stopped there for efficacy or for "
        "futility, and by this look in all, with MCSEs; the mean calendar week of its data cut-off and the patients "
        "randomised and completed by then (means over the trials that reached it)"
    )
    return Table("interim-looks", caption, header, rows)


def stopping_size_table(summary: dict[str, Any]) -> Table:
    """Per design point: patients randomised over all trials and over the trials stopped early, and the duration."""
    header = ["N", "", "share of trials", "MCSE", "mean", "MCSE", "median", "90%"]
    rows = []
    for p, point in enumerate(summary["design_points"]):
        if "adaptive" not in point:
            continue
        at = ("design_points", p, "adaptive")
        everyone = [label("all"), label("")]
        stopped = [number(summary, at + ("stopped_early",), "probability")]
        stopped.append(number(summary, at + ("stopped_early_mcse",), "mcse"))
        for what, share, field, kind in (
            ("patients randomised, all trials", everyone, "n_randomised", "mean"),
            ("patients randomised, trials stopped early", stopped, "n_at_stop", "mean"),
            ("duration (weeks), all trials", everyone, "duration_weeks", "weeks"),
        ):
            spread = [number(summary, at + (field, stat), kind) for stat in ("mean", "mean_mcse", "median", "p90")]
            rows.append([_size(summary, p), label(what)] + share + spread)
    caption = (
        "Patients randomised and trial duration with interim looks (E[N] is the mean over all trials; a stopped "
        "trial randomises nobody after its stop; duration runs to the last patient's last visit)"
    )
    return Table("interim-n-duration", caption, header, rows)


def allocation_table(summary: dict[str, Any]) -> Table:
    """Per design point: the share of all randomised patients each arm received."""
    arms = [arm["name"] for arm in summary["arms"]]
    rows = [
        [_size(summary, p)]
        + [number(summary, ("design_points", p, "adaptive", "allocation", arm), "percent") for arm in arms]
        for p, point in enumerate(summary["design_points"])
        if "adaptive" in point
    ]
    caption = "Allocation achieved: each arm's share of all patients randomised (pooled over the simulated trials)"
    return Table("interim-allocation", caption, ["N"] + arms, rows)


def estimate_by_look_table(summary: dict[str, Any]) -> Table:
    """Per design point, comparison and stopping look: trials, mean estimate at stopping and its bias (± MCSE)."""
    rows = []
    for p, point in enumerate(summary["design_points"]):
        for c, comparison in enumerate(point["comparisons"]):
            at = ("design_points", p, "comparisons", c)
            for j in range(len(comparison.get("estimate_by_stopping_look", []))):
                by = at + ("estimate_by_stopping_look", j)
                rows.append(
                    [
                        _size(summary, p),
                        label(comparison_label(comparison)),
                        number(summary, by + ("stop_look",), "integer"),
                        number(summary, by + ("trials",), "integer"),
                        number(summary, at + ("true_effect",), "effect"),
                        number(summary, by + ("mean_estimate",), "effect"),
                        number(summary, by + ("bias",), "signed"),
                        number(summary, by + ("bias_mcse",), "mcse"),
                    ]
                )
    header = ["N", "comparison", "stopped at look", "trials", "true effect", "mean estimate", "bias", "MCSE"]
    caption = (
        f"Estimate of the analysis that decided the trial, by the look at which it stopped ({effect_unit(summary)}; "
        "look 0: the trial ran to the final analysis). Conditional on where it stopped the estimate is biased — "
        "upwards after an efficacy stop, downwards after a futility stop, and a look's mean mixes both — even when "
        "it is nearly unbiased over all trials"
    )
    return Table("interim-estimates", caption, header, rows)


def thresholds_table(summary: dict[str, Any]) -> Table:
    """Per design point: the efficacy threshold of each look and of the final analysis."""
    points = [(p, point) for p, point in enumerate(summary["design_points"]) if "thresholds" in point]
    looks = max(len(point["thresholds"]["looks"]) for _, point in points)
    rows = [
        [_size(summary, p)]
        + [
            number(summary, ("design_points", p, "thresholds", "looks", j), "threshold", NO_EFFICACY_STOP)
            for j in range(looks)
        ]
        + [number(summary, ("design_points", p, "thresholds", "final"), "threshold")]
        for p, point in points
    ]
    caption = (
        "Efficacy thresholds γ used: an analysis succeeds for an arm when P(effect > margin | data) ≥ γ (for a "
        "frequentist plan, 1 − one-sided p ≥ γ); at a look, success stops the trial for efficacy"
    )
    return Table("interim-thresholds", caption, ["N"] + [f"look {k + 1}" for k in range(looks)] + ["final"], rows)
