"""The report's tables, built from the summary dict alone: the numbers of ``summary.json``, each cell pointing at
the value it shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trialsim.report.content import Cell, Table
from trialsim.report.numbers import NOT_RECORDED, label, number
from trialsim.report.run import comparison_label, effect_unit, is_null

ROLE = {True: "control", False: "active"}


def _union(mappings: list[dict[str, Any]]) -> list[str]:
    """Keys of several dicts in order of first appearance."""
    keys: dict[str, None] = {}
    for mapping in mappings:
        keys.update(dict.fromkeys(mapping))
    return list(keys)


def _readable(name: str) -> str:
    return "any TEAE" if name == "any_teae" else name.replace("_", " ")


def arms_table(summary: dict[str, Any]) -> Table:
    """What each arm resolved to: effects (points), design prior, AE discontinuation."""
    rows = []
    for i, arm in enumerate(summary["arms"]):
        at = ("arms", i)
        rows.append(
            [
                label(arm["name"]),
                label(ROLE[arm["control"]]),
                label(arm["intervention"] or "—"),
                label(arm["versus"] or "—"),
                number(summary, at + ("effect_points", "total"), "effect"),
                number(summary, at + ("effect_points", "positive"), "effect"),
                number(summary, at + ("effect_points", "negative"), "effect"),
                number(summary, at + ("design_prior_points", "mean"), "effect"),
                number(summary, at + ("design_prior_points", "sd"), "effect"),
                number(summary, at + ("effect_raw_smd",), "effect", "—"),
                number(summary, at + ("effect_used_smd",), "effect"),
                number(summary, at + ("ae_discontinuation",), "percent", "not recorded"),
            ]
        )
    header = ["arm", "role", "intervention", "versus", "effect: total", "positive", "negative"]
    header += ["design prior: mean", "sd", "SMD: evidence", "used", "AE discontinuation"]
    return Table("arms", "Arms: true effects and design priors (PANSS points, positive = improvement)", header, rows)


def operating_characteristics_table(summary: dict[str, Any]) -> Table:
    """Per design point and comparison: P(success), estimate quality and coverage, each with its MCSE."""
    assurance = any("assurance" in c for point in summary["design_points"] for c in point["comparisons"])
    header = ["N", "comparison", "true effect", "P(success)", "MCSE"]
    header += ["assurance", "MCSE"] if assurance else []
    header += ["mean estimate", "bias", "MCSE", "RMSE", "MCSE", "coverage", "MCSE", "analyses impossible"]
    failed = any("failed_fits" in c for point in summary["design_points"] for c in point["comparisons"])
    header += ["failed fits (not in estimates)"] if failed else []
    rows = []
    for p, point in enumerate(summary["design_points"]):
        for c, comparison in enumerate(point["comparisons"]):
            at = ("design_points", p, "comparisons", c)
            row = [
                number(summary, ("design_points", p, "sample_size"), "integer"),
                label(comparison_label(comparison) + (" (null: type I error)" if is_null(comparison) else "")),
                number(summary, at + ("true_effect",), "effect"),
                number(summary, at + ("power",), "probability"),
                number(summary, at + ("power_mcse",), "mcse"),
            ]
            if assurance:
                row += [number(summary, at + ("assurance",), "probability")]
                row += [number(summary, at + ("assurance_mcse",), "mcse")]
            row += [
                number(summary, at + ("mean_estimate",), "effect"),
                number(summary, at + ("bias",), "signed"),
                number(summary, at + ("bias_mcse",), "mcse"),
                number(summary, at + ("rmse",), "effect"),
                number(summary, at + ("rmse_mcse",), "mcse"),
                number(summary, at + ("coverage",), "probability"),
                number(summary, at + ("coverage_mcse",), "mcse"),
                number(summary, at + ("analyses_impossible",), "integer"),
            ]
            row += [number(summary, at + ("failed_fits",), "integer")] if failed else []
            rows.append(row)
    caption = (
        f"Operating characteristics per design point and comparison (effects in {effect_unit(summary)}); "
        "MCSE = Monte Carlo standard error"
    )
    return Table("operating-characteristics", caption, header, rows)


def assurance_table(summary: dict[str, Any]) -> Table:
    """Assurance and the distributions of true and estimated effects under the design priors."""
    header = ["N", "comparison", "assurance", "MCSE", "true effect: mean", "sd", "5%", "95%"]
    header += ["estimate: mean", "sd", "5%", "95%", "P(success | true effect > 0)"]
    rows = []
    for p, point in enumerate(summary["design_points"]):
        for c, comparison in enumerate(point["comparisons"]):
            if "assurance" not in comparison:
                continue
            at = ("design_points", p, "comparisons", c)
            row = [
                number(summary, ("design_points", p, "sample_size"), "integer"),
                label(comparison_label(comparison)),
                number(summary, at + ("assurance",), "probability"),
                number(summary, at + ("assurance_mcse",), "mcse"),
            ]
            for distribution in ("true_effect_distribution", "estimate_distribution"):
                row += [number(summary, at + (distribution, stat), "effect") for stat in ("mean", "sd", "q05", "q95")]
            row.append(number(summary, at + ("success_given_true_effect_positive",), "probability"))
            rows.append(row)
    caption = f"Assurance: true effects drawn from the design priors ({effect_unit(summary)})"
    return Table("assurance", caption, header, rows)


#: P(at least one arm succeeds) of multi-arm designs: (summary key, column header).
ANY_SUCCESS = (("any_success", "P(any arm succeeds)"), ("any_success_assurance", "assurance of any arm"))


def design_points_table(summary: dict[str, Any]) -> Table:
    """Per design point: patients, dropout, recruitment and trial duration (and, with several arms, the
    probability that at least one succeeds)."""
    header = ["N", "trials", "E[randomised]", "E[completers]", "E[screened]", "E[turned away]", "dropout"]
    header += ["recruitment weeks: median", "90%", "duration weeks: median", "90%"]
    family = [key for key, _ in ANY_SUCCESS if key in summary["design_points"][0]]
    header += [text for key, name in ANY_SUCCESS if key in family for text in (name, "MCSE")]
    rows = []
    for p, _ in enumerate(summary["design_points"]):
        at = ("design_points", p)
        rows.append(
            [
                number(summary, at + ("sample_size",), "integer"),
                number(summary, at + ("trials",), "integer"),
                number(summary, at + ("expected_n",), "mean"),
                number(summary, at + ("expected_completers",), "mean"),
                number(summary, at + ("expected_screened",), "mean"),
                number(summary, at + ("expected_turned_away",), "mean"),
                number(summary, at + ("dropout_fraction",), "percent"),
                number(summary, at + ("recruitment_weeks", "median"), "weeks"),
                number(summary, at + ("recruitment_weeks", "p90"), "weeks"),
                number(summary, at + ("duration_weeks", "median"), "weeks"),
                number(summary, at + ("duration_weeks", "p90"), "weeks"),
            ]
            + [number(summary, at + (key + suffix,), kind) for key in family
               for suffix, kind in (("", "probability"), ("_mcse", "mcse"))]
        )
    caption = "Per design point (means over simulated trials; recruitment = weeks to randomise the last patient)"
    return Table("design-points", caption, header, rows)


def _per_arm_table(
    summary: dict[str, Any], field: str, key: str, caption: str, shown: Callable[[str, str], bool]
) -> Table:
    """Rows (N, name), one column per arm, from ``design_points[*][field][arm][name]``; ``shown(arm, name)`` says
    whether a number is recorded for that arm (otherwise the cell says so)."""
    points = summary["design_points"]
    arms = _union([point.get(field, {}) for point in points])
    rows = []
    for p, point in enumerate(points):
        for name in _union(list(point.get(field, {}).values())):
            row = [number(summary, ("design_points", p, "sample_size"), "integer"), label(_readable(name))]
            for arm in arms:
                cell = number(summary, ("design_points", p, field, arm, name), "percent", NOT_RECORDED)
                if not shown(arm, name):
                    cell = Cell(NOT_RECORDED, cell.pointer, cell.value, muted=True)
                row.append(cell)
            rows.append(row)
    return Table(key, caption, ["N", ""] + arms, rows)


def dropout_table(summary: dict[str, Any]) -> Table:
    """Dropout by reason and arm, per patient randomised."""
    caption = "Dropout by reason before the primary endpoint (per patient randomised in the arm)"
    return _per_arm_table(summary, "dropout_by_reason", "dropout", caption, lambda arm, name: True)


def adverse_events_table(summary: dict[str, Any]) -> Table:
    """Observed adverse events by arm, per patient randomised; 'not recorded' where the arm has no incidence."""
    assumed = {arm["name"]: arm["adverse_event_incidence"] for arm in summary["arms"]}
    caption = (
        "Adverse events observed while on study (per patient randomised in the arm); 'not recorded': no incidence "
        "for this event and arm in the evidence library or the scenario"
    )
    return _per_arm_table(
        summary, "adverse_events", "adverse-events", caption, lambda arm, name: name in assumed.get(arm, {})
    )


def assumed_adverse_events_table(summary: dict[str, Any]) -> Table:
    """The incidences the simulation assumed per arm (by the primary endpoint): one row per event."""
    arms = summary["arms"]
    rows = [
        [label(_readable(name))]
        + [
            number(summary, ("arms", i, "adverse_event_incidence", name), "percent", NOT_RECORDED)
            for i in range(len(arms))
        ]
        for name in _union([arm["adverse_event_incidence"] for arm in arms])
    ]
    caption = "Adverse-event incidence assumed by the primary endpoint (evidence library or scenario)"
    return Table("assumed-adverse-events", caption, [""] + [arm["name"] for arm in arms], rows)


def sources_table(summary: dict[str, Any]) -> Table:
    """Where each arm's numbers come from (the evidence library entry, the scenario, or an assumption)."""
    rows = []
    for arm in summary["arms"]:
        sources = arm["sources"]
        for what, source in sources.items():
            same = what == "design_prior" and source == sources.get("effect")
            rows.append([label(arm["name"]), label(_readable(what)), label("as the effect" if same else source)])
        if arm.get("evidence_adjustments"):
            certainty = arm.get("evidence_certainty") or "not graded"
            text = f"{certainty} certainty; " + "; ".join(arm["evidence_adjustments"])
            rows.append([label(arm["name"]), label("evidence, as used"), label(text)])
    return Table("sources", "Sources of the arms' effects and design priors", ["arm", "number", "source"], rows)


