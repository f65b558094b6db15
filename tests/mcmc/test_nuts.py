"""NUTS (PyMC + nutpie) analyses against exact or established answers on the same simulated data sets.

Tolerances (each stated where used):
- posterior means: |NUTS mean − exact| ≤ 4·MCSE (+ a small allowance for the vague prior's shrinkage, or for
  the Bayesian-vs-REML difference where the reference is frequentist);
- posterior SDs: relative error ≤ 8 % against exact posteriors (the SD of a 2 000-draw estimate with
  ESS ≳ 1 000 has a relative Monte Carlo SE ≈ 2–3 %), ≤ 15 % against REML/Wald standard errors.

Runtime: three compilations (ancova, longitudinal random intercept, responder; ≈ 10–40 s each on 2 cores)
shared through the module-level compiled-model cache, plus < 10 s of sampling.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import special

from trialsim.inference.data import TrialData
from trialsim.inference.diagnostics import RECORD_KEYS, convergence_summary
from trialsim.testing import synthetic_trial

# --------------------------------------------------------------------------------------------------
# synthetic trials
# --------------------------------------------------------------------------------------------------


def ols_endpoint(data: TrialData):
    """Exact flat-prior (Jeffreys σ) ANCOVA posterior of the effect: t_{n−p}(β̂, se)."""
    from trialsim.inference.frequentist import ancova_design

    d = ancova_design(data)
    n, p = d.X.shape
    xtx_inv = np.linalg.inv(d.X.T @ d.X)
    beta = xtx_inv @ d.X.T @ d.y
    resid = d.y - d.X @ beta
    df = n - p
    se = math.sqrt(resid @ resid / df * xtx_inv[1, 1])
    return beta[1], se, df


DATASETS = [synthetic_trial(seed) for seed in (11, 12, 13)]


def assert_converged(rec):
    """Sound fit for an agreement test. Not ``diagnostics_ok`` itself: with 2 chains the R-hat ≤ 1.01 rule flags
    ≈ 1–3 % of well-mixed fits by chance (measured on 100 random-intercept fits), which is a property of the
    threshold, not of the agreement being tested here."""
    assert not rec["fit_failed"], rec
    assert rec["rhat_max"] <= 1.02 and rec["ess_bulk_min"] >= 400 and rec["ess_tail_min"] >= 400, rec
    assert rec["divergences"] == 0, rec


# --------------------------------------------------------------------------------------------------
# diagnostics (no sampling)
# --------------------------------------------------------------------------------------------------


def test_convergence_summary_matches_arviz():
    import arviz as az

    rng = np.random.default_rng(3)
    chains, draws = 2, 999
    x = np.zeros((chains, draws, 4))
    for t in range(1, draws):
        x[:, t] = 0.7 * x[:, t - 1] + rng.normal(size=(chains, 4))
    x[1, :, 2] += 0.3  # a chain offset: R-hat > 1
    x[:, :, 3] = np.round(rng.exponential(size=(chains, draws)), 1)  # ties
    summary = convergence_summary(x)
    for j in range(4):
        a = x[:, :, j]
        assert summary["rhat"][j] == pytest.approx(float(az.rhat(a)), rel=1e-10)
        assert summary["ess_bulk"][j] == pytest.approx(float(az.ess(a)), rel=1e-10)
        assert summary["ess_tail"][j] == pytest.approx(float(az.ess(a, method="tail")), rel=1e-10)
        assert summary["mcse_mean"][j] == pytest.approx(float(np.squeeze(az.mcse(a))), rel=1e-10)


def test_importing_inference_modules_does_not_import_pymc():
    code = (
        "import sys, trialsim.inference.nuts, trialsim.inference.frequentist, "
        "trialsim.inference.diagnostics; "
        "bad = [m for m in ('pymc', 'nutpie', 'pytensor', 'statsmodels') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------------------------------
# compiled analyses (shared across tests through the module cache)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ancova_flat():
    from trialsim.inference.nuts import NutsAnalysis

    return NutsAnalysis(
        "ancova",
        sigma_prior="jeffreys",
        nuisance_sd=None,
        vague_sd=1e4,
        margin=0.0,
        margin2=3.0,
        draws=1000,
        tune=500,
        chains=2,
    )


@pytest.mark.mcmc
def test_ancova_vague_prior_matches_exact_t_posterior(ancova_flat):
    for data in DATASETS:
        res = ancova_flat.fit(data, seed=7)
        rec = res["active1"]
        assert set(rec) == set(RECORD_KEYS)
        assert_converged(rec)
        beta, se, df = ols_endpoint(data)
        exact_sd = se * math.sqrt(df / (df - 2))
        # mean: within 4 MCSE (+0.01 PANSS for the N(0, 10^4) effect prior's shrinkage, ~1e-5 here)
        assert abs(rec["estimate"] - beta) <= 4 * rec["mcse"] + 0.01, (rec["estimate"], beta, rec["mcse"])
        assert rec["sd"] == pytest.approx(exact_sd, rel=0.08)
        # P(effect > margin) against the exact t posterior: binomial-ish MC error, 0.03 absolute
        from scipy import stats

        for key, margin in (("prob_effect_gt_margin", 0.0), ("prob_effect_gt_margin2", 3.0)):
            exact = stats.t.sf((margin - beta) / se, df)
            assert rec[key] == pytest.approx(exact, abs=0.03)


@pytest.mark.mcmc
def test_ancova_sigma_scaled_prior_matches_normal_inverse_gamma():
    """Skeptical N(0, 3·σ/σ_ref) effect prior, σ² ~ InvGamma(2, 200), flat intercept/slope: closed form."""
    from trialsim.inference.frequentist import ancova_design
    from trialsim.inference.nuts import NutsAnalysis

    a0, b0, m_eff, s_eff, sigma_ref = 2.0, 200.0, 0.0, 3.0, 15.0
    nuts = NutsAnalysis(
        "ancova",
        effect_prior=(m_eff, s_eff),
        prior_scaled_by_sigma=True,
        sigma_ref=sigma_ref,
        sigma_prior="inverse_gamma",
        sigma2_shape=a0,
        sigma2_rate=b0,
        nuisance_sd=None,
    )
    data = DATASETS[0]
    d = ancova_design(data)
    X, y = d.X, d.y
    n, p = X.shape
    lam0 = np.diag([0.0, sigma_ref**2 / s_eff**2, 0.0])
    m0 = np.array([0.0, m_eff, 0.0])
    lam_n = X.T @ X + lam0
    beta_n = np.linalg.solve(lam_n, X.T @ y + lam0 @ m0)
    a_n = a0 + (n - 2) / 2.0  # two flat coefficients
    b_n = b0 + 0.5 * (y @ y + m0 @ lam0 @ m0 - beta_n @ lam_n @ beta_n)
    nu = 2 * a_n
    scale = math.sqrt(b_n / a_n * np.linalg.inv(lam_n)[1, 1])
    exact_mean, exact_sd = beta_n[1], scale * math.sqrt(nu / (nu - 2))
    rec = nuts.fit(data, seed=3)["active1"]
    assert_converged(rec)
    assert abs(rec["estimate"] - exact_mean) <= 4 * rec["mcse"], (rec["estimate"], exact_mean)
    assert rec["sd"] == pytest.approx(exact_sd, rel=0.08)
    # and the prior visibly shrinks: the flat-prior mean is farther from 0
    assert abs(exact_mean) < abs(ols_endpoint(data)[0])


@pytest.mark.mcmc
def test_longitudinal_random_intercept_matches_mixedlm():
    import statsmodels.api as sm

    from trialsim.inference.frequentist import longitudinal_arrays
    from trialsim.inference.nuts import NutsAnalysis

    nuts = NutsAnalysis(
        "longitudinal", n_visits=6, residual="random_intercept", sigma_prior="jeffreys", nuisance_sd=None, vague_sd=1e4
    )
    for data in DATASETS[:2]:
        long = longitudinal_arrays(data)
        pat, vis = np.nonzero(long.mask)
        X = long.design_rows(pat, vis)
        fit = sm.MixedLM(long.change[pat, vis], X, groups=pat).fit(reml=True)
        j = long.effect_column(0)
        est, se = float(fit.fe_params[j]), float(fit.bse_fe[j])
        rec = nuts.fit(data, seed=5)["active1"]
        assert_converged(rec)
        # Bayesian flat-prior mean vs REML estimate: 4 MCSE + 0.05 SE (variance-component uncertainty)
        assert abs(rec["estimate"] - est) <= 4 * rec["mcse"] + 0.05 * se, (rec["estimate"], est)
        assert rec["sd"] == pytest.approx(se, rel=0.15)


@pytest.mark.mcmc
def test_responder_flat_prior_matches_beta_posteriors_and_two_proportion_test():
    """Flat priors on the control logit and the log-OR = independent Beta(x, n − x) posteriors of the two
    response rates, so the log-OR posterior mean/variance are digamma/trigamma sums."""
    from trialsim.inference.frequentist import responder_counts
    from trialsim.inference.nuts import NutsAnalysis

    nuts = NutsAnalysis("responder", nuisance_sd=None, vague_sd=1e4, responder_threshold=0.20)
    for data in DATASETS[:2]:
        x, n = responder_counts(data, 0.20)
        assert 0 < x[0] < n[0] and 0 < x[1] < n[1]
        exact_mean = (
            special.digamma(x[1]) - special.digamma(n[1] - x[1]) - special.digamma(x[0]) + special.digamma(n[0] - x[0])
        )
        exact_sd = math.sqrt(
            special.polygamma(1, x[1])
            + special.polygamma(1, n[1] - x[1])
            + special.polygamma(1, x[0])
            + special.polygamma(1, n[0] - x[0])
        )
        rec = nuts.fit(data, seed=9)["active1"]
        assert_converged(rec)
        assert abs(rec["estimate"] - exact_mean) <= 4 * rec["mcse"], (rec["estimate"], exact_mean)
        assert rec["sd"] == pytest.approx(exact_sd, rel=0.08)
        # two-proportion comparison: sample log odds ratio and its Wald SE (large-sample agreement, 10 %)
        log_or = math.log(x[1] / (n[1] - x[1])) - math.log(x[0] / (n[0] - x[0]))
        wald = math.sqrt(1 / x[1] + 1 / (n[1] - x[1]) + 1 / x[0] + 1 / (n[0] - x[0]))
        assert abs(rec["estimate"] - log_or) <= 0.1 * wald
        assert rec["sd"] == pytest.approx(wald, rel=0.10)


@pytest.mark.mcmc
def test_compile_runs_once_for_many_fits():
    from trialsim.inference import nuts as nuts_mod

    before = nuts_mod.compile_count()  # (3-arm ANCOVA is compiled by no other test)
    analysis = nuts_mod.NutsAnalysis("ancova", n_arms=3, draws=200, tune=200)
    assert nuts_mod.compile_count() == before + 1
    for seed in range(6):
        res = analysis.fit(synthetic_trial(100 + seed, n_per_arm=40, n_arms=3), seed=seed)
        assert list(res) == ["active1", "active2"]
        assert not res.failed
    # a second analysis of the same structure with another prior reuses the compiled model
    other = nuts_mod.NutsAnalysis("ancova", n_arms=3, effect_prior=(0.0, 4.0), draws=200, tune=200)
    other.fit(synthetic_trial(200, n_per_arm=40, n_arms=3), seed=1)
    assert nuts_mod.compile_count() == before + 1
    assert analysis.n_compiles == 1 and other.n_compiles == 0


@pytest.mark.mcmc
def test_same_seed_same_result_and_seed_sequences(ancova_flat):
    data = DATASETS[1]
    a = ancova_flat.fit(data, seed=123)["active1"]
    b = ancova_flat.fit(data, seed=123)["active1"]
    c = ancova_flat.fit(data, seed=124)["active1"]
    assert a == b
    assert a["estimate"] != c["estimate"]
    ss = np.random.SeedSequence(2024).spawn(2)
    d1 = ancova_flat.fit(data, seed=ss[0])["active1"]
    d2 = ancova_flat.fit(data, seed=np.random.SeedSequence(2024).spawn(2)[0])["active1"]
    assert d1 == d2


@pytest.mark.mcmc
def test_hard_case_returns_failed_diagnostics_not_exceptions(ancova_flat):
    from trialsim.inference.nuts import NutsAnalysis

    tiny = NutsAnalysis("ancova", sigma_prior="jeffreys", nuisance_sd=None, vague_sd=1e4, draws=20, tune=20)
    data = synthetic_trial(5, n_per_arm=3, dropout_rate=0.0)
    res = tiny.fit(data, seed=1)
    rec = res["active1"]
    assert set(rec) == set(RECORD_KEYS)
    assert rec["diagnostics_ok"] is False
    assert rec["ess_bulk_min"] < 400 or rec["rhat_max"] > 1.01 or rec["divergences"] > 0
    # no completer at all in the active arm, and no patient at all: failed records, never an exception
    empty = synthetic_trial(6, n_per_arm=3, dropout_rate=0.0)
    panss = empty.panss.copy()
    panss[empty.arm == 1, -1] = np.nan
    from dataclasses import replace

    for bad in (replace(empty, panss=panss), replace(empty, panss=np.full_like(panss, np.nan))):
        rec = tiny.fit(bad, seed=2)["active1"]
        assert rec["diagnostics_ok"] is False
        assert (
            rec["fit_failed"] or not np.isfinite(rec["rhat_max"]) or rec["rhat_max"] > 1.01 or rec["ess_bulk_min"] < 400
        )


@pytest.mark.mcmc
def test_keep_idata_can_be_saved(ancova_flat, tmp_path):
    import arviz as az

    res = ancova_flat.fit(DATASETS[0], seed=1, keep_idata=True)
    idata = res.idata
    assert idata is not None
    assert idata.posterior["effect"].shape == (2, 1000, 1)
    assert float(idata.posterior["effect"].mean()) == pytest.approx(res["active1"]["estimate"])
    assert "sigma" in idata.posterior and "diverging" in idata.sample_stats
    path = tmp_path / "trial0.nc"
    az.to_netcdf(idata, str(path))
    assert path.stat().st_size > 0


@pytest.mark.mcmc
@pytest.mark.slow
@pytest.mark.parametrize("residual", ["ar1", "unstructured"])
def test_longitudinal_ar1_and_unstructured_match_reml(residual):
    """The padded patient-level models (two more compilations, ≈ 3 s per fit): flat-prior posterior vs the REML
    MMRM of :mod:`trialsim.inference.frequentist` with the same covariance structure (monotone dropout, so
    the unstructured likelihood is exact). Tolerance: 4 MCSE + 0.1 SE for the mean, 15 % for the SD."""
    from trialsim.inference.frequentist import mmrm
    from trialsim.inference.nuts import NutsAnalysis

    data = DATASETS[2]
    nuts = NutsAnalysis(
        "longitudinal",
        n_max=data.n + 17,
        n_visits=6,
        residual=residual,
        sigma_prior="jeffreys",
        nuisance_sd=None,
        vague_sd=1e4,
    )
    ref = mmrm(data, residual)["active1"]
    rec = nuts.fit(data, seed=4)["active1"]
    assert_converged(rec)
    assert abs(rec["estimate"] - ref["estimate"]) <= 4 * rec["mcse"] + 0.1 * ref["sd"], (rec, ref)
    assert rec["sd"] == pytest.approx(ref["sd"], rel=0.15)
