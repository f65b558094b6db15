"""The laplace engine (approximate Bayesian MMRM) against exact answers: the priors' Jacobians, the analytic
gradient, a closed-form posterior, the REML MMRM, and its bookkeeping (batches, seeds, failures, plans).

Runtime ≈ 5 s (numpy only, no sampling)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from tests.conftest import ANALYSIS
from trialsim.exceptions import ScenarioError
from trialsim.inference.diagnostics import RECORD_KEYS
from trialsim.inference.frequentist import ancova_design, longitudinal_arrays, mmrm
from trialsim.inference.laplace import AR1, CompoundSymmetry, LaplaceAnalysis, Unstructured, covariance_family
from trialsim.spec.loading import load_plan, validate_model
from trialsim.spec.plan import AnalysisPlan
from trialsim.testing import synthetic_trial


def intermittent(data, seed: int, fraction: float = 0.1):
    """The trial with a random ``fraction`` of its attended post-baseline visits before the last one missed."""
    rng = np.random.default_rng(seed)
    panss = data.panss.copy()
    inner = np.isfinite(panss[:, 2:]) & (rng.random(panss[:, 1:-1].shape) < fraction)
    panss[:, 1:-1][inner] = np.nan
    return replace(data, panss=panss)


# --------------------------------------------------------------------------------------------------
# priors: the density of θ is the stated prior on the natural parameters times |Jacobian|
# --------------------------------------------------------------------------------------------------


def natural_unstructured(family: Unstructured, theta: np.ndarray) -> np.ndarray:
    """(per-visit SDs, correlations below the diagonal) of Σ(θ)."""
    sigma = family.sigma(theta[None])[0][0]
    sd = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(sd, sd)
    return np.concatenate([sd, corr[np.tril_indices(family.n_visits, -1)]])


def log_abs_jacobian(transform, theta: np.ndarray, step: float = 1e-6) -> float:
    """log |det ∂transform/∂θ| by central differences."""
    columns = [(transform(theta + step * e) - transform(theta - step * e)) / (2 * step) for e in np.eye(theta.size)]
    return float(np.linalg.slogdet(np.column_stack(columns))[1])


@pytest.mark.parametrize("eta", [1.0, 2.5])
def test_unstructured_prior_is_halfnormal_sds_and_lkj_correlation(eta):
    """log p(θ) − log p(θ') equals the difference of Σ_t log HalfNormal(s_t; c) + (η − 1) log|R| + log|∂(s, R)/∂θ|,
    the Jacobian by finite differences (tolerance 1e-5, the differencing error)."""
    family = Unstructured(3, sd_scale=20.0, lkj_eta=eta)
    rng = np.random.default_rng(1)

    def reference(theta):
        natural = natural_unstructured(family, theta)
        sd, corr = natural[:3], np.eye(3)
        corr[np.tril_indices(3, -1)] = natural[3:]
        corr = corr + np.tril(corr, -1).T
        prior = np.sum(-(sd**2) / (2 * 20.0**2)) + (eta - 1) * np.linalg.slogdet(corr)[1]
        return prior + log_abs_jacobian(lambda t: natural_unstructured(family, t), theta)

    def ours(theta):
        sigma, _ = family.sigma(theta[None])
        return family.log_prior(theta[None], sigma, None)[0][0]

    points = [np.concatenate([rng.normal(5.0, 0.5, 3), rng.normal(0, 0.4, 3)]) for _ in range(4)]
    for a, b in zip(points[:-1], points[1:]):
        assert ours(a) - ours(b) == pytest.approx(reference(a) - reference(b), abs=1e-5)


@pytest.mark.parametrize(
    "family, natural, prior",
    [
        (AR1(4, 20.0), lambda f, t: np.array([math.exp(t[0]), math.tanh(t[1])]), lambda v: -(v[0] ** 2) / 800.0),
        (CompoundSymmetry(4, 20.0), lambda f, t: np.exp(t), lambda v: -np.sum(v**2) / 800.0),
    ],
)
def test_two_parameter_priors_are_the_stated_densities(family, natural, prior):
    """AR(1): σ ~ HalfNormal(20), ρ ~ U(−1, 1); compound symmetry: σ, τ ~ HalfNormal(20) — through θ's Jacobian."""
    rng = np.random.default_rng(2)
    points = [np.array([rng.normal(2.5, 0.3), rng.normal(0.5, 0.5)]) for _ in range(4)]

    def reference(theta):
        return prior(natural(family, theta)) + log_abs_jacobian(lambda t: natural(family, t), theta)

    def ours(theta):
        sigma, _ = family.sigma(theta[None])
        return family.log_prior(theta[None], sigma, None)[0][0]

    for a, b in zip(points[:-1], points[1:]):
        assert ours(a) - ours(b) == pytest.approx(reference(a) - reference(b), abs=1e-6)


# --------------------------------------------------------------------------------------------------
# the marginal posterior of θ: gradient, monotone fast path
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance", ["unstructured", "ar1", "compound_symmetry"])
@pytest.mark.parametrize("gaps", [False, True], ids=["monotone", "intermittent"])
def test_gradient_of_the_marginal_posterior_matches_finite_differences(covariance, gaps):
    data = synthetic_trial(11, n_per_arm=40, dropout_rate=0.3)
    data = intermittent(data, 3) if gaps else data
    posterior = LaplaceAnalysis(covariance).posterior([longitudinal_arrays(data)])
    theta = posterior.family.start(posterior.stats) + 0.1 * np.random.default_rng(4).normal(size=(1, 1))
    analytic = posterior.evaluate(theta[:, None], gradient=True).gradient[0, 0]
    step = 1e-6

    def log_density(point):
        return posterior.evaluate(point[:, None]).log_density[0, 0]

    numeric = [(log_density(theta + step * e) - log_density(theta - step * e)) / (2 * step) for e in np.eye(theta.size)]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-5)


