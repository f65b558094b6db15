"""Every user mistake gives a short message naming the file and field, exit code 2 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ANALYSIS, SCENARIOS, scenario_dict
from trialsim.cli import app
from trialsim.exceptions import ScenarioError
from trialsim.spec.loading import load_design

runner = CliRunner()


def write(tmp_path: Path, data, name="scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def with_plan(**overrides):
    return scenario_dict(analysis_plan=str(ANALYSIS / "ancova_vague.yaml"), **overrides)


BAD_SCENARIOS = {
    "unknown key": (with_plan(sample_sise=100), ["sample_sise", "unknown field"]),
    "negative SD": (with_plan(outcome={"sd_change": -15}), ["outcome.sd_change", "greater than 0"]),
    "allocation of the wrong length": (with_plan(allocation=[1, 1, 1]), ["allocation", "one whole number per arm"]),
    "visits not increasing": (with_plan(visits_weeks=[0, 4, 2, 6]), ["visits_weeks", "strictly increasing"]),
    "endpoint not a visit": (with_plan(primary_endpoint={"week": 5}), ["primary_endpoint.week", "scheduled visit"]),
    "probability above 1": (with_plan(dropout={"fraction": 1.5}), ["dropout.fraction", "less than or equal to 1"]),
    "screen failure negative": (
        with_plan(recruitment={"sites": 2, "rate_per_site_per_week": 1, "screen_failure": -0.1}),
        ["recruitment.screen_failure", "greater than or equal to 0"],
    ),
    "no control arm": (
        with_plan(arms=[{"name": "a", "effect": {"points": 1}}, {"name": "b", "effect": {"points": 2}}]),
        ["arms", "exactly one arm"],
    ),
    "effect of the wrong type": (
        with_plan(arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"points": "large"}}]),
        ["arms[1].effect.points", "valid number"],
    ),
    "effect given twice": (
        with_plan(arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"points": 3, "smd": 0.2}}]),
        ["arms[1].effect", "exactly one"],
    ),
    "block size not a multiple": (
        with_plan(recruitment={"sites": 2, "rate_per_site_per_week": 1, "block_size": 3}),
        ["recruitment.block_size", "multiple"],
    ),
    "sample size too small": (with_plan(sample_size=[2, 100]), ["sample_size", "between 4 and 100000"]),
    "missing required field": (
        {k: v for k, v in with_plan().items() if k != "recruitment"},
        ["recruitment", "required field is missing"],
    ),
    "plan path that does not exist": (
        scenario_dict(analysis_plan="no/such/plan.yaml"),
        ["analysis_plan", "no analysis-plan file"],
    ),
    "not a finite number": (with_plan(outcome={"sd_change": float("inf")}), ["outcome.sd_change", "finite number"]),
    "inclusion threshold above nearly everyone": (
        with_plan(population={"inclusion_min_panss": 200}),
        ["population.inclusion_min_panss", "only 1.6e-07 of the distribution N(98, 20²)", "at least 0.001"],
    ),
    "baseline SD below one point": (
        with_plan(population={"baseline_panss": {"mean": 98, "sd": 0.5}}),
        ["population.baseline_panss.sd = 0.5", "at least 1 PANSS point"],
    ),
    "age window outside the distribution": (
        with_plan(population={"age": {"mean": 40, "sd": 1, "min": 18, "max": 20}}),
        ["population.age", "between age.min and age.max"],
    ),
    "subscale SD wider than any window": (
        with_plan(population={"positive": {"mean": 23, "sd": 1e6}}),
        ["population.positive", "within the subscale's 7–49"],
    ),
    "SD of change wider than the scale": (
        with_plan(outcome={"sd_change": 500}),
        ["outcome.sd_change = 500", "more than the scale's width (180 points)"],
    ),
    "SD of change too large to square": (
        with_plan(outcome={"sd_change": 1e300}),
        ["outcome.sd_change = 1e+300", "more than the scale's width"],
    ),
    "effect larger than the scale": (
        with_plan(
            outcome={"sd_change": 40},
            arms=[{"name": "p", "control": True}, {"name": "d", "effect": {"smd": 5}}],
        ),
        ["arms[1].effect = 200", "more than the scale's width"],
    ),
    "recruitment slower than the horizon": (
        with_plan(recruitment={"sites": 5, "rate_per_site_per_week": 1e-4}),
        ["recruitment:", "would take about 8.14e+04 weeks", "recruitment.horizon_weeks = 1040"],
    ),
    "screening hundreds of thousands": (
        with_plan(recruitment={"sites": 5, "rate_per_site_per_week": 1, "screen_failure": 0.9999}),
        ["recruitment.screen_failure", "screening about 400,000"],
    ),
    "impossible screening rate": (
        with_plan(recruitment={"sites": 5, "rate_per_site_per_week": 5000}),
        ["recruitment.rate_per_site_per_week = 5000", "at most 1000"],
    ),
    "nobody completes": (
        with_plan(dropout={"fraction": 0.99}),
        ["arms[0]", "arm 'placebo' would have about 0.2 completers at sample size 40", "at least 2"],
    ),
    "allocation leaves an arm empty": (
        with_plan(allocation=[1, 30]),
        ["arms[0]", "about 1.3 completers", "allocation share 1/31"],
    ),
    "follow-up longer than 20 years": (
        with_plan(visits_weeks=[0, 2, 6, 2000]),
        ["visits_weeks = 2000", "at most week 1040"],
    ),
}

BAD_TEXT = {
    "invalid YAML": ("name: x\narms: [\n", ["invalid YAML", "line"]),
    "empty file": ("", ["file is empty"]),
    "not a mapping": ("- just\n- a list\n", ["expected a YAML mapping"]),
    "python tag (unsafe YAML)": ("name: !!python/object/apply:os.system ['echo hi']\n", ["invalid YAML"]),
}


def assert_clean_failure(result, fragments):
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_file(case, tmp_path):
    data, fragments = BAD_SCENARIOS[case]
    path = write(tmp_path, data)
    for command in (["validate", str(path)], ["run", str(path), "--trials", "2", "--out", str(tmp_path / "o")]):
        result = runner.invoke(app, command)
        assert_clean_failure(result, [str(path), *fragments])
    assert not (tmp_path / "o").exists()  # failed before any simulation


@pytest.mark.parametrize("case", sorted(BAD_TEXT))
def test_bad_yaml_text(case, tmp_path):
    text, fragments = BAD_TEXT[case]
    path = write(tmp_path, text)
    assert_clean_failure(runner.invoke(app, ["run", str(path)]), [str(path), *fragments])


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    assert_clean_failure(runner.invoke(app, ["run", str(missing)]), [str(missing), "file not found"])


def test_bad_plan_file(tmp_path):
    plan = write(tmp_path, {"name": "p", "decision": {"threshold": 1.5}, "priors": {"effect": {"sdd": 1}}}, "plan.yaml")
    result = runner.invoke(app, ["run", str(SCENARIOS / "textbook_two_arm.yaml"), "--plan", str(plan)])
    assert_clean_failure(result, [str(plan), "decision.threshold", "priors.effect.sdd", "2 problems"])


def test_all_problems_reported_together(tmp_path):
    path = write(tmp_path, with_plan(outcome={"sd_change": -1}, dropout={"fraction": 2}, colour="blue"))
    with pytest.raises(ScenarioError) as info:
        load_design(path)
    fields = {p.field for p in info.value.problems}
    assert {"outcome.sd_change", "dropout.fraction", "colour"} <= fields
    assert all(p.file == str(path) for p in info.value.problems)


def test_scenario_and_plan_problems_reported_together(tmp_path):
    """Schema problems of the scenario and of its plan in one error; likewise sanity problems and the plan's."""
    plan = write(tmp_path, {"name": "p", "decision": {"threshold": 1.5}}, "plan.yaml")
    schema = write(tmp_path, scenario_dict(analysis_plan=str(plan), dropout={"fraction": 2}), "schema.yaml")
    sanity = write(tmp_path, scenario_dict(analysis_plan="plan.yaml", outcome={"sd_change": 500}), "sanity.yaml")
    for path, field in ((schema, "dropout.fraction"), (sanity, "outcome.sd_change")):
        with pytest.raises(ScenarioError) as info:
            load_design(path)
        assert [(p.file, p.field) for p in info.value.problems] == [
            (str(path), field),
            (str(plan), "decision.threshold"),
        ]


