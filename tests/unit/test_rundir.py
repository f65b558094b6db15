"""Run directories: what they hold, one run per directory, resume and growth equal one uninterrupted run, loading
verifies that the files belong together, the memory budget, precision-sized runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import make_scenario, scenario_dict
from trialsim.budget import chunk_size
from trialsim.chunk import Chunk, idata_directory
from trialsim.cli import app
from trialsim.exceptions import ScenarioError
from trialsim.precision import Precision, conservative_mcse
from trialsim.results import SimulationResults, comparable, package_versions
from trialsim.rundir import Part, RunDirectory, json_safe, trials_metadata
from trialsim.runner import simulate
from trialsim.session import _remove_unfinished_idata, open_run, run_session

runner = CliRunner()


@pytest.fixture(scope="module")
def scenario():
    return make_scenario(sample_size=[30, 50], dropout={"fraction": 0.2}, assurance=False)


def run_dir(path, scenario, plan, trials=None, seed=None, *, workers=1, resume=False, **options) -> SimulationResults:
    """One session of a run directory, as the command line runs it."""
    mcse, max_trials = options.pop("mcse", None), options.pop("max_trials", None)
    opening = open_run(path, scenario, plan, trials=trials, seed=seed, resume=resume, mcse=mcse, max_trials=max_trials)
    return run_session(opening, scenario, plan, workers=workers, **options)


def same_run(a, b) -> None:
    """Identical trials.parquet files and equal summaries but for their creation time (and NUTS facts)."""
    assert (a / "trials.parquet").read_bytes() == (b / "trials.parquet").read_bytes()
    first, second = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert comparable(first) == comparable(second)


def test_run_directory_holds_the_run(scenario, vague_plan, tmp_path):
    results = run_dir(tmp_path / "run", scenario, vague_plan, 60, seed=3, workers=2)
    run = RunDirectory(tmp_path / "run")
    manifest = run.read_manifest()
    assert manifest["status"] == "complete" and manifest["seed"] == 3 and manifest["trials"] == 60
    assert manifest["scenario"]["name"] == "unit" and manifest["plan"]["name"] == vague_plan.name
    assert manifest["versions"] == package_versions(vague_plan)
    assert len(manifest["sessions"]) == 1 and manifest["sessions"][0]["workers"] == 2
    parts = run.parts()
    assert {(p.design_point, p.mode) for p in parts} == {(0, "point"), (1, "point")}
    assert sum(p.stop - p.start for p in parts) == 120
    assert trials_metadata(run.trials_path) == {
        "seed": 3, "trials": 60, "scenario_hash": manifest["scenario_hash"], "plan_hash": manifest["plan_hash"],
    }
    assert results.summary == json.loads(run.summary_path.read_text())
    loaded = SimulationResults.load(tmp_path / "run")
    assert loaded.scenario == scenario and len(loaded.trials) == 120


def test_directory_equals_memory(scenario, vague_plan, tmp_path):
    """One summary code path: the run directory's summary and rows equal an in-memory simulation's."""
    memory = simulate(scenario, vague_plan, 60, seed=4, workers=1)
    disk = run_dir(tmp_path, scenario, vague_plan, 60, seed=4, workers=2)
    pd.testing.assert_frame_equal(memory.trials, disk.trials, check_exact=True, check_dtype=False)
    assert json_safe(comparable(memory.summary)) == json_safe(comparable(disk.summary))


def test_growing_equals_the_larger_run_at_once(scenario, vague_plan, tmp_path):
    run_dir(tmp_path / "grown", scenario, vague_plan, 37, seed=8, workers=2)
    run_dir(tmp_path / "grown", scenario, vague_plan, 100, workers=1)  # the recorded seed; other chunks
    run_dir(tmp_path / "once", scenario, vague_plan, 100, seed=8, workers=2)
    same_run(tmp_path / "grown", tmp_path / "once")
    sessions = RunDirectory(tmp_path / "grown").read_manifest()["sessions"]
    assert [s["trials"] for s in sessions] == [37, 100]


def test_resume_completes_an_interrupted_run_identically(scenario, vague_plan, tmp_path):
    """Parts lost to an interruption (here: removed, the manifest left running) are simulated again."""
    run_dir(tmp_path / "resumed", scenario, vague_plan, 80, seed=9, workers=2)
    run = RunDirectory(tmp_path / "resumed")
    for part in run.parts()[1::2]:
        (run.parts_dir / part.name).unlink()
    run.summary_path.unlink()
    manifest = run.read_manifest()
    run.write_manifest({**manifest, "status": "interrupted"})
    with pytest.raises(ScenarioError, match="--resume"):
        run_dir(run.path, scenario, vague_plan)
    with pytest.raises(ScenarioError, match="not finished"):
        SimulationResults.load(run.path)
    run_dir(run.path, scenario, vague_plan, resume=True, workers=1)
    run_dir(tmp_path / "once", scenario, vague_plan, 80, seed=9)
    same_run(run.path, tmp_path / "once")


def test_finished_run_again_simulates_nothing(scenario, vague_plan, tmp_path):
    run_dir(tmp_path, scenario, vague_plan, 20, seed=1)
    before = {p.name: (RunDirectory(tmp_path).parts_dir / p.name).stat().st_mtime_ns
              for p in RunDirectory(tmp_path).parts()}
    run_dir(tmp_path, scenario, vague_plan)
    after = {p.name: (RunDirectory(tmp_path).parts_dir / p.name).stat().st_mtime_ns
             for p in RunDirectory(tmp_path).parts()}
    assert before == after


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scenario": {"sample_size": [30, 60]}}, "holds a run of scenario"),
        ({"plan": {"decision": {"threshold": 0.99}}}, "holds a run of plan"),
        ({"seed": 2}, "seed 1"),
        ({"trials": 10}, "never shrinks"),
        ({"versions": {"numpy": "0.0.1"}}, "numpy"),
        ({"resume": True, "fresh": True}, "nothing to resume"),
    ],
)
def test_another_run_is_refused(scenario, vague_plan, tmp_path, change, message):
    """A directory holds one run: anything else is refused before simulating, saying why."""
    if not change.get("fresh"):
        run_dir(tmp_path, scenario, vague_plan, 20, seed=1)
    if "versions" in change:
        manifest = RunDirectory(tmp_path).read_manifest()
        manifest["versions"].update(change["versions"])
        RunDirectory(tmp_path).write_manifest(manifest)
    other_scenario = scenario.model_copy(update=change.get("scenario", {}))
    other_plan = vague_plan.model_copy(
        update={"decision": vague_plan.decision.model_copy(update=change["plan"]["decision"])}
    ) if "plan" in change else vague_plan
    with pytest.raises(ScenarioError, match=message):
        open_run(tmp_path / ("new" if change.get("fresh") else ""), other_scenario, other_plan,
                 trials=change.get("trials"), seed=change.get("seed"), resume=change.get("resume", False))


def test_non_run_directories_are_refused(scenario, vague_plan, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ScenarioError, match="not empty"):
        open_run(tmp_path, scenario, vague_plan)
    (tmp_path / "file").write_text("")
    with pytest.raises(ScenarioError, match="not a directory"):
        open_run(tmp_path / "file", scenario, vague_plan)
    with pytest.raises(ScenarioError, match="cannot write"):
        open_run(tmp_path / "file" / "below", scenario, vague_plan)


@pytest.mark.parametrize("command", ["run", "compare", "stress"])
def test_unwritable_out_fails_before_simulating(tmp_path, command):
    (tmp_path / "file").write_text("")
    out = str(tmp_path / "file" / "below")
    args = {
        "run": ["run", "textbook_two_arm", "--out", out],
        "compare": ["compare", "textbook_two_arm", "--out", out],
        "stress": ["stress", "textbook_two_arm", "--plans", "ancova_vague", "--out", out],
    }[command]
    result = runner.invoke(app, args + ["--trials", "5", "--workers", "1", "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot write" in result.output and "simulating" not in result.output


def test_load_refuses_mixed_files(scenario, vague_plan, tmp_path):
    """A summary of another run beside the trials, an edited manifest, a missing part: each is named."""
    run_dir(tmp_path / "a", scenario, vague_plan, 20, seed=1)
    run_dir(tmp_path / "b", scenario, vague_plan, 20, seed=2)
    (tmp_path / "a" / "summary.json").write_bytes((tmp_path / "b" / "summary.json").read_bytes())
    with pytest.raises(ScenarioError, match="another run"):
        SimulationResults.load(tmp_path / "a")
    manifest = RunDirectory(tmp_path / "b").read_manifest()
    manifest["scenario"]["outcome"]["sd_change"] = 14.0
    RunDirectory(tmp_path / "b").write_manifest(manifest)
    with pytest.raises(ScenarioError, match="does not match its hash"):
        SimulationResults.load(tmp_path / "b")
    run_dir(tmp_path / "c", scenario, vague_plan, 20, seed=3)
    run = RunDirectory(tmp_path / "c")
    (run.parts_dir / run.parts()[0].name).unlink()
    with pytest.raises(ScenarioError, match="parts do not hold"):
        SimulationResults.load(run.path)


def test_trials_parquet_is_cut_in_fixed_row_groups(tmp_path, vague_plan, monkeypatch):
    """Row groups hold at most BLOCK_TRIALS rows of one design point, whatever the chunks were; the summary is
    the same as from one block (to rounding)."""
    from trialsim import performance, rundir

    scenario = make_scenario(sample_size=[20, 24])
    whole = run_dir(tmp_path / "whole", scenario, vague_plan, 70, seed=1, workers=2)
    monkeypatch.setattr(rundir, "BLOCK_TRIALS", 32)
    monkeypatch.setattr(performance, "BLOCK_TRIALS", 32)
    cut = run_dir(tmp_path / "cut", scenario, vague_plan, 70, seed=1, workers=2)
    groups = pq.ParquetFile(tmp_path / "cut" / "trials.parquet").metadata
    assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [32, 32, 6] * 2
    assert pd.read_parquet(tmp_path / "cut" / "trials.parquet").equals(whole.trials)
    first, second = whole.summary["design_points"][1], cut.summary["design_points"][1]
    assert second["comparisons"][0]["bias"] == pytest.approx(first["comparisons"][0]["bias"], rel=1e-12)
    assert second["duration_weeks"] == first["duration_weeks"]


def test_budget_caps_chunks_and_refuses_what_cannot_fit(vague_plan):
    scenario = make_scenario(sample_size=[40, 100_000])
    assert chunk_size(scenario, vague_plan, 40, 10_000, 2) == 500
    assert chunk_size(scenario, vague_plan, 100_000, 10_000, 2) == 5  # 256 B × 100,000 × 4 visits per trial
    with pytest.raises(ScenarioError, match=r"needs about 98 MB .* budget of 50 MB"):
        open_run("unused", scenario, vague_plan, memory_mb=50)


def test_budget_refusal_on_the_command_line(tmp_path):
    path = tmp_path / "large.yaml"
    recruitment = {"sites": 50, "rate_per_site_per_week": 5.0}  # 400 weeks: within the recruitment horizon
    path.write_text(yaml.safe_dump(scenario_dict(sample_size=[100, 100_000], recruitment=recruitment)))
    result = runner.invoke(app, ["run", str(path), "--memory-mb", "50", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sample_size = 100000" in result.output and "98 MB" in result.output and "--memory-mb" in result.output
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_idata_paths_name_the_design_point_and_mode(tmp_path):
    """InferenceData files never collide across design points or modes; those of unfinished chunks go."""
    first = idata_directory(tmp_path, Chunk(0, 60, 0, 4, False))
    second = idata_directory(tmp_path, Chunk(1, 80, 0, 4, True))
    assert first.name == "design_point_0-n60-point" and second.name == "design_point_1-n80-assurance"
    run = RunDirectory(tmp_path)
    for folder in (run.idata_dir / first.name, run.idata_dir / second.name):
        folder.mkdir(parents=True)
        for index in (0, 5):
            (folder / f"trial_{index:06d}.nc").write_bytes(b"")
    run.parts_dir.mkdir()
    (run.parts_dir / Part(0, "point", 0, 4).name).write_bytes(b"")
    _remove_unfinished_idata(run)
    kept = sorted(str(p.relative_to(run.idata_dir)) for p in run.idata_dir.rglob("*.nc"))
    assert kept == ["design_point_0-n60-point/trial_000000.nc"]


def test_conservative_mcse_guards_against_lucky_estimates():
    """p̂ = 0 from 100 trials looks perfectly precise, but p up to 0.037 is consistent with it."""
    assert conservative_mcse(0.0, 100) > 0.01 > (0.0 * 1.0 / 100) ** 0.5
    assert conservative_mcse(0.5, 10_000) == pytest.approx(0.005)
    for p in np.linspace(0, 1, 21):
        assert conservative_mcse(p, 400) >= (p * (1 - p) / 400) ** 0.5
    assert Precision.of(0.005, 1000).max_trials == 10_000
    assert Precision.of(0.02, 300).max_trials == 900  # 625 trials always reach 0.02; whole rounds


def test_precision_sized_run(tmp_path, vague_plan):
    """--mcse: whole rounds until every power meets the target (conservatively), recorded; the same trials for 1
    and 2 workers; equal to a fixed run of that many trials."""
    scenario = make_scenario(sample_size=[30, 60], arms=[
        {"name": "placebo", "control": True}, {"name": "drug", "effect": {"points": 6.0}},
        {"name": "other", "effect": {"points": 0.0}},
    ])
    one = run_dir(tmp_path / "one", scenario, vague_plan, 50, seed=2, mcse=0.04, workers=1)
    run_dir(tmp_path / "two", scenario, vague_plan, 50, seed=2, mcse=0.04, workers=2)
    same_run(tmp_path / "one", tmp_path / "two")
    precision = one.summary["precision"]
    trials = one.summary["trials"]
    assert precision["reached"] and precision["trials"] == trials and trials % 50 == 0
    assert trials <= precision["max_trials"] == 200  # 1/(4 × 0.04²) = 157 trials always suffice: 4 rounds
    for point in one.summary["design_points"]:
        assert point["trials"] == trials
        assert point["any_success_mcse"] <= 0.04
        for comparison in point["comparisons"]:
            assert conservative_mcse(comparison["power"], trials) <= 0.04
            assert comparison["power_mcse"] <= 0.04
    if trials > 50:  # it did not stop at an earlier round
        earlier = simulate(scenario, vague_plan, trials - 50, seed=2, workers=1).summary["design_points"]
        assert not Precision.of(0.04, 50).reached(earlier)
    run_dir(tmp_path / "fixed", scenario, vague_plan, trials, seed=2)
    assert (tmp_path / "one" / "trials.parquet").read_bytes() == (tmp_path / "fixed" / "trials.parquet").read_bytes()


def test_precision_cap(tmp_path, vague_plan, scenario):
    results = run_dir(tmp_path, scenario, vague_plan, 20, seed=2, mcse=0.001, max_trials=40)
    assert results.summary["trials"] == 40 and results.summary["precision"]["reached"] is False


def test_any_arm_succeeds(tmp_path, vague_plan):
    """P(at least one arm succeeds) is the share of trials with any success (the family-wise type I error of a
    null scenario), with its binomial MCSE; only for several comparisons."""
    scenario = make_scenario(sample_size=40, arms=[
        {"name": "placebo", "control": True}, {"name": "a", "effect": {"points": 0.0}},
        {"name": "b", "effect": {"points": 0.0}},
    ])
    results = simulate(scenario, vague_plan, 300, seed=5, workers=1)
    point = results.summary["design_points"][0]
    share = (results.trials["a.success"] | results.trials["b.success"]).mean()
    assert point["any_success"] == pytest.approx(share)
    assert point["any_success_mcse"] == pytest.approx((share * (1 - share) / 300) ** 0.5)
    two_arm = simulate(make_scenario(), vague_plan, 10, seed=5, workers=1).summary["design_points"][0]
    assert "any_success" not in two_arm