def test_monotone_closed_form_equals_the_general_pattern_inverse():
    """For monotone patterns the unstructured family builds Σ_OO⁻¹ from the modified Cholesky factors; the general
    path inverts Σ_OO ⊕ I. Same log density and effect posteriors to rounding."""
    data = synthetic_trial(12, n_per_arm=40, dropout_rate=0.4)
    posterior = LaplaceAnalysis("unstructured").posterior([longitudinal_arrays(data)])
    assert posterior._prefix_only
    theta = posterior.family.start(posterior.stats)[:, None] + 0.05 * np.random.default_rng(5).normal(size=(1, 4, 1))
    fast = posterior.evaluate(theta)
    posterior._prefix_only = False
    general = posterior.evaluate(theta)
    np.testing.assert_allclose(fast.log_density, general.log_density, rtol=1e-10)
    np.testing.assert_allclose(fast.effect_mean, general.effect_mean, rtol=1e-10)
    np.testing.assert_allclose(fast.effect_cov, general.effect_cov, rtol=1e-10)


# --------------------------------------------------------------------------------------------------
# posteriors against exact and established answers
# --------------------------------------------------------------------------------------------------


def test_one_visit_posterior_is_the_closed_form_student_t():
    """One post-baseline visit: the unstructured model is the completers' ANCOVA with residual SD σ. With flat priors
    on the coefficients and on σ (HalfNormal(50) is flat within 0.5 % over σ's posterior; the N(0, 100²) effect
    prior shrinks by SE²/100² ≈ 4·10⁻⁴) the effect's posterior is Student-t with ν = n − p − 1, centre β̂ (OLS) and
    scale² = RSS·[(XᵀX)⁻¹]_ee / ν. Tolerances: the importance sampling's stated Monte Carlo errors (0.02 posterior
    SD, 0.002 in probability) plus the priors' shrinkage: 0.03 SD for mean, SD and interval ends, 0.003 for
    P(effect > margin)."""
    data = synthetic_trial(13, n_per_arm=30, visit_weeks=(0, 6), dropout_rate=0.2)
    design = ancova_design(data)
    n, p = design.X.shape
    xtx_inv = np.linalg.inv(design.X.T @ design.X)
    beta = xtx_inv @ design.X.T @ design.y
    rss = float(np.sum((design.y - design.X @ beta) ** 2))
    nu = n - p - 1
    scale = math.sqrt(rss * xtx_inv[1, 1] / nu)
    exact = stats.t(nu, loc=beta[1], scale=scale)
    rec = LaplaceAnalysis("unstructured", margin=2.0, margin2=6.0).fit(data, seed=1)["active1"]
    assert rec["diagnostics_ok"] and not rec["fit_failed"], rec
    sd = exact.std()
    assert abs(rec["estimate"] - exact.mean()) <= 0.03 * sd
    assert abs(rec["sd"] - sd) <= 0.03 * sd
    assert abs(rec["ci_low"] - exact.ppf(0.025)) <= 0.03 * sd
    assert abs(rec["ci_high"] - exact.ppf(0.975)) <= 0.03 * sd
    assert rec["prob_effect_gt_margin"] == pytest.approx(exact.sf(2.0), abs=0.003)
    assert rec["prob_effect_gt_margin2"] == pytest.approx(exact.sf(6.0), abs=0.003)


@pytest.mark.parametrize("covariance", ["unstructured", "ar1", "compound_symmetry"])
def test_agrees_with_the_reml_mmrm_for_any_missingness_pattern(covariance):
    """Dropout and intermittently missed visits, 240 patients: the vague-prior posterior against the REML MMRM with
    the same covariance (which handles any pattern exactly). Bayes and REML differ by O(1/n): posterior mean within
    0.1 REML SE, posterior SD within 5 % of the SE."""
    data = intermittent(synthetic_trial(14, n_per_arm=120, dropout_rate=0.3), 6)
    reference = mmrm(data, covariance)["active1"]
    rec = LaplaceAnalysis(covariance).fit(data, seed=2)["active1"]
    assert rec["diagnostics_ok"], rec
    assert abs(rec["estimate"] - reference["estimate"]) <= 0.1 * reference["sd"]
    assert rec["sd"] == pytest.approx(reference["sd"], rel=0.05)
    assert rec["n_analysed"] == reference["n_analysed"]


