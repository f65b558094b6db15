"""Terminal output at 80 and 100 columns: every number of the summary that a table shows is printed whole (no
"…", no cut digits), no line is wider than the terminal; progress counts every trial and goes to a log as plain
lines off a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from tests.conftest import make_scenario
from tests.unit.bundled_runs import bundled_runs
from trialsim import tables
from trialsim.layout import Column, FittedTable
from trialsim.progress import TrialProgress, planned_trials
from trialsim.sizing import SizeResult, Target
from trialsim.text import plural


def render(renderables, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def whole(text: str) -> set[str]:
    """Number-like tokens as printed (signs, decimals and percent kept)."""
    return set(re.findall(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?%?", text))


def assert_fits(text: str, width: int, expected: list[str]) -> None:
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    missing = [number for number in expected if number not in whole(text)]
    assert missing == [], f"numbers cut or missing: {missing}\n{text}"


def comparison_numbers(c: dict) -> list[str]:
    numbers = [f"{c['true_effect']:.2f}", f"{c['power']:.3f}", f"{c['power_mcse']:.3f}"]
    numbers += [f"{c[k]:{spec}}" for k, spec in (("mean_estimate", ".2f"), ("bias", "+.2f"), ("rmse", ".2f"),
                                                 ("coverage", ".3f")) if c[k] == c[k]]
    if "assurance" in c:
        numbers += [f"{c['assurance']:.3f}", f"{c['assurance_mcse']:.3f}"]
    return numbers


def point_numbers(point: dict) -> list[str]:
    return [str(point["sample_size"]), f"{point['expected_n']:.0f}", f"{point['expected_completers']:.1f}",
            f"{point['dropout_fraction']:.1%}", f"{point['duration_weeks']['median']:.1f}",
            f"{point['duration_weeks']['p90']:.1f}"]


def look_numbers(point: dict) -> list[str]:
    numbers = []
    for look in point["adaptive"]["looks"]:
        numbers += [f"{look[k]:.3f}" for k in ("reached", "stop_efficacy", "stop_efficacy_mcse", "stop_futility",
                                               "stop_futility_mcse", "stopped_by_now")]
        numbers += [f"{look['week']:.1f}", f"{look['n_randomised']:.0f}", f"{look['n_completed']:.0f}"]
    return numbers


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("index", range(7), ids=lambda i: f"run{i}")
def test_run_output_keeps_every_number_whole(index, width):
    run = bundled_runs()[index]
    text = render(tables.run_output(run), width)
    expected = []
    for point in run.summary["design_points"]:
        expected += point_numbers(point)
        for comparison in point["comparisons"]:
            expected += comparison_numbers(comparison)
        if "adaptive" in point:
            expected += look_numbers(point)
    assert_fits(text, width, expected)


def test_run_output_shows_p_any_arm_success_for_several_arms():
    run = next(r for r in bundled_runs() if len(r.summary["design_points"][0]["comparisons"]) > 1)
    rows = run.trials[run.trials["design_point"] == 0]
    rate = rows[[f"{c['arm']}.success" for c in run.summary["design_points"][0]["comparisons"]]].any(axis=1).mean()
    text = render(tables.run_output(run), 80)
    assert "P(any arm" in text and f"{rate:.3f}" in whole(text)


@pytest.mark.parametrize("width", [80, 100])
def test_compare_output_keeps_every_number_whole(width):
    runs = bundled_runs()
    chosen = [runs[1], runs[2], runs[4], runs[3]]  # several arms, assurance, responder, resources
    table = tables.compare_output(chosen, 8, 1)
    text = render([table], width)
    expected = []
    for run in chosen:
        point = run.summary["design_points"][-1]
        expected += point_numbers(point)[1:]
        for c in point["comparisons"]:
            expected += [f"{c['true_effect']:.2f}", f"{c['power']:.3f}", f"{c['power_mcse']:.3f}"]
        for use in point.get("resources", {}).values():
            expected += [f"{use['sessions']:.0f}", f"{use['mean_wait_weeks']:.2f}"]
    assert_fits(text, width, expected)
    for unit in ("PANSS points", "risk difference"):
        assert unit in text
    folded = {}  # a scenario name too wide for its column is folded over lines, never cut
    for indices, widths in table.layout(width):
        folded.update(dict(zip(indices, widths)))
    for index, run in enumerate(chosen, start=1):
        name = run.summary["scenario"]
        chunks = [name[i:i + folded[index]] for i in range(0, len(name), folded[index])]
        assert all(chunk in text for chunk in chunks), (name, chunks)


@pytest.mark.parametrize("width", [80, 100])
def test_stress_output_keeps_every_number_and_name_whole(width):
    runs = bundled_runs()
    text = render(tables.stress_output(list(runs), 8, 1), width)
    expected = []
    for run in runs:
        point = run.summary["design_points"][-1]
        for c in point["comparisons"]:
            expected += [f"{c['true_effect']:.2f}", f"{c['power']:.3f}", f"{c['power_mcse']:.3f}"]
            expected += [f"{c['rmse']:.2f}", f"{c['coverage']:.3f}"]
        assert f"{run.summary['scenario']} · N = {point['sample_size']}" in text  # the title line, never cut
    assert_fits(text, width, expected)


def test_calibration_table_at_80_columns(vague_plan):
    from trialsim.calibration import calibrate

    scenario = make_scenario(sample_size=40)
    result = calibrate(scenario, vague_plan, 0.025, trials=200, seed=1)
    text = render([tables.calibration_table(result)], 80)
    expected = [f"{t:.5f}" for t in (*result.thresholds, *result.thresholds_low, *result.thresholds_high)]
    assert_fits(text, 80, expected)


def test_size_lines_at_80_columns():
    result = SizeResult(
        search="sample_size", value=212, target=Target("power", 0.8, "active"), metric=0.8231, metric_mcse=0.0071,
        verification_trials=3200, curve=(-10.123, 2.345), points=[{"x": 100.0}, {"x": 300.0}], trials_spent=9600,
        grid_trials=300_000, expected_n=212.0, expected_completers=211.4, duration_weeks={"median": 30.1, "p90": 35.2},
        seed=7,
    )
    text = render([tables.size_lines(result, make_scenario())], 80)
    assert_fits(text, 80, ["212", "0.823", "0.007", "211.4", "30.1", "35.2", "-10.123", "2.345", "9,600", "300,000"])
    assert "3,200 fresh trials" in text and "2 simulated values" in text


def test_fitted_table_stacks_columns_and_repeats_row_labels():
    columns = [Column("arm", "left", key=True)] + [Column(f"metric {i}") for i in range(8)]
    rows = [["a_rather_long_arm_name", *(f"{i}.123 ± 0.045" for i in range(8))]]
    table = FittedTable(columns, rows, "title")
    layout = table.layout(60)
    assert len(layout) > 1 and all(indices[0] == 0 for indices, _ in layout)
    text = render([table], 60)
    assert_fits(text, 60, [f"{i}.123" for i in range(8)])
    assert render([table], 300).count("a_rather_long_arm_name") == 1  # one table when it fits


def test_fitted_table_prints_names_as_text_not_markup():
    text = render([FittedTable([Column("name", "left")], [["[bold]x[/bold]"]])], 40)
    assert "[bold]x[/bold]" in text


def test_plural():
    assert plural(1, "trial") == "1 trial" and plural(2, "trial") == "2 trials"
    assert plural(1000, "analysis", "analyses") == "1,000 analyses"


# --- progress -----------------------------------------------------------------------------------------------------


def test_planned_trials_count_assurance_runs():
    scenario = make_scenario(sample_size=[40, 60], arms=[
        {"name": "placebo", "control": True},
        {"name": "drug", "effect": {"points": 6.0}, "design_prior": {"mean_smd": 0.4, "sd_smd": 0.2}},
    ])
    assert planned_trials(scenario, 100) == 200
    assert planned_trials(scenario.model_copy(update={"assurance": True}), 100) == 400


def test_progress_off_a_terminal_is_plain_lines():
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=120)
    with TrialProgress(console, compiling=True) as bar:
        task = bar.add_task("simulating x", total=100)
        for _ in range(20):
            bar.advance(task, 5)
    lines = log.getvalue().splitlines()
    assert lines[0] == "simulating x: 100 trials (compiling the model first)"
    assert len(lines) == 11 and lines[-1].startswith("simulating x: 100/100 trials (100%)")
    assert all("\x1b" not in line for line in lines)


def test_progress_on_a_terminal_names_the_compiling_phase():
    console = Console(file=io.StringIO(), force_terminal=True)
    with TrialProgress(console, compiling=True) as bar:
        task = bar.add_task("simulating x", total=10)
        assert bar.tasks[0].description == "compiling model · simulating x"
        bar.advance(task, 2)
        assert bar.tasks[0].description == "simulating x"


def test_quiet_progress_prints_nothing():
    log = io.StringIO()
    with TrialProgress(Console(file=log, force_terminal=False), quiet=True) as bar:
        bar.advance(bar.add_task("x", total=4), 4)
    assert log.getvalue() == ""
