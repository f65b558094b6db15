"""Terminal output of runs, comparisons, stress tests, interim looks, threshold calibrations and size searches.

Everything is built from the summary dicts as rich renderables sized at print time (:mod:`trialsim.layout`): a
number is never cut, whatever the terminal's width. Text from user files (names of arms, events, resources) is
plain text, never markup.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.text import Text

from trialsim.layout import Column, FittedTable
from trialsim.spec.summary import effect_unit
from trialsim.text import plural

if TYPE_CHECKING:
    from trialsim.results import SimulationResults


def _is_null(comparison: dict[str, Any]) -> bool:
    return abs(comparison["true_effect"]) < 1e-12


def _pm(value: float | None, mcse: float | None, spec: str = ".3f") -> str:
    """``value ± mcse`` (the MCSE unsigned); "—" for an undefined value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if mcse is None or (isinstance(mcse, float) and math.isnan(mcse)):
        return format(value, spec)
    return f"{value:{spec}} ± {mcse:{spec.lstrip('+')}}"


def _num(value: float | None, spec: str) -> str:
    """A formatted number; "—" when undefined (null in summary.json)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def any_success(results: SimulationResults, index: int) -> tuple[float, float] | None:
    """P(at least one arm succeeds) at design point ``index`` with its MCSE, for several active arms (None for one):
    the summary's value when it records one, else counted from the trials."""
    point = results.summary["design_points"][index]
    if len(point["comparisons"]) < 2:
        return None
    if "any_success" in point:
        return point["any_success"], point["any_success_mcse"]
    table = results.trials
    rows = table[table["design_point"] == index]
    if "effect_mode" in rows:
        rows = rows[rows["effect_mode"] == "point"]
    columns = [f"{comparison['arm']}.success" for comparison in point["comparisons"]]
    rate = float(rows[columns].any(axis=1).mean())
    return rate, math.sqrt(rate * (1 - rate) / len(rows))


def control_name(summary: dict[str, Any]) -> str:
    return next(arm["name"] for arm in summary["arms"] if arm["control"])


# --- trialsim run -------------------------------------------------------------------------------------------------


def comparisons_table(summary: dict[str, Any]) -> FittedTable:
    """One row per design point and active arm: true effect, power, assurance, estimate quality."""
    assurance = summary.get("assurance", False)
    columns = [Column("N", key=True), Column("arm", "left", key=True), Column("true"), Column("power ± MCSE")]
    if assurance:
        columns.append(Column("assurance ± MCSE"))
    columns += [Column("mean est"), Column("bias"), Column("RMSE"), Column("coverage")]
    rows = []
    for point in summary["design_points"]:
        for i, c in enumerate(point["comparisons"]):
            row = [str(point["sample_size"]) if i == 0 else "", c["arm"], f"{c['true_effect']:.2f}",
                   _pm(c["power"], c["power_mcse"])]
            if assurance:
                row.append(_pm(c.get("assurance"), c.get("assurance_mcse")))
            row += [_num(c["mean_estimate"], ".2f"), _num(c["bias"], "+.2f"), _num(c["rmse"], ".2f"),
                    _num(c["coverage"], ".3f")]
            rows.append(row)
    title = (
        f"{summary['scenario']} · plan {summary['analysis_plan']} · {plural(summary['trials'], 'trial')} per "
        f"design point · seed {summary['seed']}"
    )
    return FittedTable(columns, rows, title)


def design_points_table(results: SimulationResults) -> FittedTable:
    """One row per design point: patients, dropout, duration and, with several arms, P(at least one succeeds)."""
    points = results.summary["design_points"]
    several = any(len(point["comparisons"]) > 1 for point in points)
    columns = [Column("N", key=True), Column("E[N]"), Column("completers"), Column("dropout"),
               Column("weeks median"), Column("weeks p90")]
    if several:
        columns.append(Column("P(any arm succeeds) ± MCSE"))
    rows = []
    for index, point in enumerate(points):
        row = [str(point["sample_size"]), f"{point['expected_n']:.0f}", f"{point['expected_completers']:.1f}",
               f"{point['dropout_fraction']:.1%}", f"{point['duration_weeks']['median']:.1f}",
               f"{point['duration_weeks']['p90']:.1f}"]
        if several:
            row.append(_pm(*(any_success(results, index) or (None, None))))
        rows.append(row)
    return FittedTable(columns, rows, "design points (patients randomised, completers, dropout, duration)")


