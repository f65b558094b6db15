"""The laplace engine against NUTS on the same simulated trials: same longitudinal model (unstructured
covariance), same priors.

Trials: 8 simulated xanomeline_addon_crs trials of 200 patients (4 post-baseline visits, 20 % MAR dropout), with
the vague effect prior, and 2 of them again with an informative N(0, 3²) prior on the endpoint effect.

NUTS runs 4 chains × 2,000 draws (after 500 tuning steps) to keep its own Monte Carlo error small; its error is
then added to each tolerance:
- posterior mean: |laplace − NUTS| ≤ 0.1 posterior SD + 3 × NUTS's MCSE of the mean;
- P(effect > 0): |laplace − NUTS| ≤ 0.01 + 3 × NUTS's MCSE of P, the MCSE of the mean of the indicator
  1{effect > 0} over its draws (≈ 0.005 at P = 0.8; laplace's own Monte Carlo error is ≤ 0.002 by construction);
- posterior SD: within 10 % (NUTS's SD carries a few % of Monte Carlo error).

Runtime ≈ 40–70 s on 2 cores: one compilation of the unstructured model (≈ 20–40 s) and 10 fits of ≈ 1 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from trialsim import simulate_trial
from trialsim.inference.diagnostics import convergence_summary
from trialsim.inference.laplace import LaplaceAnalysis
from trialsim.spec.loading import load_scenario

pytestmark = pytest.mark.mcmc


@pytest.fixture(scope="module")
def trials():
    scenario = load_scenario(SCENARIOS / "xanomeline_addon_crs.yaml")
    return [simulate_trial(scenario, 200, np.random.SeedSequence(314, spawn_key=(k,)))[0] for k in range(8)]


@pytest.mark.parametrize("effect_prior, which", [(None, range(8)), ((0.0, 3.0), range(2))], ids=["vague", "N(0,3²)"])
def test_laplace_agrees_with_nuts(trials, effect_prior, which):
    from trialsim.inference.nuts import NutsAnalysis

    # priors are data of the compiled model: the second case reuses the first one's compilation
    nuts = NutsAnalysis(
        "longitudinal", n_visits=5, residual="unstructured", effect_prior=effect_prior, draws=2000, tune=500, chains=4
    )
    laplace = LaplaceAnalysis("unstructured", effect_prior=effect_prior)
    for k in which:
        arm = trials[k].arm_names[1]
        fit = nuts.fit(trials[k], seed=k, keep_idata=True)
        ref = fit[arm]
        rec = laplace.fit(trials[k], seed=k)[arm]
        assert not ref["fit_failed"] and ref["rhat_max"] <= 1.02 and ref["ess_tail_min"] >= 400, ref
        assert rec["diagnostics_ok"], rec
        p = ref["prob_effect_gt_margin"]
        above = (fit.idata.posterior["effect"].values > 0.0).astype(float)  # (chains, draws, arms)
        p_mcse = float(convergence_summary(above)["mcse_mean"][0])
        assert abs(rec["estimate"] - ref["estimate"]) <= 0.1 * ref["sd"] + 3 * ref["mcse"], (k, rec, ref)
        assert abs(rec["prob_effect_gt_margin"] - p) <= 0.01 + 3 * p_mcse, (k, rec, ref)
        assert rec["sd"] == pytest.approx(ref["sd"], rel=0.1), (k, rec, ref)
