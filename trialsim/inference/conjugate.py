"""Bayesian ANCOVA with a conjugate normal–inverse-gamma prior: exact posteriors, batched over trials.

Model (per trial): change_i = β₀ + Σ_a β_a·[arm_i = a] + γ·(baseline_i − mean) + ε_i, ε_i ~ N(0, σ²), on the
completers (or with LOCF/BOCF imputation). Prior: β₀, γ flat; β_a | σ² ~ N(−m, σ²/λ) with λ = (sd_reference/sd)²
(flat when sd is None); σ² ~ IG(a₀, b₀) (Jeffreys: a₀ = b₀ = 0). With k_flat flat coefficients the posterior is
Λₙ = Λ₀ + XᵀX, mₙ = Λₙ⁻¹(Λ₀m₀ + Xᵀy), aₙ = a₀ + (n − k_flat)/2, bₙ = b₀ + (yᵀy + m₀ᵀΛ₀m₀ − mₙᵀΛₙmₙ)/2,
and each β_a is Student-t with 2aₙ degrees of freedom, location mₙ and scale² (bₙ/aₙ)(Λₙ⁻¹)_aa.
With flat priors throughout this is exactly the frequentist ANCOVA t distribution (df = n − p).
The reported effect is −β_a (PANSS points, positive = improvement).

A robust mixture prior (1 − w)·informative + w·vague is conjugate too: each component gives the posterior above,
and the posterior weights are proportional to w_i times the component's marginal likelihood,
log ML_i = ½ Σ log λ_i − ½ log|Λₙ,i| − aₙ log bₙ,i + const (the constant is common to both components).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr, stdtrit

from trialsim.inference.data import TrialBatch
from trialsim.spec.plan import AnalysisPlan


@dataclass(frozen=True)
class ComparisonPosterior:
    """Posterior of each active arm's effect vs control, arrays of shape (trials, comparisons)."""

    arms: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    prob_gt_margin: np.ndarray
    df: np.ndarray
    valid: np.ndarray
    prob_gt_clinical: np.ndarray | None = None
    residual_sd: np.ndarray | None = None  # (trials,) √(b/a) of a normal–inverse-gamma posterior (PANSS points)


def endpoint_change(batch: TrialBatch, measure: str, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, change at the endpoint) with NaN where the patient does not enter the analysis.

    ``completers``: observed endpoint only; ``locf``: last observed visit carried forward; ``bocf``: baseline
    carried forward (no change) — both only for patients known to have dropped out before the endpoint (at an
    interim look, patients still in follow-up do not enter yet).
    """
    baseline, values = batch.score(measure)
    change = values[..., batch.endpoint_visit] - baseline
    if missing == "completers":
        return baseline, change
    impute = np.isnan(change) & np.isfinite(batch.dropout_week) & ~np.isnan(baseline)
    if missing == "bocf":
        return baseline, np.where(impute, 0.0, change)
    if missing == "locf":
        upto = values[..., : batch.endpoint_visit + 1]
        last = (~np.isnan(upto)).cumsum(axis=-1).argmax(axis=-1)  # index of the last observed visit
        carried = np.take_along_axis(upto, last[..., None], axis=-1)[..., 0]
        return baseline, np.where(impute, carried - baseline, change)
    raise ValueError(f"missing-data handling {missing!r} does not apply to an ANCOVA")


def _design(batch: TrialBatch, measure: str, missing: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Design matrices X (K, N, p), responses y (K, N) and analysis weights w (K, N) of a batch."""
    active = [a for a in range(len(batch.arm_names)) if a != batch.control]
    baseline, change = endpoint_change(batch, measure, missing)
    w = (~np.isnan(change)).astype(float)
    baseline = np.where(w > 0, baseline, 0.0)  # patients outside the analysis (or not yet randomised) weigh 0
    analysed = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    centre = (baseline * w).sum(axis=1, keepdims=True) / analysed
    X = np.empty(batch.arm.shape + (2 + len(active),))
    X[..., 0] = 1.0
    for j, a in enumerate(active):
        X[..., 1 + j] = batch.arm == a
    X[..., -1] = baseline - centre
    y = np.where(w > 0, change, 0.0)
    return X, y, w, active


@dataclass(frozen=True)
class _NIG:
    """Normal–inverse-gamma posterior of the effects (−β_a), per trial: Student-t marginals."""

    loc: np.ndarray  # (K, comparisons)
    scale: np.ndarray  # (K, comparisons)
    df: np.ndarray  # (K,)
    log_ml: np.ndarray  # (K,), up to a constant shared by components with the same flat dimensions
    residual_sd: np.ndarray  # (K,) √(bₙ/aₙ)