def run_output(results: SimulationResults) -> list[RenderableType]:
    """What ``trialsim run`` prints: the operating characteristics, the design points and the notes under them."""
    summary = results.summary
    decision = summary["analysis"]["decision"]
    out: list[RenderableType] = [
        comparisons_table(summary),
        Text(
            f"Effects vs {control_name(summary)} in {effect_unit(summary)}, positive = improvement. Success: "
            f"P(effect > {decision['margin']:g}) ≥ {decision['threshold']:g}. Analysis: "
            f"{summary['analysis']['note']}."
        ),
        design_points_table(results),
    ]
    last = summary["design_points"][-1]
    safety = safety_lines(last)
    if safety:
        out.append(Text(f"At N = {last['sample_size']} (per patient randomised): " + "; ".join(safety)))
    for point in summary["design_points"]:
        if "adaptive" in point:
            out.append(looks_table(point))
            out += [Text(line) for line in adaptive_lines(point)]
    policy = summary["analysis"].get("failed_fits", {}).get("decision", "")
    decides = "count as no success" if "no_success" in policy else "keep their decisions"
    for point in summary["design_points"]:
        failed = point.get("failed_diagnostics_count")
        if failed:
            out.append(Text(
                f"N = {point['sample_size']}: {plural(failed, 'fit')} ({point['failed_diagnostics']:.1%}) failed "
                f"their diagnostics ({point['fits_failed']} raised): left out of mean est, bias, RMSE and "
                f"coverage; they {decides} (sampler.failed_fit).",
                style="yellow",
            ))
    impossible = sum(c["analyses_impossible"] for p in summary["design_points"] for c in p["comparisons"])
    if impossible:
        out.append(Text(f"{plural(impossible, 'analysis', 'analyses')} impossible (an arm without completers), "
                        "counted as failures.", style="yellow"))
    return out


def safety_lines(point: dict[str, Any]) -> list[str]:
    """Short text on AEs, resources and monitoring of one design point."""
    lines = []
    for arm, events in point.get("adverse_events", {}).items():
        recorded = {k: v for k, v in events.items() if v is not None}
        top = sorted(((v, k) for k, v in recorded.items() if k != "any_teae" and v > 0), reverse=True)[:3]
        if top:
            lines.append(f"{arm} AEs " + ", ".join(f"{name} {value:.1%}" for value, name in top))
        elif events and not recorded:
            lines.append(f"{arm} AEs not recorded")
    for name, use in point.get("resources", {}).items():
        lines.append(
            f"{name}: {use.get('sessions', 0):.0f} sessions, {use.get('unit_hours', 0):.0f} h, "
            f"{use.get('patients_waiting', 0):.1f} waiting (mean wait {use.get('mean_wait_weeks', 0):.1f} wk)"
        )
    for arm, visits in point.get("monitoring_visits", {}).items():
        lines.append(f"{arm} monitoring visits {visits:.0f}")
    return lines


# --- trialsim compare ---------------------------------------------------------------------------------------------


def _compared_size(results: list[SimulationResults]) -> str:
    sizes = {result.summary["design_points"][-1]["sample_size"] for result in results}
    return f"at N = {sizes.pop()}" if len(sizes) == 1 else "each at its largest N"


#: The rows of each comparison in ``compare``, in order under the comparison's label (empty rows left out).
COMPARE_METRICS = ("true effect", "power", "type I error", "assurance", "bias / RMSE")


