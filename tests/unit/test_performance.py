"""The streaming summary: blocks merged exactly enough, quantiles exact; failed fits out of the estimates and
counted; the failed-fit decision policy."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_scenario
from trialsim import performance
from trialsim.decisions import trusted_fits
from trialsim.performance import Moments, check_performance
from trialsim.runner import run_trials


@pytest.fixture(scope="module")
def table(vague_plan_module):
    scenario = make_scenario(sample_size=[30, 40], dropout={"fraction": 0.3})
    trials, _ = run_trials(scenario, vague_plan_module, 500, seed=6, workers=1)
    return trials


@pytest.fixture(scope="module")
def vague_plan_module():
    from tests.conftest import ANALYSIS
    from trialsim.spec.loading import load_plan

    return load_plan(ANALYSIS / "ancova_vague.yaml")


def test_moments_merge_blocks():
    values = np.random.default_rng(1).normal(50, 3, 1001)
    merged = Moments()
    for start in range(0, values.size, 97):
        merged.add(values[start : start + 97])
    assert merged.n == values.size
    assert merged.value == pytest.approx(values.mean(), rel=1e-14)
    assert merged.sd == pytest.approx(values.std(ddof=1), rel=1e-12)


def test_summary_from_small_blocks_equals_one_block(table, monkeypatch):
    whole = check_performance(table, "placebo", ["placebo", "drug"])
    monkeypatch.setattr(performance, "BLOCK_TRIALS", 64)
    blocks = check_performance(table, "placebo", ["placebo", "drug"])

    def close(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                close(a[key], b[key])
        elif isinstance(a, list):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                close(x, y)
        elif isinstance(a, float):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12, nan_ok=True)
        else:
            assert a == b

    close(whole, blocks)
    assert whole[0]["duration_weeks"] == blocks[0]["duration_weeks"]  # exact quantiles


def test_failed_fits_left_out_of_estimates_and_counted(table):
    """Fits flagged as failing their diagnostics do not enter mean estimate, bias, RMSE or coverage."""
    flagged = table.copy()
    failed = np.zeros(len(flagged), bool)
    failed[::7] = True
    flagged["drug.diagnostics_ok"] = ~failed
    flagged["drug.fit_failed"] = False
    flagged.loc[failed, "drug.estimate"] = 1e21  # what a diverged fit can report
    point = check_performance(flagged, "placebo", ["placebo", "drug"])[0]
    rows = flagged[flagged["design_point"] == 0]
    kept = rows[rows["analysis_valid"] & rows["drug.diagnostics_ok"]]
    comparison = point["comparisons"][0]
    assert comparison["mean_estimate"] == pytest.approx(kept["drug.estimate"].mean())
    assert comparison["rmse"] < 10
    assert comparison["failed_fits"] == int((rows["analysis_valid"] & ~rows["drug.diagnostics_ok"]).sum()) > 0
    assert point["failed_diagnostics_count"] == int((~rows["drug.diagnostics_ok"]).sum())
    assert "failed_fits" not in check_performance(table, "placebo", ["placebo", "drug"])[0]["comparisons"][0]


def test_failed_fit_policy(vague_plan_module):
    extra = {"a.diagnostics_ok": np.array([True, False]), "b.diagnostics_ok": np.array([False, True])}
    plan = vague_plan_module
    assert trusted_fits(extra, ("a", "b"), plan).tolist() == [[True, False], [False, True]]
    keep = plan.model_copy(update={"sampler": plan.sampler.model_copy(update={"failed_fit": "keep"})})
    assert trusted_fits(extra, ("a", "b"), keep) is None
    assert trusted_fits({}, ("a", "b"), plan) is None  # batched engines have no diagnostics
