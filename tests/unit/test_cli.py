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


def run_row(run_dir, index, design_point, mode="point"):
    trials = pd.read_parquet(run_dir / "trials.parquet")
    at = (trials["trial"] == index) & (trials["design_point"] == design_point) & (trials["effect_mode"] == mode)
    return trials[at].iloc[0].to_dict()


def same_values(analysis_row: dict, row: dict) -> None:
    assert analysis_row.keys() == row.keys()
    for key, value in row.items():
        if isinstance(value, float) and value != value:
            assert analysis_row[key] is None, key
        else:
            assert analysis_row[key] == value, key


@pytest.mark.parametrize(
    ("name", "design_point", "mode"),
    [("textbook_two_arm", 0, "point"), ("two_arm_group_sequential", 0, "point"), ("aripiprazole_augmentation", 0,
                                                                                  "assurance")],
)
def test_trial_reruns_the_runs_row(tmp_path, name, design_point, mode):
    """`trialsim trial` simulates trial I again: its analysis equals the run's row exactly (an adaptive design and
    an assurance twin included), from the run directory or from the scenario and seed."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["run", name, "--trials", "6", "--seed", "4", "--workers", "1", "--out", str(run),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    extra = ["--design-point", str(design_point)] + (["--assurance"] if mode == "assurance" else [])
    for source in ([str(run)], [name, "--seed", "4"]):
        out = tmp_path / "trial"
        result = runner.invoke(app, ["trial", *source, "--index", "5", "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert "trial 5 of" in result.output and "patients: the first 10" in result.output
        stem = f"trial-5-design_point_{design_point}-{mode}"
        analysis = json.loads((out / f"{stem}-analysis.json").read_text())
        same_values(analysis["row"], run_row(run, 5, design_point, mode))
        patients = pd.read_csv(out / f"{stem}-patients.csv")
        assert len(patients) == analysis["row"]["n_randomised"]
        events = pd.read_csv(out / f"{stem}-events.csv")
        assert (events["event"] == "randomised").sum() == analysis["row"]["n_randomised"]


def test_trial_needs_a_seed_or_a_run(tmp_path):
    result = runner.invoke(app, ["trial", "textbook_two_arm", "--index", "1"])
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["trial", "textbook_two_arm", "--index", "1", "--seed", "1", "--design-point", "3"])
    assert result.exit_code == 2 and "--design-point 3" in result.output


def test_run_prints_any_arm_success_and_precision(tmp_path):
    result = runner.invoke(app, ["run", "three_arm_adaptive_null", "--trials", "20", "--mcse", "0.1", "--seed", "2",
                                 "--workers", "1", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "P(any arm succeeds)" in result.output  # a column of the design-points table
    assert "precision: MCSE <= 0.1 reached" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["precision"]["trials"] == summary["trials"] and summary["trials"] % 20 == 0


def test_unfinished_run_needs_resume(tmp_path):
    args = ["run", "textbook_two_arm", "--trials", "10", "--seed", "1", "--workers", "1", "--quiet", "--out",
            str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "continue it with --resume" in result.output
    result = runner.invoke(app, args + ["--resume"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["run", "textbook_two_arm", "--seed", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "seed 1" in result.output


def test_default_run_directories_are_per_design_and_seed(tmp_path, monkeypatch):
    """Without --out, two designs get their own directories (never a refusal for holding another run), and the
    same design and seed grow their directory."""
    monkeypatch.chdir(tmp_path)
    for name, trials in (("textbook_two_arm", 10), ("textbook_two_arm_null", 10), ("textbook_two_arm", 20)):
        result = runner.invoke(app, ["run", name, "--trials", str(trials), "--seed", "3", "--workers", "1", "--quiet"])
        assert result.exit_code == 0, result.output
    runs = sorted(path.name for path in (tmp_path / "trialsim-out").iterdir())
    assert runs == ["textbook_two_arm-ancova_vague-seed3", "textbook_two_arm_null-ancova_vague-seed3"]
    summary = json.loads((tmp_path / "trialsim-out" / runs[0] / "summary.json").read_text())
    assert summary["trials"] == 20