def test_recruitment_horizon_is_configurable(tmp_path):
    """40 patients at 5 sites screening 0.005 a week (rate_cv 0.5: median total rate 19.67 × 0.005 × 0.25 a week),
    opening over weeks 0–12, take about 40 / 0.0246 + 6 ≈ 1,633 weeks."""
    slow = {"sites": 5, "rate_per_site_per_week": 0.005}
    with pytest.raises(ScenarioError, match="would take about 1.63e\\+03 weeks"):
        load_design(write(tmp_path, with_plan(recruitment=slow)))
    load_design(write(tmp_path, with_plan(recruitment={**slow, "horizon_weeks": 2000})))


def test_tiny_prior_sd_is_refused(tmp_path):
    plan = write(tmp_path, {"name": "p", "priors": {"effect": {"sd": 1e-300}}}, "plan.yaml")
    result = runner.invoke(app, ["run", "textbook_two_arm", "--plan", str(plan)])
    assert_clean_failure(result, ["priors.effect.sd", "greater than or equal to 0.001"])


def test_workers_capped_at_the_cores_available(tmp_path):
    cores = len(os.sched_getaffinity(0))
    arguments = ["run", "textbook_two_arm", "--trials", "2", "--seed", "1", "--quiet", "--out", str(tmp_path)]
    result = runner.invoke(app, [*arguments, "--workers", str(cores + 7)])
    assert result.exit_code == 0, result.output
    assert f"warning: --workers {cores + 7} is more than the {cores} cores available; using {cores}" in result.output


