"""dask.distributed runs the same chunks as the process pool: identical numbers on a local cluster of 2 workers,
for a conjugate and a NUTS plan, with one NUTS compilation per dask worker."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import ANALYSIS, make_scenario
from trialsim.backends import local_cluster
from trialsim.cli import app
from trialsim.runner import run_trials, simulate
from trialsim.spec.loading import load_plan

runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler():
    """A local cluster of 2 single-threaded worker processes, shared by the tests of this module."""
    cluster = local_cluster(2)
    yield cluster.scheduler_address
    cluster.close()


def test_conjugate_dask_equals_pool_and_serial(scheduler, vague_plan):
    scenario = make_scenario(sample_size=[30, 50], dropout={"fraction": 0.2})
    serial, _ = run_trials(scenario, vague_plan, 90, seed=11, workers=1)
    pool, _ = run_trials(scenario, vague_plan, 90, seed=11, workers=2, chunk_size=13)
    dask, _ = run_trials(scenario, vague_plan, 90, seed=11, workers=2, chunk_size=7, backend="dask",
                         scheduler=scheduler)
    pd.testing.assert_frame_equal(serial, pool, check_exact=True)
    pd.testing.assert_frame_equal(serial, dask, check_exact=True)


def test_dask_run_directory_on_the_command_line(scheduler, tmp_path):
    """`--backend dask` (with a scheduler address, and with its own local cluster) writes the same run."""
    common = ["run", "two_arm_group_sequential", "--trials", "30", "--seed", "3", "--workers", "2", "--quiet"]
    for name, extra in (("pool", []), ("dask", ["--backend", "dask", "--scheduler", scheduler]),
                        ("local", ["--backend", "dask"])):
        result = runner.invoke(app, common + ["--out", str(tmp_path / name)] + extra)
        assert result.exit_code == 0, result.output
    reference = (tmp_path / "pool" / "trials.parquet").read_bytes()
    assert (tmp_path / "dask" / "trials.parquet").read_bytes() == reference
    assert (tmp_path / "local" / "trials.parquet").read_bytes() == reference


def test_scheduler_needs_dask(tmp_path):
    result = runner.invoke(app, ["run", "textbook_two_arm", "--scheduler", "tcp://x:1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--backend dask" in result.output


@pytest.mark.mcmc
def test_nuts_dask_equals_serial_and_compiles_once_per_worker(scheduler):
    plan = load_plan(ANALYSIS / "ancova_nuts.yaml")
    plan = plan.model_copy(update={"sampler": plan.sampler.model_copy(update={"draws": 100, "tune": 100})})
    scenario = make_scenario(sample_size=40)
    serial = simulate(scenario, plan, 12, seed=2, workers=1)
    dask = simulate(scenario, plan, 12, seed=2, workers=2, chunk_size=3, backend="dask", scheduler=scheduler)
    pd.testing.assert_frame_equal(serial.trials, dask.trials, check_exact=True)
    nuts = dask.summary["nuts"]
    assert nuts["compilations"] == nuts["worker_processes"] >= 1  # each dask worker compiled the model once
