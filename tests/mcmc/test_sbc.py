"""Simulation-based calibration (Talts et al. 2018) of the NUTS models, see :mod:`trialsim.inference.nuts_sbc`.

What is tested:
- calibration: for ``ancova``, ``longitudinal`` (random intercept) and ``responder``, 200 prior-predictive trials
  (parameters drawn from the analysis' own proper priors, 2 × 25 patients, 5 % MCAR cells) are fitted with NUTS;
  the ranks of the true effect among 99 thinned posterior draws (100 possible ranks) must pass a chi-square
  uniformity test on 10 equal bins (20 expected per bin) at p > 0.001. The seeds are fixed, so the outcome is
  deterministic; with calibrated inference a fresh seed would fail with probability 0.001 per test.
- power: the same machinery with a deliberately wrong analysis prior must FAIL the test (p < 0.001) and show
  the expected shape: an effect prior 3× too narrow (ancova) makes the posterior over-confident, so the ranks
  pile up in the two outer bins (> 40 % of them; 20 % if uniform); an effect prior mean shifted up by one prior
  SD (responder) pulls the posterior above the truth, so > 60 % of the ranks fall in the lower half (50 %).
- the generator: on very large prior-predictive trials the frequentist estimates from the project's own design
  helpers recover the true effect (within 5 standard errors), so the generative models use the same
  parameterisation and sign conventions as the analyses.

Measured (2-core machine, one process): the whole file ≈ 3.5 min (longitudinal 108 s, ancova 38 s, responder
30 s — each including its compilation — and 17 s + 15 s for the two wrong-prior runs, which reuse the compiled
models). Uniformity p (10 bins, seed 0): ancova 0.70, longitudinal 0.76, responder 0.55; wrong priors ≈ 1e-50
(ancova, 64 % of ranks in the outer bins) and ≈ 1e-23 (responder, 80 % in the lower half).
"""

from __future__ import annotations

import numpy as np
import pytest

from trialsim.inference.sbc import uniformity_pvalue

pytestmark = [pytest.mark.mcmc, pytest.mark.slow]

SIMS = 200
BINS = 10
SEED = 0
ALPHA = 0.001


def _check_calibrated(res):
    assert res.failed == [], f"fits raised: {res.failed}"
    assert res.ranks.size == SIMS and res.max_rank == 99
    assert res.ranks.min() >= 0 and res.ranks.max() <= res.max_rank
    # the fits themselves converge (diagnostics_ok: R-hat ≤ 1.01, bulk/tail ESS ≥ 400, no divergence); the
    # random-intercept model's log τ has a skewed posterior when τ ≈ 0, whose tail ESS falls below 400 in ≈ 10 %
    # of fits, so the floor is 80 % of fits; divergences must be rare everywhere
    assert res.diagnostics_ok.mean() >= 0.8, res.diagnostics_ok.mean()
    assert (res.divergences > 0).mean() <= 0.02
    p = uniformity_pvalue(res.ranks, res.max_rank, bins=BINS)
    counts = np.histogram(res.ranks, bins=np.linspace(0, res.max_rank + 1, BINS + 1))[0]
    assert p > ALPHA, (p, counts.tolist())
    return p


@pytest.mark.parametrize("kind", ["ancova", "longitudinal", "responder"])
def test_nuts_model_is_calibrated(kind):
    """Ranks of the true effect among thinned posterior draws are uniform (chi-square, 10 bins, p > 0.001)."""
    from trialsim.inference.nuts_sbc import nuts_sbc

    _check_calibrated(nuts_sbc(kind, SIMS, seed=SEED))


def test_sbc_detects_too_narrow_effect_prior():
    """ANCOVA data from the N(2, 4·σ/12) effect prior analysed with N(2, (4/3)·σ/12): p < 0.001, U-shaped ranks."""
    from trialsim.inference.nuts_sbc import nuts_sbc

    res = nuts_sbc("ancova", SIMS, seed=SEED, analysis_overrides={"effect_prior": (2.0, 4.0 / 3.0)})
    assert res.failed == []
    p = uniformity_pvalue(res.ranks, res.max_rank, bins=BINS)
    counts = np.histogram(res.ranks, bins=np.linspace(0, res.max_rank + 1, BINS + 1))[0]
    assert p < ALPHA, (p, counts.tolist())
    outer = (counts[0] + counts[-1]) / counts.sum()
    assert outer > 0.4, counts.tolist()


def test_sbc_detects_shifted_effect_prior():
    """Responder data from the N(0.3, 0.8) log-OR prior analysed with N(1.1, 0.8): p < 0.001, ranks skewed low."""
    from trialsim.inference.nuts_sbc import nuts_sbc

    res = nuts_sbc("responder", SIMS, seed=SEED, analysis_overrides={"effect_prior": (1.1, 0.8)})
    assert res.failed == []
    p = uniformity_pvalue(res.ranks, res.max_rank, bins=BINS)
    assert p < ALPHA, p
    lower = np.mean(res.ranks < (res.max_rank + 1) / 2)
    assert lower > 0.6, lower


# --------------------------------------------------------------------------------------------------
# the generator (no MCMC)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ancova", "longitudinal", "responder"])
def test_generator_matches_analysis_parameterisation(kind):
    """A 2 × 4000-patient prior-predictive trial: the frequentist estimate (from the analyses' own design
    helpers) is within 5 standard errors of the true effect, for 5 draws of the parameters."""
    from trialsim.inference.frequentist import ancova_design, longitudinal_arrays, responder_counts
    from trialsim.inference.nuts import PriorSpec, _normalise_effect_prior
    from trialsim.inference.nuts_sbc import SBC_PRIORS, simulate_trial

    cfg = SBC_PRIORS[kind]
    prior = PriorSpec(effect=_normalise_effect_prior(cfg["effect_prior"], 1),
                      vague_sd=cfg.get("vague_sd", 100.0), nuisance_sd=cfg["nuisance_sd"],
                      scaled_by_sigma=cfg.get("prior_scaled_by_sigma", False), sigma_ref=cfg.get("sigma_ref"),
                      sigma=cfg.get("sigma_prior", "halfnormal"), sigma_scale=cfg.get("sigma_scale", 50.0),
                      sigma2_shape=cfg.get("sigma2_shape"), sigma2_rate=cfg.get("sigma2_rate"))
    for i in range(5):
        truth, data = simulate_trial(kind, prior, np.random.default_rng(100 + i), n_per_arm=4000)
        if kind == "ancova":
            d = ancova_design(data)
            beta, *_ = np.linalg.lstsq(d.X, d.y, rcond=None)
            resid = d.y - d.X @ beta
            cov = np.linalg.inv(d.X.T @ d.X) * (resid @ resid) / (d.n - d.X.shape[1])
            est, se = beta[1], np.sqrt(cov[1, 1])
        elif kind == "longitudinal":
            long = longitudinal_arrays(data)
            pat, vis = np.nonzero(long.mask)
            X, y = long.design_rows(pat, vis), long.change[pat, vis]
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            at_end = vis == long.endpoint
            resid_end = (y - X @ beta)[at_end]
            arm_end = data.arm[pat[at_end]]
            est = beta[long.effect_column(0)]
            se = np.sqrt(resid_end.var() * (1 / np.sum(arm_end == 0) + 1 / np.sum(arm_end == 1)))
        else:
            x, n = responder_counts(data)
            logit = np.log(x / (n - x))
            est, se = logit[1] - logit[0], np.sqrt(np.sum(1 / x + 1 / (n - x)))
        assert abs(est - truth) <= 5 * se, (kind, i, est, truth, se)