def _posterior(
    xtx: np.ndarray,
    xty: np.ndarray,
    yty: np.ndarray,
    n: np.ndarray,
    valid: np.ndarray,
    effect_mean: float,
    effect_precision: float,
    a0: float,
    b0: float,
) -> _NIG:
    K, p, _ = xtx.shape
    lam = np.zeros(p)
    m0 = np.zeros(p)
    lam[1:-1] = effect_precision
    m0[1:-1] = -effect_mean
    k_flat = int(np.sum(lam == 0))
    precision = np.where(valid[:, None, None], xtx, np.eye(p)) + np.diag(lam)
    rhs = xty + lam * m0
    mean_n = np.linalg.solve(precision, rhs[..., None])[..., 0]
    cov_unscaled = np.linalg.inv(precision)
    quad = yty + np.sum(lam * m0**2) - np.einsum("ki,ki->k", mean_n, rhs)
    a_n = a0 + (n - k_flat) / 2.0
    b_n = b0 + np.maximum(quad, 1e-12) / 2.0
    effects = np.arange(1, p - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale2 = (b_n / a_n)[:, None] * cov_unscaled[:, effects, effects]
        _, logdet = np.linalg.slogdet(precision)
        log_ml = 0.5 * np.sum(np.log(lam[lam > 0])) - 0.5 * logdet - a_n * np.log(b_n)
    return _NIG(
        loc=np.where(valid[:, None], -mean_n[:, effects], np.nan),
        scale=np.sqrt(np.where(valid[:, None], scale2, np.nan)),
        df=np.where(valid, 2.0 * a_n, np.nan),
        log_ml=log_ml,
        residual_sd=np.where(valid, np.sqrt(b_n / a_n), np.nan),
    )


def _t_sf(threshold: float, post: _NIG) -> np.ndarray:
    """P(effect > threshold) under each t marginal."""
    return stdtr(post.df[:, None], (post.loc - threshold) / post.scale)


def _t_sd(post: _NIG) -> np.ndarray:
    dfc = post.df[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dfc > 2, post.scale * np.sqrt(dfc / np.maximum(dfc - 2, 1e-12)), np.inf)


def analyse_ancova(
    batch: TrialBatch,
    plan: AnalysisPlan,
    measure: str = "total",
    effect_prior: tuple[float, float | None] | None = None,
) -> ComparisonPosterior:
    """Exact conjugate posterior of every active-vs-control effect on the change in ``measure`` (``total``,
    ``positive`` or ``negative`` PANSS) for a batch of trials of one design.

    ``effect_prior`` = (mean, sd) in points overrides the plan's (used for library-based priors, resolved by the
    caller); sd None is flat.
    """
    X, y, w, active = _design(batch, measure, plan.missing)
    p = X.shape[-1]
    prior = plan.priors
    mean, sd = effect_prior if effect_prior is not None else (prior.effect.mean, prior.effect.sd)
    reference = prior.effect.sd_reference
    a0, b0 = (0.0, 0.0) if prior.residual.kind == "jeffreys" else (prior.residual.shape, prior.residual.scale)

    Xw = X * w[..., None]
    xtx = np.einsum("kni,knj->kij", Xw, X)
    xty = np.einsum("kni,kn->ki", Xw, y)
    yty = np.einsum("kn,kn->k", w * y, y)
    n = w.sum(axis=1)
    arm_counts = xtx[:, np.arange(1, p - 1), np.arange(1, p - 1)]
    control_count = n - arm_counts.sum(axis=1)
    k_flat = 2 + (len(active) if sd is None else 0)
    valid = (n - k_flat + 2 * a0 > 0) & (arm_counts.min(axis=1) > 0) & (control_count > 0) & (n > p)

    precision = 0.0 if sd is None else (reference / sd) ** 2
    components = [(1.0, _posterior(xtx, xty, yty, n, valid, mean, precision, a0, b0))]
    if prior.effect.robust is not None:
        robust = prior.effect.robust
        vague = _posterior(xtx, xty, yty, n, valid, mean, (reference / robust.vague_sd) ** 2, a0, b0)
        components = [(1.0 - robust.weight, components[0][1]), (robust.weight, vague)]
    log_w = np.stack([np.log(weight) + post.log_ml for weight, post in components])
    weights = np.exp(log_w - log_w.max(axis=0))
    weights /= weights.sum(axis=0)  # (components, K)

    def mixture(values: list[np.ndarray]) -> np.ndarray:
        return sum(weights[i][:, None] * v for i, v in enumerate(values))

    margin, clinical = plan.decision.margin, plan.decision.clinical_margin
    loc = mixture([post.loc for _, post in components])
    second = mixture([_t_sd(post) ** 2 + post.loc**2 for _, post in components])
    sd_post = np.sqrt(np.maximum(second - loc**2, 0.0))
    prob = mixture([_t_sf(margin, post) for _, post in components])
    prob_clinical = None if clinical is None else mixture([_t_sf(clinical, post) for _, post in components])
    tail = (1.0 - plan.ci_prob) / 2.0
    if len(components) == 1:
        post = components[0][1]
        quantile = stdtrit(post.df[:, None], 1.0 - tail)
        low, high = post.loc - quantile * post.scale, post.loc + quantile * post.scale
    else:
        low = _mixture_quantile(components, weights, tail)
        high = _mixture_quantile(components, weights, 1.0 - tail)
    return ComparisonPosterior(
        arms=tuple(batch.arm_names[a] for a in active),
        mean=loc,
        sd=np.where(valid[:, None], sd_post, np.nan),
        ci_low=low,
        ci_high=high,
        prob_gt_margin=np.where(valid[:, None], prob, 0.0),
        df=components[0][1].df,
        valid=valid,
        prob_gt_clinical=None if prob_clinical is None else np.where(valid[:, None], prob_clinical, 0.0),
        residual_sd=components[0][1].residual_sd if len(components) == 1 else None,
    )


def _mixture_quantile(components: list[tuple[float, _NIG]], weights: np.ndarray, q: float) -> np.ndarray:
    """q-quantile of a mixture of Student-t marginals by vectorised bisection (60 halvings)."""
    locs = np.stack([post.loc for _, post in components])
    scales = np.stack([post.scale for _, post in components])
    low = np.nanmin(locs - 50 * scales, axis=0)
    high = np.nanmax(locs + 50 * scales, axis=0)
    for _ in range(60):
        mid = (low + high) / 2
        cdf = sum(
            weights[i][:, None] * stdtr(post.df[:, None], (mid - post.loc) / post.scale)
            for i, (_, post) in enumerate(components)
        )
        below = cdf < q
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return (low + high) / 2