def compare_output(results: list[SimulationResults], trials: int, seed: int) -> FittedTable:
    """Scenarios as columns, metrics as rows (the last design point of each scenario): the design, P(any arm
    succeeds), each comparison under its label, adverse events and resources."""
    sections: list[dict[tuple[str, str], list[str]]] = [{}, {}, {}, {}, {}]

    def put(section: int, metric: str, index: int, text: str, group: str = "") -> None:
        sections[section].setdefault((metric, group), [""] * len(results))[index] = text

    for i, result in enumerate(results):
        summary = result.summary
        index = len(summary["design_points"]) - 1
        point = summary["design_points"][index]
        weeks = point["duration_weeks"]
        for metric, text in (
            ("plan", summary["analysis_plan"]),
            ("effects in", effect_unit(summary)),
            ("N planned", str(point["sample_size"])),
            ("N randomised (mean)", f"{point['expected_n']:.0f}"),
            ("completers", f"{point['expected_completers']:.1f}"),
            ("dropout", f"{point['dropout_fraction']:.1%}"),
            ("duration weeks (median / p90)", f"{weeks['median']:.1f} / {weeks['p90']:.1f}"),
        ):
            put(0, metric, i, text)
        several = any_success(result, index)
        if several is not None:
            put(1, "P(any arm succeeds)", i, _pm(*several))
        for c in point["comparisons"]:
            label = f"{c['arm']} vs {c['control']}"
            values = {
                "true effect": f"{c['true_effect']:.2f}",
                "type I error" if _is_null(c) else "power": _pm(c["power"], c["power_mcse"]),
                "assurance": _pm(c["assurance"], c["assurance_mcse"]) if "assurance" in c else "",
                "bias / RMSE": f"{_num(c['bias'], '+.2f')} / {_num(c['rmse'], '.2f')}",
            }
            put(2, label, i, "", label)
            for metric in COMPARE_METRICS:
                put(2, f"  {metric}", i, values.get(metric, ""), label)
        for arm, events in point.get("adverse_events", {}).items():
            recorded = [(k, v) for k, v in events.items() if v is not None and k != "any_teae"]
            if recorded:
                name, value = max(recorded, key=lambda kv: kv[1])
                put(3, f"{arm}: most frequent AE", i, f"{name} {value:.1%}")
            elif events:
                put(3, f"{arm}: most frequent AE", i, "not recorded")
        for name, use in point.get("resources", {}).items():
            put(4, f"{name}: sessions", i, f"{use.get('sessions', 0):.0f}")
            put(4, f"{name}: mean wait (weeks)", i, f"{use.get('mean_wait_weeks', 0):.2f}")
    columns = [Column("metric", "left", key=True)]
    columns += [Column(result.summary["scenario"], "left") for result in results]
    rows = [
        [metric, *values]
        for section in sections
        for (metric, _), values in section.items()
        if any(values) or not metric.startswith(" ")
    ]
    title = (f"{plural(len(results), 'scenario')} {_compared_size(results)} · {plural(trials, 'trial')} each · "
             f"seed {seed}")
    return FittedTable(columns, rows, title)


# --- trialsim stress ----------------------------------------------------------------------------------------------


def stress_output(results: list[SimulationResults], trials: int, seed: int) -> list[RenderableType]:
    """One table per scenario (its full name as the title), one row per plan and comparison."""
    out: list[RenderableType] = [Text(f"stress test · {plural(trials, 'trial')} per cell · seed {seed}",
                                      style="bold")]
    by_scenario: dict[str, list[SimulationResults]] = {}
    for result in results:
        by_scenario.setdefault(result.summary["scenario"], []).append(result)
    columns = [Column("plan", "left", key=True), Column("arm", "left", key=True), Column("true"),
               Column("P(success)"), Column("MCSE"), Column("bias ± MCSE"), Column("RMSE"), Column("coverage"),
               Column("failed fits")]
    for scenario, cells in by_scenario.items():
        rows = []
        for result in cells:
            point = result.summary["design_points"][-1]
            failed = point.get("failed_diagnostics")
            for i, c in enumerate(point["comparisons"]):
                rows.append([
                    result.summary["analysis_plan"] if i == 0 else "",
                    c["arm"],
                    f"{c['true_effect']:.2f}",
                    f"{c['power']:.3f} ({'type I' if _is_null(c) else 'power'})",
                    f"{c['power_mcse']:.3f}",
                    _pm(c["bias"], c["bias_mcse"], "+.2f"),
                    _num(c["rmse"], ".2f"),
                    _num(c["coverage"], ".3f"),
                    "—" if failed is None else f"{failed:.1%}",
                ])
        first = cells[0].summary
        title = (f"{scenario} · N = {first['design_points'][-1]['sample_size']} · effects vs {control_name(first)} "
                 f"in {effect_unit(first)}")
        out.append(FittedTable(columns, rows, title))
    return out


# --- interim looks, calibration, size search -----------------------------------------------------------------------


