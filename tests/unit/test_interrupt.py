"""Interrupted runs (real signals to a `trialsim run` process): kill -9 then --resume gives the uninterrupted
run's files; Ctrl-C stops within 3 s with exit code 130, keeps the finished parts and says how to resume; no
worker process outlives the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import ROOT, scenario_dict
from trialsim.results import comparable
from trialsim.rundir import RunDirectory
from trialsim.session import open_run, run_session
from trialsim.spec.loading import load_design

#: One design point of a realistic size: a 2,000-trial run takes a few seconds on two workers.
SCENARIO = scenario_dict(
    sample_size=200, visits_weeks=[0, 1, 2, 4, 6, 8, 10, 12], primary_endpoint={"week": 12},
    dropout={"fraction": 0.2}, recruitment={"sites": 20, "rate_per_site_per_week": 0.5},
)
TRIALS = 2000


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def start(scenario_file: Path, out: Path, *options: str) -> subprocess.Popen:
    """`trialsim run` in its own session (as from a terminal), this tree first on the path."""
    command = [sys.executable, "-m", "trialsim", "run", str(scenario_file), "--trials", str(TRIALS), "--seed", "7",
               "--out", str(out), "--quiet", *options]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def parts(out: Path) -> int:
    return len(RunDirectory(out).parts())


def survivors(processes: list[psutil.Process], timeout: float = 5.0) -> list[int]:
    """Processes still running (zombies are dead, waiting to be reaped) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process.pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_kill_then_resume_equals_an_uninterrupted_run(scenario_file, tmp_path):
    out = tmp_path / "killed"
    process = start(scenario_file, out, "--workers", "2")
    wait_for(lambda: parts(out) >= 2, process)
    workers = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.wait()
    assert not survivors(workers)
    kept = parts(out)
    assert 2 <= kept < TRIALS // 25
    assert RunDirectory(out).read_manifest()["status"] == "running"
    resumed = subprocess.run(
        [sys.executable, "-m", "trialsim", "run", str(scenario_file), "--out", str(out), "--resume", "--quiet",
         "--workers", "2"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    scenario, plan = load_design(scenario_file)
    reference = tmp_path / "uninterrupted"
    run_session(open_run(reference, scenario, plan, trials=TRIALS, seed=7), scenario, plan, workers=1)
    assert (out / "trials.parquet").read_bytes() == (reference / "trials.parquet").read_bytes()
    summaries = [json.loads((d / "summary.json").read_text()) for d in (out, reference)]
    assert comparable(summaries[0]) == comparable(summaries[1])
    assert [s["trials"] for s in RunDirectory(out).read_manifest()["sessions"]] == [TRIALS, TRIALS]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_within_seconds(scenario_file, tmp_path, workers):
    out = tmp_path / "interrupted"
    process = start(scenario_file, out, "--workers", workers)
    wait_for(lambda: parts(out) >= 1, process)
    children = psutil.Process(process.pid).children(recursive=True)
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 3.0
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr and "are kept in" in stderr
    assert parts(out) >= 1 and RunDirectory(out).read_manifest()["status"] == "interrupted"
    assert not survivors(children)


@pytest.mark.mcmc
def test_nuts_workers_end_with_a_killed_run(scenario_file, tmp_path):
    """NUTS workers are started by a forkserver (not children of the run): they still end when it is killed."""
    out = tmp_path / "nuts"
    process = start(scenario_file, out, "--workers", "2", "--plan", "ancova_nuts")
    descendants: list[psutil.Process] = []

    def pool_started() -> bool:
        descendants[:] = psutil.Process(process.pid).children(recursive=True)
        return len(descendants) >= 4  # resource tracker, forkserver, two workers

    wait_for(pool_started, process)
    time.sleep(0.5)
    process.kill()
    process.wait()
    assert not survivors(descendants)
