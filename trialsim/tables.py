"""Terminal tables of adaptive designs and threshold calibrations (rich), from the summary dicts."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def looks_table(point: dict[str, Any]) -> Table:
    """Per interim look: how often it happened, stopping probabilities (± MCSE), when and on how many patients."""
    adaptive = point["adaptive"]
    table = Table(title=f"N = {point['sample_size']}: interim looks", title_justify="left")
    for column in ("look", "reached", "stop eff.", "stop fut.", "stopped by", "week", "randomised", "completers"):
        table.add_column(column, justify="right")
    for look in adaptive["looks"]:
        table.add_row(
            str(look["look"]),
            f"{look['reached']:.3f}",
            f"{look['stop_efficacy']:.3f} ± {look['stop_efficacy_mcse']:.3f}",
            f"{look['stop_futility']:.3f} ± {look['stop_futility_mcse']:.3f}",
            f"{look['stopped_by_now']:.3f}",
            f"{look['week']:.1f}",
            f"{look['n_randomised']:.0f}",
            f"{look['n_completed']:.0f}",
        )
    return table


def adaptive_lines(point: dict[str, Any]) -> list[str]:
    """N, duration, allocation and the estimate by stopping look, as short lines."""
    adaptive = point["adaptive"]
    n, weeks = adaptive["n_randomised"], adaptive["duration_weeks"]
    lines = [
        f"N randomised: mean {n['mean']:.0f} ± {n['mean_mcse']:.1f}, median {n['median']:.0f}, p90 {n['p90']:.0f}; "
        f"stopped early {adaptive['stopped_early']:.1%}",
        f"duration (weeks): mean {weeks['mean']:.1f}, median {weeks['median']:.1f}, p90 {weeks['p90']:.1f}",
        "allocation: " + ", ".join(f"{arm} {share:.1%}" for arm, share in adaptive["allocation"].items()),
    ]
    for comparison in point["comparisons"]:
        parts = [
            f"{'final' if row['stop_look'] == 0 else 'look ' + str(row['stop_look'])} {row['bias']:+.2f}"
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


def calibration_table(calibration, verified: dict[str, float] | None = None) -> Table:
    """Calibrated thresholds per analysis with their Monte Carlo 95% interval."""
    table = Table(
        title=f"calibrated thresholds ({calibration.shape}) for type I error {calibration.target:g} · N = "
        f"{calibration.sample_size} · {calibration.trials} null trials · seed {calibration.seed}",
        title_justify="left",
    )
    for column in ("analysis", "threshold", "95% MC interval"):
        table.add_column(column, justify="right")
    count = len(calibration.thresholds)
    for j, (value, low, high) in enumerate(
        zip(calibration.thresholds, calibration.thresholds_low, calibration.thresholds_high)
    ):
        label = "final" if j == count - 1 else f"look {j + 1}"
        table.add_row(label, f"{value:.5f}", f"{low:.5f} – {high:.5f}")
    return table


def size_lines(result, scenario) -> str:
    """The answer of a size search in a few lines: value, metric ± MCSE, curve, cost."""
    what = {"sample_size": "total N", "sites": "sites", "rate": "screening rate per site per week"}[result.search]
    value = f"{result.value:,.0f}" if result.search != "rate" else f"{result.value:.3f}"
    a, b = result.curve
    lines = [
        f"{scenario.name}: {what} = {value} for {result.target.describe()}",
        f"  at that value: {result.target.kind} {result.metric:.3f} ± {result.metric_mcse:.3f} (MCSE, "
        f"{result.verification_trials:,} fresh trials; the target is below the one-sided 95% Monte Carlo bound)",
        f"  E[N] {result.expected_n:.0f}, completers {result.expected_completers:.1f}, duration median "
        f"{result.duration_weeks['median']:.1f} weeks, p90 {result.duration_weeks['p90']:.1f}",
        f"  fitted curve Φ({a:.3f} + {b:.3f}·ln x) over {len(result.points)} simulated values",
        f"  {result.trials_spent:,} simulated trials (a grid of the same resolution: {result.grid_trials:,}); "
        f"seed {result.seed}",
    ]
    return "\n".join(lines + [f"  note: {note}" for note in result.notes])
