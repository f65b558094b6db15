"""Every benchmark runs: its `--smoke` mode (a tiny run of each measurement) in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = ["bench_resume.py", "bench_memory.py", "bench_dask.py"]


@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_smoke(script):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "False" not in done.stdout  # every result identical to its reference
