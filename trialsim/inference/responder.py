"""Responder analysis: conjugate beta-binomial comparison of response rates, batched over trials.

Each arm's response probability p_a ~ Beta(α, β) a priori; with r responders among n completers the posterior is
Beta(α + r, β + n − r). The effect is the risk difference p_arm − p_control (positive = improvement, since a
response is a PANSS reduction). Its posterior mean and SD are exact; P(difference > margin) and the credible
interval come from ``posterior_draws`` Monte Carlo draws per trial, each trial with its own seed.
"""

from __future__ import annotations

import numpy as np

from trialsim.inference.conjugate import ComparisonPosterior
from trialsim.inference.data import TrialBatch
from trialsim.spec.base import PANSS_TOTAL_RANGE
from trialsim.spec.plan import AnalysisPlan


def responders(baseline: np.ndarray, values: np.ndarray, threshold: float) -> np.ndarray:
    """Responder status (NaN where missing): (baseline − value)/(baseline − 30) ≥ threshold (floor-adjusted)."""
    floor = PANSS_TOTAL_RANGE[0]
    with np.errstate(invalid="ignore"):
        status = ((baseline - values) / (baseline - floor) >= threshold).astype(float)
    return np.where(np.isnan(values), np.nan, status)


def analyse_responders(
    batch: TrialBatch, plan: AnalysisPlan, threshold: float, seeds: list[np.random.SeedSequence]
) -> ComparisonPosterior:
    """Posterior of every active-vs-control risk difference at the primary endpoint (completers)."""
    status = responders(batch.baseline, batch.panss[..., batch.endpoint_visit], threshold)
    observed = ~np.isnan(status)
    alpha, beta = plan.priors.response.alpha, plan.priors.response.beta
    arms = range(len(batch.arm_names))
    n = np.stack([((batch.arm == a) & observed).sum(axis=1) for a in arms], axis=1).astype(float)  # (K, A)
    r = np.stack([np.where((batch.arm == a) & observed, status, 0.0).sum(axis=1) for a in arms], axis=1)
    a_post, b_post = alpha + r, beta + n - r
    mean = a_post / (a_post + b_post)
    var = a_post * b_post / ((a_post + b_post) ** 2 * (a_post + b_post + 1))
    draws = plan.posterior_draws
    samples = np.empty((len(seeds), len(batch.arm_names), draws))
    for k, seed in enumerate(seeds):
        samples[k] = np.random.default_rng(seed).beta(a_post[k][:, None], b_post[k][:, None], size=(len(arms), draws))
    active = [a for a in arms if a != batch.control]
    c = batch.control
    diff = samples[:, active, :] - samples[:, [c], :]
    tail = (1 - plan.ci_prob) / 2
    valid = (n[:, active].min(axis=1) > 0) & (n[:, c] > 0)
    return ComparisonPosterior(
        arms=tuple(batch.arm_names[a] for a in active),
        mean=mean[:, active] - mean[:, [c]],
        sd=np.sqrt(var[:, active] + var[:, [c]]),
        ci_low=np.quantile(diff, tail, axis=-1),
        ci_high=np.quantile(diff, 1 - tail, axis=-1),
        prob_gt_margin=np.where(valid[:, None], (diff > plan.decision.margin).mean(axis=-1), 0.0),
        prob_gt_clinical=None
        if plan.decision.clinical_margin is None
        else np.where(valid[:, None], (diff > plan.decision.clinical_margin).mean(axis=-1), 0.0),
        df=np.full(len(seeds), np.nan),
        valid=valid,
    )
