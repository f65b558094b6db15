"""A NUTS run through the command line: the compiling phase in the progress log, the NUTS-only parts of
summary.json and trials.parquet documented and valid, no p-value column."""

from __future__ import annotations

import json

import jsonschema
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ANALYSIS
from tests.unit.test_readme_tables import NUTS_COLUMNS, NUTS_ONLY, column_patterns, pattern_regex
from trialsim.cli import app
from trialsim.spec.json_schema import json_schema

pytestmark = pytest.mark.mcmc


@pytest.fixture(scope="module")
def nuts_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nuts")
    plan = yaml.safe_load((ANALYSIS / "ancova_nuts.yaml").read_text())
    plan["sampler"] = {"draws": 300, "tune": 300, "chains": 1, "ess_min": 50}
    (root / "plan.yaml").write_text(yaml.safe_dump(plan))
    result = CliRunner().invoke(app, ["run", "textbook_two_arm", "--plan", str(root / "plan.yaml"), "--trials", "2",
                                      "--seed", "1", "--workers", "1", "--set", "sample_size=40", "--out",
                                      str(root / "out")])
    assert result.exit_code == 0, result.output
    return result, root / "out"


def test_progress_names_the_compiling_phase(nuts_run):
    result, _ = nuts_run
    assert "simulating textbook_two_arm: 2 trials (compiling the model first)" in result.stderr.splitlines()


def test_summary_validates_with_its_nuts_part(nuts_run):
    _, out = nuts_run
    summary = json.loads((out / "summary.json").read_text())
    jsonschema.Draft202012Validator(json_schema("summary")).validate(summary)
    assert set(summary["nuts"]) == {path.split(".")[1] for path in NUTS_ONLY if "." in path}


def test_trials_have_the_documented_nuts_columns_and_no_p_value(nuts_run):
    _, out = nuts_run
    columns = pd.read_parquet(out / "trials.parquet").columns
    assert not any(column.endswith(".p_value") for column in columns)
    patterns = column_patterns()
    assert NUTS_COLUMNS <= set(patterns)
    for pattern in NUTS_COLUMNS:
        assert any(pattern_regex(pattern, ["active"], []).fullmatch(column) for column in columns), pattern
