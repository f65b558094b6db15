"""Every benchmark still runs: its ``--smoke`` mode (one tiny case of each measurement through the same code, in a
fresh interpreter) exits with 0 and prints its table; benchmarks that compare results with a reference print
``False`` when one differs, which fails here. Timings are not checked (they belong to the benchmarks, never to
tests).

Cost: each NUTS benchmark compiles a model (≈ 15–40 s on 2 cores), hence the ``mcmc`` marker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

#: (script, a fragment its table prints, marks).
BENCHMARKS = [
    ("bench_run.py", "trials/s", []),
    ("bench_resume.py", "uninterrupted", []),
    ("bench_memory.py", "peak", []),
    ("bench_dask.py", "dask", []),
    ("bench_nuts.py", "compiled fits/s", [pytest.mark.mcmc]),
    ("bench_runner_nuts.py", "marginal throughput", [pytest.mark.mcmc]),
    ("bench_laplace.py", "laplace fits/s", [pytest.mark.mcmc]),
]


@pytest.mark.parametrize(
    "script, header", [pytest.param(script, header, marks=marks, id=script) for script, header, marks in BENCHMARKS]
)
def test_smoke_mode_runs_and_prints_its_table(script, header):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert header in done.stdout, done.stdout[-2000:]
    assert "False" not in done.stdout, done.stdout[-2000:]  # every result identical to its reference
