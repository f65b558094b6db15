"""JSON Schemas from the models (``trialsim schema``): bundled files and real summary.json files validate, broken
ones do not."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ANALYSIS, SCENARIOS
from tests.unit.bundled_runs import bundled_runs
from trialsim.cli import app
from trialsim.spec.json_schema import json_schema

runner = CliRunner()


def validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_scenarios_validate(path):
    errors = [error.message for error in validator("scenario").iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("path", sorted(ANALYSIS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_plans_validate(path):
    errors = [error.message for error in validator("plan").iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["recruitment"].update(screen_failur=0.2), "Additional properties"),
        (lambda d: d["arms"][1].update(effect={"points": "large"}), "is not valid under any of the given schemas"),
        (lambda d: d.update(dropout={"fraction": 1.5}), "1.5 is greater than"),
        (lambda d: d.pop("visits_weeks"), "'visits_weeks' is a required property"),
    ],
)
def test_broken_scenarios_do_not_validate(change, words):
    data = yaml.safe_load((SCENARIOS / "textbook_two_arm.yaml").read_text())
    change(data)
    messages = [error.message for error in validator("scenario").iter_errors(data)]
    assert any(words in message for message in messages), messages


def test_summaries_of_several_runs_validate(tmp_path):
    """Fixed and group-sequential designs, several arms with adaptive allocation, assurance, resources, a
    responder endpoint, clozapine monitoring and a frequentist plan, through the files they write."""
    check = validator("summary")
    for index, run in enumerate(bundled_runs()):
        summary_path, _ = run.save(tmp_path / str(index))
        summary = json.loads(summary_path.read_text())
        assert [error.message for error in check.iter_errors(summary)] == [], run.summary["scenario"]


def test_summary_schema_is_strict_where_fixed_and_open_where_named(tmp_path):
    summary_path, _ = bundled_runs()[0].save(tmp_path)
    summary = json.loads(summary_path.read_text())
    check = validator("summary")
    point = summary["design_points"][0]
    point["adverse_events"]["any_arm_name"] = {"any_event": 0.1}  # keyed by names: open
    assert list(check.iter_errors(summary)) == []
    point["comparisons"][0]["powr"] = 0.5  # a misspelt field: refused
    assert any("powr" in error.message for error in check.iter_errors(summary))


@pytest.mark.parametrize("kind", ["scenario", "plan", "summary"])
def test_schema_command_prints_the_schema(kind):
    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_schema(kind)


def test_schema_command_refuses_an_unknown_kind():
    result = runner.invoke(app, ["schema", "scenarios"])
    assert result.exit_code == 2 and "choose one of scenario, plan, summary" in result.output
