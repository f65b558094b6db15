"""Conjugate analyses on hand-made data: exact against closed forms (no Monte Carlo tolerance needed)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from trialsim.inference.conjugate import analyse_ancova, endpoint_change
from trialsim.inference.data import TrialBatch
from trialsim.spec.plan import AnalysisPlan


def make_batch(K=3, N=40, V=4, seed=0, dropout=True) -> TrialBatch:
    rng = np.random.default_rng(seed)
    arm = np.tile(np.arange(N) % 2, (K, 1))
    baseline = rng.normal(100, 15, (K, N))
    weeks = np.arange(V, dtype=float) * 2
    panss = baseline[..., None] - (3 + 5 * arm[..., None]) * weeks / weeks[-1] + rng.normal(0, 8, (K, N, V))
    panss[..., 0] = baseline
    if dropout:
        drop_at = rng.integers(1, V + 2, (K, N))  # visits ≥ drop_at are missing (V+1: completer)
        panss = np.where(np.arange(V) >= drop_at[..., None], np.nan, panss)
    return TrialBatch(
        arm_names=("placebo", "drug"),
        control=0,
        visit_weeks=weeks,
        endpoint_visit=V - 1,
        site=np.zeros((K, N), dtype=int),
        arm=arm,
        randomised_week=np.zeros((K, N)),
        baseline=baseline,
        panss=panss,
        visit_time=np.zeros((K, N, V)),
        dropout_week=np.full((K, N), np.inf),
        dropout_reason="withdrawal",
        covariates={},
        end_week=np.zeros(K),
        screened=np.full(K, N),
    )


def plan(**fields) -> AnalysisPlan:
    return AnalysisPlan.model_validate({"name": "t", **fields})


@pytest.mark.parametrize("missing", ["completers", "locf", "bocf"])
def test_flat_prior_equals_ols(missing):
    """Flat priors + Jeffreys: posterior location = OLS estimate, t scale = OLS SE, df = n − p."""
    batch = make_batch()
    post = analyse_ancova(batch, plan(missing_data=missing))
    baseline, change = endpoint_change(batch, "total", missing)
    for k in range(batch.trials):
        keep = ~np.isnan(change[k])
        X = sm.add_constant(np.column_stack([batch.arm[k][keep], baseline[k][keep]]))
        fit = sm.OLS(change[k][keep], X).fit()
        assert post.mean[k, 0] == pytest.approx(-fit.params[1], rel=1e-9)
        df = keep.sum() - 3
        assert post.df[k] == df
        assert post.sd[k, 0] == pytest.approx(fit.bse[1] * np.sqrt(df / (df - 2)), rel=1e-9)


def test_locf_and_bocf_imputation():
    """LOCF/BOCF impute the endpoint of patients known to have dropped out; a patient whose endpoint is missing
    only because the data were cut before it (an interim look: no dropout yet) is not analysed."""
    batch = make_batch(K=1, N=6, V=4, dropout=False)
    panss = batch.panss.copy()
    panss[0, 0, 2:] = np.nan  # dropped out after visit 1
    panss[0, 1, 1:] = np.nan  # dropped out after baseline
    panss[0, 2, 3:] = np.nan  # still in follow-up at the data cut-off
    dropout = np.full((1, 6), np.inf)
    dropout[0, :2] = [batch.visit_weeks[1] + 0.5, 0.5]
    batch = TrialBatch(**{**batch.__dict__, "panss": panss, "dropout_week": dropout})
    base, locf = endpoint_change(batch, "total", "locf")
    _, bocf = endpoint_change(batch, "total", "bocf")
    _, completers = endpoint_change(batch, "total", "completers")
    assert locf[0, 0] == pytest.approx(panss[0, 0, 1] - base[0, 0])
    assert locf[0, 1] == 0.0 and bocf[0, 0] == 0.0 and bocf[0, 1] == 0.0
    assert np.isnan(completers[0, :3]).all() and np.isnan(locf[0, 2]) and np.isnan(bocf[0, 2])
    np.testing.assert_allclose(locf[0, 3:], completers[0, 3:])


def test_informative_prior_with_known_sigma_is_normal_normal():
    """σ² ~ IG(a, a·σ₀²) with huge a fixes σ ≈ σ₀: the effect posterior is the precision-weighted average of the
    OLS estimate (variance σ₀²(XᵀX)⁻¹_jj) and the prior N(m, (sd·σ₀/sd_ref)²)."""
    batch = make_batch(K=1, dropout=False)
    sigma0, m, sd, ref = 8.0, 2.0, 1.5, 8.0
    shape = 1e7
    post = analyse_ancova(
        batch,
        plan(
            priors={
                "effect": {"mean": m, "sd": sd, "sd_reference": ref},
                "residual": {"kind": "inverse_gamma", "shape": shape, "scale": shape * sigma0**2},
            }
        ),
    )
    baseline, change = endpoint_change(batch, "total", "completers")
    X = sm.add_constant(np.column_stack([batch.arm[0], baseline[0] - baseline[0].mean()]))
    cov = np.linalg.inv(X.T @ X)
    ols = -np.linalg.lstsq(X, change[0], rcond=None)[0][1]
    data_var = sigma0**2 * cov[1, 1]
    prior_var = (sd * sigma0 / ref) ** 2
    expected_mean = (ols / data_var + m / prior_var) / (1 / data_var + 1 / prior_var)
    expected_sd = (1 / data_var + 1 / prior_var) ** -0.5
    assert post.mean[0, 0] == pytest.approx(expected_mean, rel=1e-3)
    assert post.sd[0, 0] == pytest.approx(expected_sd, rel=1e-3)


def test_robust_mixture_limits_and_conflict():
    """Weight → 0 gives the informative posterior, weight → 1 the vague one; a prior in conflict with the data
    loses weight, so the robust estimate sits near the vague one while the plain informative one does not."""
    batch = make_batch(K=2, N=200, dropout=False)
    vague = analyse_ancova(batch, plan())
    agreeing = {"mean": 4.0, "sd": 2.0}
    plain_agreeing = analyse_ancova(batch, plan(priors={"effect": agreeing}))
    almost_none = analyse_ancova(batch, plan(priors={"effect": {**agreeing, "robust": {"weight": 1e-9}}}))
    almost_all = analyse_ancova(
        batch, plan(priors={"effect": {**agreeing, "robust": {"weight": 1 - 1e-9, "vague_sd": 1000}}})
    )
    np.testing.assert_allclose(almost_none.mean, plain_agreeing.mean, rtol=1e-6)
    np.testing.assert_allclose(almost_all.mean, vague.mean, atol=0.01)
    informative = {"mean": -20.0, "sd": 1.0}
    plain = analyse_ancova(batch, plan(priors={"effect": informative}))
    robust = analyse_ancova(batch, plan(priors={"effect": {**informative, "robust": {"weight": 0.2}}}))
    assert np.all(np.abs(robust.mean - vague.mean) < 0.2)
    assert np.all(np.abs(plain.mean - vague.mean) > 5)
    assert np.all((robust.ci_low < robust.mean) & (robust.mean < robust.ci_high))


def test_dual_criterion_probability():
    batch = make_batch()
    post = analyse_ancova(batch, plan(decision={"margin": 0, "clinical_margin": 4.0}))
    assert post.prob_gt_clinical is not None
    assert np.all(post.prob_gt_clinical <= post.prob_gt_margin)


def test_plan_rejects_unsupported_combinations():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="supports"):
        plan(engine="conjugate", model="longitudinal")
    with pytest.raises(ValidationError, match="missing_data"):
        plan(engine="nuts", model="longitudinal", missing_data="locf")
    with pytest.raises(ValidationError, match="robust"):
        plan(engine="nuts", priors={"effect": {"sd": 2, "robust": {"weight": 0.3}}})