RESOURCE_COLUMNS = {
    "sessions": ("sessions", "whole"),
    "unit_hours": ("unit hours", "whole"),
    "patients_waiting": ("patients waiting", "mean"),
    "mean_wait_weeks": ("mean wait (weeks)", "weeks"),
    "max_wait_weeks": ("max wait (weeks)", "weeks"),
}


def resources_table(summary: dict[str, Any]) -> Table:
    """Treatment-resource use and waits per design point (means per trial)."""
    rows = []
    for p, point in enumerate(summary["design_points"]):
        for name in point.get("resources", {}):
            row = [number(summary, ("design_points", p, "sample_size"), "integer"), label(name)]
            row += [
                number(summary, ("design_points", p, "resources", name, metric), kind)
                for metric, (_, kind) in RESOURCE_COLUMNS.items()
            ]
            rows.append(row)
    header = ["N", "resource"] + [title for title, _ in RESOURCE_COLUMNS.values()]
    return Table("resources", "Treatment resources: use and waits per trial (means over trials)", header, rows)


def monitoring_table(summary: dict[str, Any]) -> Table:
    """Blood-monitoring visits per trial and arm."""
    points = summary["design_points"]
    arms = _union([point.get("monitoring_visits", {}) for point in points])
    rows = [
        [number(summary, ("design_points", p, "sample_size"), "integer")]
        + [number(summary, ("design_points", p, "monitoring_visits", arm), "whole") for arm in arms]
        for p, point in enumerate(points)
        if "monitoring_visits" in point
    ]
    return Table("monitoring", "Monitoring visits per trial (means over trials)", ["N"] + arms, rows)


