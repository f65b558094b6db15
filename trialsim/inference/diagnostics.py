"""Per-fit records and MCMC convergence diagnostics shared by every analysis engine.

Every analysis of one simulated trial (conjugate, NUTS, frequentist) reports, for each active arm, one flat
record with the keys of :data:`RECORD_KEYS`, so that a runner can stack records of different engines into
one table. Keys that do not apply to an engine hold NaN (e.g. ``p_value`` for a Bayesian fit, ``rhat_max`` for
a frequentist one).

The convergence diagnostics here are a vectorised re-implementation of ArviZ's rank-normalised split R-hat,
bulk ESS, tail ESS and MCSE of the mean (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, *Bayesian
Analysis* 16:667). They agree with ``arviz.rhat``/``arviz.ess``/``arviz.mcse`` to floating-point precision
(tested in ``tests/mcmc/test_nuts.py``) but handle all parameters of a fit in one pass: ArviZ costs ≈ 4 ms
per scalar parameter, which would dominate a 30 ms NUTS fit.

Only numpy and scipy are imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

#: Keys of one per-arm record, identical for every engine (conjugate, nuts, frequentist).
#:
#: - ``arm``: name of the active arm compared with control.
#: - ``estimate``: posterior mean (Bayesian) or point estimate (frequentist) of the effect, on the analysis
#:   scale: PANSS points for continuous analyses ((mean change in control) − (mean change in arm)),
#:   log odds ratio (arm vs control) for the responder analysis; positive = improvement.
#: - ``sd``: posterior SD (Bayesian) or standard error (frequentist).
#: - ``ci_low``, ``ci_high``: equal-tailed credible interval / confidence interval (95 % by default).
#: - ``prob_effect_gt_margin``, ``prob_effect_gt_margin2``: posterior P(effect > margin) for the two margins
#:   of a dual criterion (NaN for frequentist fits, and for ``margin2`` when no second margin is set).
#: - ``p_value``: one-sided p-value for H0: effect ≤ margin (frequentist only, NaN otherwise).
#: - ``df``: degrees of freedom of the reference t distribution (frequentist; NaN otherwise).
#: - ``mcse``: Monte Carlo standard error of ``estimate`` (MCMC only; 0 for exact posteriors).
#: - ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``: worst convergence diagnostics over all sampled
#:   parameters (MCMC only).
#: - ``divergences``: number of divergent post-warmup transitions (MCMC only; 0 otherwise).
#: - ``diagnostics_ok``: the fit passed its engine's checks (MCMC thresholds, optimiser convergence).
#: - ``fit_failed``: the fit raised; numeric fields are NaN and ``error`` says why.
#: - ``n_analysed``: number of patients whose data entered the analysis.
#: - ``error``: '' or a one-line description of the failure / warning.
RECORD_KEYS: tuple[str, ...] = (
    "arm",
    "estimate",
    "sd",
    "ci_low",
    "ci_high",
    "prob_effect_gt_margin",
    "prob_effect_gt_margin2",
    "p_value",
    "df",
    "mcse",
    "rhat_max",
    "ess_bulk_min",
    "ess_tail_min",
    "divergences",
    "diagnostics_ok",
    "fit_failed",
    "n_analysed",
    "error",
)


def empty_record(arm: str) -> dict[str, Any]:
    """A record with every key of :data:`RECORD_KEYS`: NaN numbers, not failed, diagnostics not yet ok."""
    rec: dict[str, Any] = {key: math.nan for key in RECORD_KEYS}
    rec.update(arm=arm, divergences=0, diagnostics_ok=False, fit_failed=False, n_analysed=0, error="")
    return rec


def failed_record(arm: str, error: str | BaseException, n_analysed: int = 0) -> dict[str, Any]:
    """The record of a fit that raised: NaN numbers, ``fit_failed=True``, ``diagnostics_ok=False``."""
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    rec = empty_record(arm)
    rec.update(fit_failed=True, diagnostics_ok=False, n_analysed=int(n_analysed), error=_one_line(error))
    return rec


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FitResult(dict):
    """Result of analysing one trial: ``{active arm name: record}`` (a plain dict) plus attributes.

    Attributes:
        idata: the ``arviz.InferenceData`` of the fit when it was asked for (``keep_idata=True``), else None.
        seconds: wall time of the fit (data preparation, sampling and summaries).
        failed: True when the whole fit raised (every record then has ``fit_failed=True``).
    """

    def __init__(
        self,
        records: dict[str, dict[str, Any]] | None = None,
        *,
        idata: Any = None,
        seconds: float = math.nan,
        failed: bool = False,
    ):
        super().__init__(records or {})
        self.idata = idata
        self.seconds = seconds
        self.failed = failed

    def records(self) -> list[dict[str, Any]]:
        """The per-arm records as a list (arm order), e.g. for ``pandas.DataFrame(result.records())``."""
        return list(self.values())


@dataclass(frozen=True)
class DiagnosticThresholds:
    """When an MCMC fit counts as converged (``diagnostics_ok``).

    Defaults follow Vehtari et al. (2021): rank-normalised split R-hat ≤ 1.01 and bulk and tail ESS ≥ 100 per
    chain (≥ 400 for 4 chains); here the ESS floor is an absolute 400 for the default 2 chains × 1000 draws,
    and no divergent transition is tolerated. All are taken over every sampled parameter (worst case).
    """

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    max_divergences: int = 0

    def ok(self, rhat_max: float, ess_bulk_min: float, ess_tail_min: float, divergences: int) -> bool:
        values = (rhat_max, ess_bulk_min, ess_tail_min)
        if not all(np.isfinite(v) for v in values):
            return False
        return bool(
            rhat_max <= self.rhat_max
            and ess_bulk_min >= self.ess_bulk_min
            and ess_tail_min >= self.ess_tail_min
            and divergences <= self.max_divergences
        )


# --------------------------------------------------------------------------------------------------
# Vectorised R-hat / ESS (same algorithm and constants as arviz.stats.diagnostics)
# --------------------------------------------------------------------------------------------------


def _split_chains(x: np.ndarray) -> np.ndarray:
    """(P, C, D) -> (P, 2C, D//2): first and last half of every chain (the middle draw dropped if D is odd)."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=1)


def _average_ranks(flat: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged) of each row of a 2-D array, like ``rankdata(method='average')``."""
    p, n = flat.shape
    order = np.argsort(flat, axis=1)
    srt = np.take_along_axis(flat, order, axis=1)
    idx = np.broadcast_to(np.arange(n), (p, n))
    new = np.ones((p, n), dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    last = np.ones((p, n), dtype=bool)
    last[:, :-1] = new[:, 1:]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    end = (n - 1) - np.maximum.accumulate(np.where(last, (n - 1) - idx, 0)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((p, n))
    np.put_along_axis(ranks, order, 0.5 * (start + end) + 1.0, axis=1)
    return ranks


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each parameter over all its chains and draws (Blom offset 3/8)."""
    p = x.shape[0]
    flat = x.reshape(p, -1)
    ranks = _average_ranks(flat)
    size = flat.shape[1]
    z = special.ndtri((ranks - 0.375) / (size - 0.75 + 1.0))
    return z.reshape(x.shape)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance along the last axis for every lag (FFT, biased /n estimator as ArviZ)."""
    n = x.shape[-1]
    m = _next_fast_len(2 * n)
    centred = x - x.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(centred, n=m, axis=-1)
    f *= np.conjugate(f)
    return np.fft.irfft(f, n=m, axis=-1)[..., :n] / n


def _next_fast_len(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(n))


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each parameter of a (P, C, D) array (Geyer initial monotone sequence, as ArviZ ``_ess``)."""
    p, n_chain, n_draw = x.shape
    out = np.full(p, np.nan)
    if n_draw < 4:
        return out
    x = x.astype(float, copy=False)
    acov = _autocov(x)  # (P, C, D)
    chain_mean = x.mean(axis=2)
    mean_var = acov[:, :, 0].mean(axis=1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + chain_mean.var(axis=1, ddof=1)
    acov_mean = acov.mean(axis=1)  # (P, D)
    spread = x.max(axis=(1, 2)) - x.min(axis=(1, 2))
    total = n_chain * n_draw
    for j in range(p):
        if not np.isfinite(spread[j]):
            continue
        if spread[j] < np.finfo(float).resolution:
            out[j] = float(total)
            continue
        mv, vp, ac = mean_var[j], var_plus[j], acov_mean[j]
        rho = np.zeros(n_draw)
        rho_even = 1.0
        rho[0] = rho_even
        rho_odd = 1.0 - (mv - ac[1]) / vp
        rho[1] = rho_odd
        t = 1
        while t < (n_draw - 3) and (rho_even + rho_odd) > 0.0:
            rho_even = 1.0 - (mv - ac[t + 1]) / vp
            rho_odd = 1.0 - (mv - ac[t + 2]) / vp
            if (rho_even + rho_odd) >= 0:
                rho[t + 1] = rho_even
                rho[t + 2] = rho_odd
            t += 2
        max_t = t - 2
        if rho_even > 0:
            rho[max_t + 1] = rho_even
        t = 1
        while t <= max_t - 2:
            if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
                rho[t + 2] = rho[t + 1]
            t += 2
        tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
        tau = max(tau, 1.0 / np.log10(total))
        out[j] = np.nan if np.isnan(rho).any() else total / tau
    return out


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic (non-split) R-hat of each parameter of a (P, C, D) array."""
    n = x.shape[2]
    chain_mean = x.mean(axis=2)
    chain_var = x.var(axis=2, ddof=1)
    between = n * chain_mean.var(axis=1, ddof=1)
    within = chain_var.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def convergence_summary(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Rank-normalised split R-hat, bulk/tail ESS and MCSE of the mean for every parameter.

    Args:
        draws: posterior draws, shape (chains, draws, P) (P scalar parameters).

    Returns:
        dict of arrays of length P: ``rhat`` (max of bulk and folded R-hat, NaN with < 2 chains),
        ``ess_bulk``, ``ess_tail`` (min of the 5 % and 95 % quantile ESS), ``ess_mean``, ``mcse_mean``.
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim == 2:
        x = x[:, :, None]
    x = np.moveaxis(x, 2, 0)  # (P, C, D)
    p, n_chain, n_draw = x.shape
    nan = np.full(p, np.nan)
    if n_draw < 4 or p == 0:
        return {
            "rhat": nan,
            "ess_bulk": nan.copy(),
            "ess_tail": nan.copy(),
            "ess_mean": nan.copy(),
            "mcse_mean": nan.copy(),
        }
    finite = np.isfinite(x).all(axis=(1, 2))
    x = np.where(finite[:, None, None], x, 0.0)

    split = _split_chains(x)
    z_split = _z_scale(split)
    flat = x.reshape(p, -1)
    q_low, q_high = np.quantile(flat, [0.05, 0.95], axis=1)
    ind_low = (split <= q_low[:, None, None]).astype(float)
    ind_high = (split <= q_high[:, None, None]).astype(float)
    # one batched FFT for the four ESS flavours
    ess_all = _ess(np.concatenate([z_split, split, ind_low, ind_high], axis=0))
    ess_bulk, ess_mean = ess_all[:p], ess_all[p : 2 * p]
    ess_tail = np.minimum(ess_all[2 * p : 3 * p], ess_all[3 * p :])

    if n_chain >= 2:
        rhat_bulk = _rhat(z_split)
        folded = np.abs(split - np.median(split.reshape(p, -1), axis=1)[:, None, None])
        rhat_tail = _rhat(_z_scale(folded))
        rhat = np.maximum(rhat_bulk, rhat_tail)
    else:
        rhat = np.full(p, np.nan)

    sd = flat.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mcse = sd / np.sqrt(ess_mean)
    out = {"rhat": rhat, "ess_bulk": ess_bulk, "ess_tail": ess_tail, "ess_mean": ess_mean, "mcse_mean": mcse}
    for key in out:
        out[key] = np.where(finite, out[key], np.nan)
    return out


def worst(summary: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """(max R-hat, min bulk ESS, min tail ESS) over parameters; NaN if any parameter's value is NaN."""

    def _agg(values: np.ndarray, fn) -> float:
        values = np.asarray(values, dtype=float)
        if values.size == 0 or np.isnan(values).any():
            return math.nan
        return float(fn(values))

    return _agg(summary["rhat"], np.max), _agg(summary["ess_bulk"], np.min), _agg(summary["ess_tail"], np.min)
