"""The command line as a designer meets it: --version, list, validate (bundled names, resolved arms, --explain,
warnings), --set overrides, compare and stress at a common N, stress skipping cells, plain progress in logs, and
a fast start."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ANALYSIS, ROOT, SCENARIOS
from trialsim import __version__
from trialsim.catalogue import catalogue
from trialsim.cli import app

runner = CliRunner()
FAST = ["--trials", "6", "--seed", "1", "--workers", "1"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"trialsim {__version__}"


def test_version_and_list_start_without_the_numerical_stack():
    code = (
        "import sys, trialsim.cli; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'pymc', 'matplotlib') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(("what", "folder"), [("scenarios", SCENARIOS), ("plans", ANALYSIS)])
def test_list_bundled_files_with_their_descriptions(what, folder):
    result = invoke("list", what)
    assert result.exit_code == 0, result.output
    for path in folder.glob("*.yaml"):
        assert path.stem in result.stdout
    description = yaml.safe_load((folder / f"{sorted(folder.glob('*.yaml'))[0].stem}.yaml").read_text())
    assert description["description"].split()[0] in result.stdout


def test_list_interventions_and_a_bad_kind():
    result = invoke("list", "interventions")
    assert result.exit_code == 0
    assert "xanomeline_trospium" in result.stdout and "versus treatment_as_usual or sham" in result.stdout
    assert len(catalogue("interventions")) >= 20
    bad = invoke("list", "drugs")
    assert bad.exit_code == 2 and "choose one of scenarios, plans, interventions" in bad.output


def test_validate_accepts_bundled_plan_names_and_shows_resolved_arms():
    result = invoke("validate", "ancova_vague", "aripiprazole_augmentation")
    assert result.exit_code == 0, result.output
    assert "ok ancova_vague (analysis plan)" in result.stdout
    assert "ok aripiprazole_augmentation (scenario; plan ancova_vague)" in result.stdout
    flat = " ".join(result.stdout.split())
    assert "aripiprazole: 0.20 SMD vs placebo (raw 0.57, low certainty; design default)" in flat
    assert "true effect +3.00 PANSS points on the total" in flat and "design prior N(3.00, 2.87²)" in flat
    assert "effect and design prior: library aripiprazole_augmentation: design default" in flat


def test_validate_explain_states_success_looks_and_data():
    result = invoke("validate", "--explain", "two_arm_group_sequential")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    for words in (
        "What counts as success (plan gs_obrien_fleming)",
        "reaches the efficacy threshold of an interim look or of the final analysis",
        "look 1: when 64 patients have reached the primary endpoint",
        "Efficacy thresholds on P(effect > 0) at N = 240: looks 0.9999, 0.9940; final 0.9769.",
        "on the patients who attended the week-12 visit",
        "A look analyses the patients randomised by its data cut-off",
    ):
        assert words in flat, words


def test_validate_explain_frequentist_multi_arm_and_responder(tmp_path):
    result = invoke("validate", "--explain", "three_arm_adaptive", "ect_augmentation_vs_tau")
    flat = " ".join(result.stdout.split())
    assert "judged against placebo on its own, without adjustment" in flat
    assert "the effect is the arm's response rate minus tau's (a risk difference)" in flat
    assert "No interim looks" in flat


def test_nuts_plan_that_cannot_reach_its_ess_warns(tmp_path):
    plan = yaml.safe_load((ANALYSIS / "ancova_nuts.yaml").read_text())
    plan["sampler"] = {"draws": 100, "chains": 2, "ess_min": 400}
    path = tmp_path / "thin.yaml"
    path.write_text(yaml.safe_dump(plan))
    result = invoke("validate", str(path))
    assert result.exit_code == 0
    assert "warning: plan 'ancova_nuts': sampler.draws × sampler.chains = 100 × 2 = 200 draws cannot reach " \
           "sampler.ess_min = 400" in " ".join(result.output.split())
    quiet = invoke("validate", str(ANALYSIS / "ancova_nuts.yaml"))
    assert "warning" not in quiet.output
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    run = invoke("run", "textbook_two_arm", "--plan", str(path), "--out", str(blocked), "--trials", "1")
    assert run.exit_code == 2 and "cannot reach sampler.ess_min = 400" in " ".join(run.output.split())


def test_set_overrides_fields_by_path_index_and_name(tmp_path):
    result = invoke("run", "textbook_two_arm", *FAST, "--quiet", "--out", str(tmp_path), "--set",
                    "sample_size=[60, 80]", "--set", "arms.1.effect.points=4", "--set", "arms.active.dropout=0.1")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [p["sample_size"] for p in summary["design_points"]] == [60, 80]
    assert summary["arms"][1]["effect_points"]["total"] == 4.0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["scenario"]["arms"][1]["dropout"] == 0.1


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("recruitment.sitez=40", "--set recruitment.sitez=40: no field 'sitez' in recruitment; did you mean 'sites'?"),
        ("arms.7.effect.points=4", "arms has 2 items (0 to 1)"),
        ("arms.drug.effect.points=4", "give an index (0 to 1); names: control, active"),
        ("recruitment.sites=0", "recruitment.sites = 0: Input should be greater than or equal to 1"),
        ("recruitment.sites", "give FIELD=VALUE"),
        ("outcome.sd_change.x=1", "outcome.sd_change is a value, not a section with fields"),
        ("analysis_plan=ancova_nuts", "use --plan"),
        ("sample_size=[1, 2", "--set sample_size=[1, 2: invalid YAML at line 1, column 6"),
    ],
)
def test_set_errors_name_the_path(setting, words):
    result = invoke("run", "textbook_two_arm", *FAST, "--set", setting)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert words in " ".join(result.output.split()), result.output


def test_compare_at_a_common_sample_size(tmp_path):
    result = invoke("compare", "textbook_two_arm", "aripiprazole_augmentation", *FAST, "--quiet", "--sample-size",
                    "120", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "2 scenarios at N = 120 · 6 trials each · seed 1" in result.stdout
    for name in ("textbook_two_arm", "aripiprazole_augmentation"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert [p["sample_size"] for p in summary["design_points"]] == [120]
    assert "effects in" in result.stdout and "PANSS points" in result.stdout


def test_compare_labels_units_and_any_arm_success():
    result = invoke("compare", "three_arm_adaptive", "ect_augmentation_vs_tau", *FAST, "--quiet")
    assert result.exit_code == 0, result.output
    assert "each at its largest N" in result.stdout
    assert "risk difference" in result.stdout and "P(any arm succeeds)" in result.stdout


def test_stress_skips_and_lists_cells_a_plan_cannot_analyse():
    result = invoke("stress", "textbook_two_arm", "ect_augmentation_vs_tau", "--plans", "ancova_vague", "--plans",
                    "responder_beta_binomial", *FAST, "--quiet", "--sample-size", "80")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "textbook_two_arm · N = 80" in flat and "ect_augmentation_vs_tau · N = 80" in flat
    assert "skipped textbook_two_arm × responder_beta_binomial: model = 'responder'" in flat
    assert "skipped ect_augmentation_vs_tau × ancova_vague" in flat
    nothing = invoke("stress", "textbook_two_arm", "--plans", "responder_beta_binomial", *FAST, "--quiet")
    assert nothing.exit_code == 2 and "no plan can analyse textbook_two_arm × responder_beta_binomial" in nothing.output


def test_progress_goes_to_the_log_as_plain_lines_counting_assurance_runs(tmp_path):
    result = invoke("run", "aripiprazole_augmentation", "--trials", "4", "--seed", "1", "--workers", "1", "--out",
                    str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "simulating aripiprazole_augmentation: 32 trials" in lines  # 4 design points × (point + assurance)
    assert any(line.startswith("simulating aripiprazole_augmentation: 32/32 trials (100%)") for line in lines)
    assert "\x1b" not in result.stderr


def test_calibrate_a_design_without_looks():
    result = invoke("calibrate", "textbook_two_arm", "--trials", "200", "--seed", "1", "--workers", "1", "--quiet",
                    "--no-verify", "--set", "sample_size=60")
    assert result.exit_code == 0, result.output
    assert "N = 60 · 200 null trials · seed 1" in result.stdout and "final" in result.stdout


def test_warnings_are_plain_lines():
    result = invoke("validate", "three_arm_adaptive")
    assert "warning: xanomeline_trospium: panss_total vs placebo: evidence population not TRS" in result.output
    assert "EvidenceWarning" not in result.output and ".py:" not in result.output