def test_informative_effect_prior_is_conjugate_given_the_variances():
    """A N(0, 1²) prior on the endpoint effect pulls the posterior mean towards 0 and narrows it, by about the
    precision-weighted amount of a normal–normal update of the vague-prior posterior (within 10 %)."""
    data = synthetic_trial(15, n_per_arm=60, effect=6.0)
    vague = LaplaceAnalysis("unstructured").fit(data, seed=3)["active1"]
    tight = LaplaceAnalysis("unstructured", effect_prior=(0.0, 1.0)).fit(data, seed=3)["active1"]
    weight = (1 / vague["sd"] ** 2) / (1 / vague["sd"] ** 2 + 1.0)
    assert tight["estimate"] == pytest.approx(weight * vague["estimate"], rel=0.1)
    assert tight["sd"] == pytest.approx(math.sqrt(1 / (1 / vague["sd"] ** 2 + 1.0)), rel=0.1)


# --------------------------------------------------------------------------------------------------
# bookkeeping
# --------------------------------------------------------------------------------------------------


def test_chunks_seeds_and_records():
    """A chunk fitted together equals the trials fitted one by one; the same seed gives the same record, another
    seed another randomised quadrature; every record has the keys of RECORD_KEYS, with NaN MCMC diagnostics."""
    trials = [synthetic_trial(20 + i, n_per_arm=40, n_arms=3) for i in range(4)]
    analysis = LaplaceAnalysis("unstructured", margin2=3.0)
    together = analysis.fit_many(trials, seeds=[1, 2, 3, 4])
    alone = [analysis.fit(data, seed=seed) for data, seed in zip(trials, [1, 2, 3, 4])]
    assert [list(r) for r in together] == [["active1", "active2"]] * 4
    numbers = ("estimate", "sd", "ci_low", "ci_high", "prob_effect_gt_margin", "prob_effect_gt_margin2")
    for a, b in zip(together, alone):
        for name in a:
            assert set(a[name]) == set(RECORD_KEYS)
            np.testing.assert_allclose([a[name][k] for k in numbers], [b[name][k] for k in numbers], rtol=1e-12)
            assert math.isnan(a[name]["rhat_max"]) and math.isnan(a[name]["ess_bulk_min"])
    again = analysis.fit(trials[0], seed=1)["active1"]
    other = analysis.fit(trials[0], seed=9)["active1"]
    assert again["estimate"] == alone[0]["active1"]["estimate"] and other["estimate"] != again["estimate"]


def test_a_trial_that_cannot_be_analysed_gives_failed_records_and_spares_its_chunk():
    good = synthetic_trial(30, n_per_arm=30)
    empty = replace(good, panss=np.where(np.arange(good.panss.shape[1]) == 0, good.panss, np.nan))
    results = LaplaceAnalysis("unstructured").fit_many([good, empty, good], seeds=[1, 2, 1])
    assert results[1].failed and results[1]["active1"]["fit_failed"]
    assert (
        not results[1]["active1"]["diagnostics_ok"]
        and "no observed post-baseline visit" in results[1]["active1"]["error"]
    )
    assert results[0]["active1"]["estimate"] == results[2]["active1"]["estimate"]
    assert results[0]["active1"]["diagnostics_ok"]


def test_unknown_covariance_is_a_clear_error():
    with pytest.raises(ScenarioError, match="unknown covariance 'toeplitz'"):
        LaplaceAnalysis("toeplitz")
    with pytest.raises(ScenarioError, match="unknown covariance"):
        covariance_family("toeplitz", 3)


def test_plans():
    """The bundled laplace plan loads; the engine supports the longitudinal model only, with observed data."""
    plan = load_plan(ANALYSIS / "mmrm_bayes_laplace.yaml")
    assert (plan.engine, plan.model, plan.covariance, plan.missing) == (
        "laplace",
        "longitudinal",
        "unstructured",
        "observed",
    )
    base = {"name": "p", "engine": "laplace", "model": "longitudinal"}
    for covariance in ("random_intercept", "compound_symmetry", "ar1", "unstructured"):
        validate_model(AnalysisPlan, {**base, "covariance": covariance}, "<test>")
    for bad in ({"model": "ancova"}, {"model": "responder"}, {"missing_data": "completers"}):
        with pytest.raises(ScenarioError):
            validate_model(AnalysisPlan, {**base, **bad}, "<test>")
