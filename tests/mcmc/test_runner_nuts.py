"""NUTS plans through the runner: one compilation per worker, agreement with the conjugate engine on the same
data sets, diagnostics counted (never an exception), InferenceData kept on request."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ANALYSIS, make_scenario
from trialsim.runner import simulate
from trialsim.spec.loading import load_plan
from trialsim.spec.plan import AnalysisPlan

pytestmark = pytest.mark.mcmc


def nuts_plan(**sampler) -> AnalysisPlan:
    plan = load_plan(ANALYSIS / "ancova_nuts.yaml")
    return plan.model_copy(update={"sampler": plan.sampler.model_copy(update=sampler)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """24 trials with NUTS on 2 workers (with InferenceData for the first 2), and the same trials with the
    exact conjugate posterior."""
    scenario = make_scenario(sample_size=[60, 80], dropout={"fraction": 0.2})
    out = tmp_path_factory.mktemp("idata")
    nuts = simulate(scenario, nuts_plan(draws=1000, tune=500), 12, seed=4, workers=2, keep_idata=2, idata_dir=str(out))
    exact = simulate(scenario, load_plan(ANALYSIS / "ancova_vague.yaml"), 12, seed=4, workers=1)
    return nuts, exact, out


def test_compiles_once_per_worker(runs):
    """Both workers fitted trials and each compiled the model exactly once (both design points and all its chunks
    reuse it): 2 compilations for 24 fits."""
    assert runs[0].summary["nuts"] == {"worker_processes": 2, "compilations": 2}
    assert "worker_pid" not in runs[0].trials  # the table stays independent of the pool


def test_nuts_agrees_with_conjugate_on_the_same_data(runs):
    """Same seeds → same data sets: NUTS posterior mean within 4 × its MCSE (≈ sd/√ESS) of the exact mean, and
    the posterior SD within 10%."""
    nuts, exact = runs[0].trials, runs[1].trials
    mcse = nuts["drug.sd"] / np.sqrt(nuts["drug.ess_bulk_min"])
    assert (np.abs(nuts["drug.estimate"] - exact["drug.estimate"]) <= 4 * mcse).all()
    np.testing.assert_allclose(nuts["drug.sd"], exact["drug.sd"], rtol=0.10)


def test_idata_kept_for_first_trials(runs):
    """The first 2 trials of each design point, in a folder naming the design point and effect mode."""
    import arviz as az

    files = sorted(str(p.relative_to(runs[2])) for p in runs[2].rglob("*.nc"))
    assert files == [f"design_point_{i}-n{n}-point/trial_00000{k}.nc" for i, n in enumerate((60, 80)) for k in (0, 1)]
    idata = az.from_netcdf(runs[2] / files[0])
    assert "posterior" in idata.groups()


def test_hard_case_counts_failed_diagnostics():
    """Tiny trials and a starved sampler: fits fail their diagnostics, the run completes and reports them."""
    scenario = make_scenario(sample_size=8, recruitment={"sites": 1, "rate_per_site_per_week": 2.0})
    results = simulate(scenario, nuts_plan(draws=20, tune=10, chains=2), 6, seed=1, workers=1)
    point = results.summary["design_points"][0]
    assert point["failed_diagnostics_count"] > 0
    assert 0 < point["failed_diagnostics"] <= 1
    assert len(results.trials) == 6
    # The policy: estimates over the fits that passed, the failed ones counted beside; no success from a failed fit.
    trials, comparison = results.trials, point["comparisons"][0]
    passed = trials["analysis_valid"] & trials["drug.diagnostics_ok"]
    assert comparison["failed_fits"] == int((trials["analysis_valid"] & ~trials["drug.diagnostics_ok"]).sum())
    if passed.any():
        assert comparison["mean_estimate"] == pytest.approx(trials.loc[passed, "drug.estimate"].mean())
    assert not (trials["drug.success"] & ~trials["drug.diagnostics_ok"]).any()
    assert "no success" in results.summary["analysis"]["failed_fits"]["decision"]
