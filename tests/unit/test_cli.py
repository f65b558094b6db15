"""The command line end to end on every bundled scenario (few trials): outputs, schema, compare."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from trialsim.cli import app

runner = CliRunner()
BUNDLED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_runs(name, tmp_path):
    result = runner.invoke(
        app, ["run", name, "--trials", "12", "--seed", "1", "--workers", "1", "--out", str(tmp_path), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("scenario", "seed", "trials", "design_points", "provenance", "arms", "analysis"):
        assert key in summary
    assert summary["provenance"]["versions"]["trialsim"]
    for point in summary["design_points"]:
        for key in ("sample_size", "expected_n", "duration_weeks", "comparisons"):
            assert key in point
        assert set(point["duration_weeks"]) == {"median", "p90"}
        for comparison in point["comparisons"]:
            for key in (
                "arm",
                "control",
                "true_effect",
                "power",
                "power_mcse",
                "mean_estimate",
                "bias",
                "rmse",
                "coverage",
            ):
                assert key in comparison
            if summary["assurance"]:
                assert 0 <= comparison["assurance"] <= 1
    trials = pd.read_parquet(tmp_path / "trials.parquet")
    modes = 2 if summary["assurance"] else 1
    assert len(trials) == 12 * len(summary["design_points"]) * modes


def test_compare_side_by_side(tmp_path):
    result = runner.invoke(
        app,
        [
            "compare",
            "aripiprazole_augmentation",
            "rtms_vs_sham_limited_chairs",
            "--trials",
            "10",
            "--seed",
            "2",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "aripiprazole_augmentation",
        "rtms_vs_sham_limited_chairs",
        "power",
        "assurance",
        "rtms_chair: sessions",
        "most frequent AE",
        "duration",
    ):
        assert text in result.output, text
    assert (tmp_path / "aripiprazole_augmentation" / "summary.json").exists()


def test_compare_bad_scenario_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = runner.invoke(app, ["compare", "textbook_two_arm", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "arms" in result.output


def test_unknown_intervention_named_with_suggestion(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        (SCENARIOS / "aripiprazole_augmentation.yaml")
        .read_text()
        .replace("intervention: aripiprazole_augmentation", "intervention: aripiprazol")
        .replace("../analysis/ancova_vague.yaml", str(SCENARIOS.parent / "analysis" / "ancova_vague.yaml"))
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "arms[1].intervention" in result.output and "aripiprazole_augmentation" in result.output


def test_plan_must_fit_the_endpoint(tmp_path):
    result = runner.invoke(app, ["run", "ect_augmentation_vs_tau", "--plan", "ancova_vague", "--trials", "2"])
    assert result.exit_code == 2
    assert "responder" in result.output and "Traceback" not in result.output


def test_stress_cross_product(tmp_path):
    result = runner.invoke(
        app,
        [
            "stress",
            "textbook_two_arm",
            "textbook_two_arm_null",
            "--plans",
            "ancova_vague",
            "--plans",
            "ancova_ttest",
            "--trials",
            "30",
            "--seed",
            "3",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("(type I)") == 2 and result.output.count("(power)") == 2
    assert (tmp_path / "textbook_two_arm_null__ancova_ttest" / "summary.json").exists()


def test_stress_flat_prior_bayes_equals_t_test(tmp_path):
    """The vague conjugate plan and the frequentist t-test make identical decisions on the same trials."""
    result = runner.invoke(
        app,
        [
            "stress",
            "textbook_two_arm",
            "--plans",
            "ancova_vague",
            "--plans",
            "ancova_ttest",
            "--trials",
            "50",
            "--seed",
            "5",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    bayes = pd.read_parquet(tmp_path / "textbook_two_arm__ancova_vague" / "trials.parquet")
    freq = pd.read_parquet(tmp_path / "textbook_two_arm__ancova_ttest" / "trials.parquet")
    assert (bayes["active.success"] == freq["active.success"]).all()
    assert (abs(bayes["active.estimate"] - freq["active.estimate"]) < 1e-8).all()


def test_per_trial_engine_refuses_subscale_endpoint():
    result = runner.invoke(app, ["run", "rtms_vs_sham_limited_chairs", "--plan", "ancova_ttest", "--trials", "2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "primary_endpoint.measure" in result.output
