"""ANCOVA t-test and MMRM comparators: exact agreement with statsmodels / hand computations."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from trialsim.exceptions import ScenarioError
from trialsim.inference.data import TrialData
from trialsim.inference.diagnostics import RECORD_KEYS
from trialsim.inference.frequentist import ancova_design, ancova_ttest, longitudinal_arrays, mmrm
from trialsim.testing import synthetic_trial as shared_synthetic_trial


def synthetic_trial(seed: int, n_per_arm: int = 60, visit_weeks=(0, 2, 4, 8), dropout_rate: float = 0.0, **kw):
    """The shared synthetic generator with this file's defaults (smaller trials, no dropout)."""
    return shared_synthetic_trial(seed, n_per_arm=n_per_arm, visit_weeks=visit_weeks, dropout_rate=dropout_rate, **kw)


def _per_visit_ols(data: TrialData, visit: int):
    """OLS of change at one post-baseline visit on [1, −arm dummies, centred baseline] (complete data)."""
    base = data.baseline
    onehot = np.column_stack([(data.arm == k).astype(float) for k in range(1, len(data.arm_names))])
    X = np.column_stack([np.ones(data.n), -onehot, base - base.mean()])
    y = data.panss[:, visit] - base
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    return X, y, beta, xtx_inv


@pytest.mark.parametrize("n_arms,seed", [(2, 1), (3, 2)])
def test_ancova_ttest_matches_statsmodels_ols(n_arms, seed):
    import statsmodels.api as sm

    data = synthetic_trial(seed, n_arms=n_arms, dropout_rate=0.2)
    margin = 1.5
    res = ancova_ttest(data, margin=margin)
    design = ancova_design(data)
    ols = sm.OLS(design.y, design.X).fit()
    ci = ols.conf_int(alpha=0.05)
    assert list(res) == [f"active{k}" for k in range(1, n_arms)]
    for k, name in enumerate(res):
        rec = res[name]
        j = 1 + k
        assert set(rec) == set(RECORD_KEYS)
        assert rec["estimate"] == pytest.approx(ols.params[j], rel=1e-10)
        assert rec["sd"] == pytest.approx(ols.bse[j], rel=1e-10)
        assert rec["df"] == ols.df_resid
        assert rec["ci_low"] == pytest.approx(ci[j, 0], rel=1e-10)
        assert rec["ci_high"] == pytest.approx(ci[j, 1], rel=1e-10)
        t_margin = (ols.params[j] - margin) / ols.bse[j]
        assert rec["p_value"] == pytest.approx(stats.t.sf(t_margin, ols.df_resid), rel=1e-10)
        assert rec["n_analysed"] == design.n and not rec["fit_failed"] and rec["diagnostics_ok"]
    # sign convention: the arm with the larger PANSS reduction has a positive effect
    assert res[f"active{n_arms - 1}"]["estimate"] > 0


def test_ancova_ttest_failure_is_a_record():
    data = synthetic_trial(3, n_per_arm=5)
    panss = data.panss.copy()
    panss[data.arm == 1, -1] = np.nan  # no completer on the active arm
    res = ancova_ttest(replace(data, panss=panss))
    rec = res["active1"]
    assert rec["fit_failed"] and not rec["diagnostics_ok"] and math.isnan(rec["estimate"])
    assert "singular" in rec["error"]


def test_mmrm_unstructured_complete_data_equals_endpoint_ancova():
    """Complete data, identical regressors at every visit: GLS = per-visit OLS for ANY covariance, and the REML
    unstructured covariance of the endpoint is RSS/(n − p): estimate, SE and p-value equal the ANCOVA t-test."""
    data = synthetic_trial(4, n_per_arm=50)
    ref = ancova_ttest(data, margin=2.0)["active1"]
    rec = mmrm(data, "unstructured", margin=2.0)["active1"]
    assert rec["diagnostics_ok"], rec
    assert rec["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert rec["sd"] == pytest.approx(ref["sd"], rel=1e-4)
    assert rec["df"] == ref["df"]
    assert rec["p_value"] == pytest.approx(ref["p_value"], rel=1e-3)


def test_mmrm_compound_symmetry_complete_data_hand_check():
    """Balanced complete data: REML compound symmetry = ANOVA estimators of the per-visit OLS residuals,
    within σ² = SS_within/((N−q)(T−1)), between σ² + Tτ² = T·Σ mean_i²/(N−q); estimate = endpoint OLS and
    Var = (σ² + τ²)·[(XᵀX)⁻¹]_kk with X the per-visit design (q = 3 columns)."""
    data = synthetic_trial(5, n_per_arm=50)
    T = data.panss.shape[1] - 1
    resid = np.empty((data.n, T))
    for t in range(T):
        X, y, beta, xtx_inv = _per_visit_ols(data, t + 1)
        resid[:, t] = y - X @ beta
    N, q = X.shape
    pmean = resid.mean(axis=1)
    s2 = np.sum((resid - pmean[:, None]) ** 2) / ((N - q) * (T - 1))
    ms_between = T * np.sum(pmean**2) / (N - q)
    tau2 = (ms_between - s2) / T
    assert tau2 > 0
    se_hand = math.sqrt((s2 + tau2) * xtx_inv[1, 1])
    rec = mmrm(data, "compound_symmetry")["active1"]
    assert rec["estimate"] == pytest.approx(beta[1], rel=1e-6)
    assert rec["sd"] == pytest.approx(se_hand, rel=1e-3)
    # the alias gives the same fit
    assert mmrm(data, "random_intercept")["active1"]["estimate"] == pytest.approx(rec["estimate"], rel=1e-12)


def test_mmrm_ar1_complete_data_estimate_equals_endpoint_ols():
    data = synthetic_trial(6, n_per_arm=40)
    *_, beta, _ = _per_visit_ols(data, data.endpoint_visit)
    rec = mmrm(data, "ar1")["active1"]
    assert rec["diagnostics_ok"]
    assert rec["estimate"] == pytest.approx(beta[1], rel=1e-6)


def test_mmrm_with_dropout_runs_all_structures_and_agrees_roughly():
    data = synthetic_trial(7, n_per_arm=80, dropout_rate=0.3)
    estimates = {cov: mmrm(data, cov)["active1"] for cov in ("unstructured", "ar1", "compound_symmetry")}
    for cov, rec in estimates.items():
        assert rec["diagnostics_ok"] and not rec["fit_failed"], (cov, rec)
        assert rec["n_analysed"] == longitudinal_arrays(data).n_patients_analysed
    values = [rec["estimate"] for rec in estimates.values()]
    ses = [rec["sd"] for rec in estimates.values()]
    assert max(values) - min(values) < 0.5 * min(ses)


@pytest.mark.parametrize("bad", ["toeplitz", "diagonal", "AR(2)", ""])
def test_mmrm_unsupported_covariance_is_a_clear_error(bad):
    data = synthetic_trial(8, n_per_arm=10)
    with pytest.raises(ScenarioError, match="unsupported MMRM covariance structure.*unstructured.*ar1"):
        mmrm(data, bad)