def looks_table(point: dict[str, Any]) -> FittedTable:
    """Per interim look: how often it happened, stopping probabilities (± MCSE), when and on how many patients."""
    columns = [Column("look", key=True), Column("reached"), Column("stop eff. ± MCSE"), Column("stop fut. ± MCSE"),
               Column("stopped by"), Column("week"), Column("randomised"), Column("completers")]
    rows = [
        [
            str(look["look"]),
            f"{look['reached']:.3f}",
            _pm(look["stop_efficacy"], look["stop_efficacy_mcse"]),
            _pm(look["stop_futility"], look["stop_futility_mcse"]),
            f"{look['stopped_by_now']:.3f}",
            _num(look["week"], ".1f"),
            _num(look["n_randomised"], ".0f"),
            _num(look["n_completed"], ".0f"),
        ]
        for look in point["adaptive"]["looks"]
    ]
    return FittedTable(columns, rows, f"N = {point['sample_size']}: interim looks")


def adaptive_lines(point: dict[str, Any]) -> list[str]:
    """N, duration, allocation and the estimate by stopping look, as short lines."""
    adaptive = point["adaptive"]
    n, weeks = adaptive["n_randomised"], adaptive["duration_weeks"]
    lines = [
        f"N randomised: mean {n['mean']:.0f} ± {_num(n['mean_mcse'], '.1f')}, median {n['median']:.0f}, p90 "
        f"{n['p90']:.0f}; stopped early {adaptive['stopped_early']:.1%}",
        f"duration (weeks): mean {weeks['mean']:.1f}, median {weeks['median']:.1f}, p90 {weeks['p90']:.1f}",
        "allocation: " + ", ".join(f"{arm} {share:.1%}" for arm, share in adaptive["allocation"].items()),
    ]
    for comparison in point["comparisons"]:
        parts = [
            f"{'final' if row['stop_look'] == 0 else 'look ' + str(row['stop_look'])} {_num(row['bias'], '+.2f')}"
            f" ({row['trials']})"
            for row in comparison.get("estimate_by_stopping_look", [])
        ]
        if parts:
            lines.append(f"{comparison['arm']} bias by stopping look (trials): " + ", ".join(parts))
    thresholds = point.get("thresholds")
    if thresholds:
        looks = ", ".join(f"{t:.4f}" for t in thresholds["looks"])
        lines.append(f"efficacy thresholds on P(effect > margin): looks {looks}; final {thresholds['final']:.4f}")
    return lines


def calibration_table(calibration) -> FittedTable:
    """Calibrated thresholds per analysis with their Monte Carlo 95% interval."""
    count = len(calibration.thresholds)
    rows = [
        ["final" if j == count - 1 else f"look {j + 1}", f"{value:.5f}", f"{low:.5f} – {high:.5f}"]
        for j, (value, low, high) in enumerate(
            zip(calibration.thresholds, calibration.thresholds_low, calibration.thresholds_high)
        )
    ]
    title = (
        f"calibrated thresholds ({calibration.shape}) for type I error {calibration.target:g} · N = "
        f"{calibration.sample_size} · {plural(calibration.trials, 'null trial')} · seed {calibration.seed}"
    )
    return FittedTable([Column("analysis", key=True), Column("threshold"), Column("95% MC interval")], rows, title)


def size_lines(result, scenario) -> str:
    """The answer of a size search in a few lines: value, metric ± MCSE, curve, cost."""
    what = {"sample_size": "total N", "sites": "sites", "rate": "screening rate per site per week"}[result.search]
    value = f"{result.value:,.0f}" if result.search != "rate" else f"{result.value:.3f}"
    a, b = result.curve
    lines = [
        f"{scenario.name}: {what} = {value} for {result.target.describe()}",
        f"  at that value: {result.target.kind} {result.metric:.3f} ± {result.metric_mcse:.3f} (MCSE, "
        f"{plural(result.verification_trials, 'fresh trial')}; the target is below the one-sided 95% Monte Carlo "
        "bound)",
        f"  E[N] {result.expected_n:.0f}, completers {result.expected_completers:.1f}, duration median "
        f"{result.duration_weeks['median']:.1f} weeks, p90 {result.duration_weeks['p90']:.1f}",
        f"  fitted curve Φ({a:.3f} + {b:.3f}·ln x) over {plural(len(result.points), 'simulated value')}",
        f"  {plural(result.trials_spent, 'simulated trial')} (a grid of the same resolution: "
        f"{result.grid_trials:,}); seed {result.seed}",
    ]
    return "\n".join(lines + [f"  note: {note}" for note in result.notes])