def diagnostics_table(summary: dict[str, Any]) -> Table:
    """Fits failing their convergence diagnostics (counted as they are, never dropped)."""
    rows = [
        [
            number(summary, ("design_points", p, "sample_size"), "integer"),
            number(summary, ("design_points", p, "trials"), "integer"),
            number(summary, ("design_points", p, "failed_diagnostics"), "percent"),
            number(summary, ("design_points", p, "failed_diagnostics_count"), "integer"),
            number(summary, ("design_points", p, "fits_failed"), "integer"),
        ]
        for p, point in enumerate(summary["design_points"])
        if "failed_diagnostics" in point
    ]
    header = ["N", "trials", "failed diagnostics", "count", "fits that raised"]
    return Table("diagnostics", "Per-trial fits failing their diagnostics", header, rows)


def provenance_table(summary: dict[str, Any]) -> Table:
    """Seed, trials, scenario and plan with their hashes, creation time and package versions."""
    provenance = summary["provenance"]
    rows = [
        [label("seed"), number(summary, ("seed",), "integer")],
        [label("trials per design point"), number(summary, ("trials",), "integer")],
        [label("scenario"), label(summary["scenario"])],
        [label("scenario hash"), label(provenance["scenario_hash"])],
        [label("analysis plan"), label(summary["analysis_plan"])],
        [label("plan hash"), label(provenance["plan_hash"])],
        [label("created at"), label(provenance["created_at"])],
    ]
    rows += [[label(name), label(version)] for name, version in provenance["versions"].items()]
    if "nuts" in summary:
        rows.append([label("NUTS worker processes"), number(summary, ("nuts", "worker_processes"), "integer")])
        rows.append([label("NUTS model compilations"), number(summary, ("nuts", "compilations"), "integer")])
    return Table("provenance", "Provenance", ["item", "value"], rows)