def test_cross_field_problems_reported_together(tmp_path):
    path = write(tmp_path, with_plan(allocation=[1, 2, 3], primary_endpoint={"week": 5}))
    with pytest.raises(ScenarioError) as info:
        load_design(path)
    assert {p.field for p in info.value.problems} == {"allocation", "primary_endpoint.week"}


@pytest.mark.parametrize(
    "arguments",
    [
        ["run", "textbook_two_arm", "--trials", "0"],
        ["run", "textbook_two_arm", "--trials", "many"],
        ["run", "textbook_two_arm", "--workers", "0"],
        ["run", "textbook_two_arm", "--seed", "-3"],
        ["run", "textbook_two_arm", "--colour"],
        ["run"],
        ["simulate-everything"],
    ],
)
def test_bad_cli_arguments(arguments):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_real_process_exit_code_and_no_traceback(tmp_path):
    """The installed entry point (python -m trialsim), not just the in-process runner."""
    path = write(tmp_path, with_plan(outcome={"sd_change": -15}))
    proc = subprocess.run([sys.executable, "-m", "trialsim", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "outcome.sd_change" in proc.stderr


def test_bundled_files_validate():
    files = [str(p) for p in sorted(SCENARIOS.glob("*.yaml")) + sorted(ANALYSIS.glob("*.yaml"))]
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(files)


def test_visit_window_too_wide(tmp_path):
    path = write(tmp_path, with_plan(visit_window_days=8))
    assert_clean_failure(runner.invoke(app, ["validate", str(path)]), ["visit_window_days", "swap order"])


def test_out_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(app, ["run", "textbook_two_arm", "--trials", "2", "--out", str(target)])
    assert_clean_failure(result, ["--out", "not a directory"])
