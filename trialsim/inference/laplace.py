"""Approximate Bayesian MMRM: the mean parameters integrated exactly, the variance parameters by a Laplace
approximation corrected by importance sampling (INLA-style: Rue, Martino & Chopin 2009, *JRSS B* 71:319).

Model — the NUTS ``longitudinal`` model of :mod:`trialsim.inference.nuts`, same likelihood and priors. Change
from baseline of patient i at every observed post-baseline visit t:

    y_it = u_iᵀ B[:, t] + e_it,   u_i = [1, −1{arm = k} for each active arm k, centred baseline],
    e_i ~ N(0, Σ(θ)) over the visits patient i attended (any missingness pattern; valid under MAR),

so B[1 + k, endpoint] is arm k's effect ((mean change in control) − (mean change in arm), positive =
improvement). Covariance Σ(θ): ``unstructured`` (:class:`Unstructured`), ``ar1`` (Σ_st = σ²ρ^|s−t| in visit
index) or ``compound_symmetry`` = ``random_intercept`` (σ²I + τ²11ᵀ). Priors: β = vec(B) has independent Normal
components — each active arm's endpoint effect N(mean, sd²) from the plan or vague N(0, ``vague_sd``²), its
other visits' effects N(0, ``vague_sd``²), visit means and baseline slopes N(0, ``nuisance_sd``²); unstructured:
per-visit SDs HalfNormal(``sigma_scale``) and an LKJ(``lkj_eta``) correlation matrix; AR(1): σ ~
HalfNormal(``sigma_scale``), ρ ~ U(−1, 1); compound symmetry: σ, τ ~ HalfNormal(``sigma_scale``). Defaults 100,
1000, 50 and 1, as in the NUTS model.

The approximation, per trial:

1. Given θ the posterior of β is exactly N(β̂(θ), A(θ)⁻¹) with A = XᵀV⁻¹X + P, Aβ̂ = XᵀV⁻¹y + Pm, and β
   integrates out in closed form (the restricted likelihood of REML, with the Normal priors added):
       log p(θ | y) = log p(θ) − ½ [Σ_i log|Σ_{O_i}| + log|A| + yᵀV⁻¹y + mᵀPm − (XᵀV⁻¹y + Pm)ᵀβ̂] + const.
   Patients are grouped by missingness pattern O: with W_O = Σ_OO⁻¹ embedded in T × T, A, XᵀV⁻¹y and yᵀV⁻¹y are
   sums over patterns of U_O ⊗ W_O, C_O W_O and tr(W_O Y_O) (U_O = Σ u uᵀ, C_O = Σ u yᵀ, Y_O = Σ y yᵀ over the
   pattern's patients, as in the REML code of :func:`trialsim.inference.frequentist.mmrm`), so an evaluation costs
   O(patterns · (qT)²) whatever the number of patients.
2. Laplace: the mode θ̂ of log p(θ | y) by Newton's method (analytic gradient, Hessian H from differences of
   gradients) and the Gaussian N(θ̂, H⁻¹).
3. Integration over θ by importance sampling: a split normal around θ̂ (Gaussian along each eigenvector of H⁻¹,
   with separate scales on either side fitted to log p(θ | y) at ±2 SD: INLA's skewness correction), randomised
   quasi-Monte Carlo points (Sobol points shifted modulo 1 by a uniform vector drawn from the trial's analysis
   stream), self-normalised weights w_s ∝ p(θ_s | y)/q(θ_s). Each effect's posterior is the mixture
   Σ_s w_s N(β̂_e(θ_s), A⁻¹_ee(θ_s)); its mean, SD, equal-tailed interval and P(effect > margin) are computed
   exactly from the mixture. The number of points starts at ``draws`` and doubles until the Monte Carlo standard
   errors of the posterior mean (≤ 0.02 posterior SD) and of every P(effect > margin) (≤ 0.002) are met, up to
   ``max_draws``.

The only approximation left is that finite importance sample (its error is controlled as stated). A fit is
``diagnostics_ok`` when Newton's method converged (Newton decrement < 10⁻⁶ at a negative-definite Hessian) and
the Monte Carlo tolerances were met; ``error`` says which failed. R-hat and ESS are NaN (no MCMC). A trial that
cannot be fitted gives failed records (``fit_failed=True``), never an exception.

Everything is vectorised over the trials of a chunk (:meth:`LaplaceAnalysis.fit_many`): arrays carry a leading
trial axis r, and patterns are padded to the largest count in the chunk with empty patterns (count 0).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from trialsim.exceptions import AnalysisError, ScenarioError
from trialsim.inference.data import TrialData
from trialsim.inference.diagnostics import FitResult, empty_record, failed_record
from trialsim.inference.frequentist import LongitudinalArrays, arm_layout, longitudinal_arrays

COVARIANCES: tuple[str, ...] = ("unstructured", "ar1", "compound_symmetry", "random_intercept")

#: Monte Carlo tolerances of the importance sampling: SE of the posterior mean (in posterior SDs) and of
#: P(effect > margin).
MEAN_TOLERANCE, PROBABILITY_TOLERANCE = 0.02, 0.002


# --------------------------------------------------------------------------------------------------
# Sufficient statistics by missingness pattern
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternStatistics:
    """Per trial r and missingness pattern O (padded to G patterns; T visits; q = 2 + K regressors): the visits
    observed, the number of patients and U_O = Σ u uᵀ, C_O = Σ u yᵀ, Y_O = Σ y yᵀ (zero at visits not in O)."""

    observed: np.ndarray  # (R, G, T) bool
    count: np.ndarray  # (R, G)
    U: np.ndarray  # (R, G, q, q)
    C: np.ndarray  # (R, G, q, T)
    YY: np.ndarray  # (R, G, T, T)

    @classmethod
    def of(cls, trials: Sequence[LongitudinalArrays], masks: Sequence[np.ndarray] | None = None) -> PatternStatistics:
        """Statistics of the cells in ``masks`` (default: every observed cell) of each trial."""
        masks = [long.mask for long in trials] if masks is None else masks
        parts = [_patterns(long, mask) for long, mask in zip(trials, masks)]
        G = max(part[0].shape[0] for part in parts)

        def padded(index: int, fill) -> np.ndarray:
            out = []
            for part in parts:
                value = part[index]
                extra = np.full((G - value.shape[0], *value.shape[1:]), fill, dtype=value.dtype)
                out.append(np.concatenate([value, extra]))
            return np.stack(out)

        return cls(padded(0, True), padded(1, 0.0), padded(2, 0.0), padded(3, 0.0), padded(4, 0.0))

    @property
    def n_visits(self) -> int:
        return int(self.observed.shape[-1])

    @property
    def n_regressors(self) -> int:
        return int(self.U.shape[-1])

    def subset(self, rows: np.ndarray) -> PatternStatistics:
        return PatternStatistics(self.observed[rows], self.count[rows], self.U[rows], self.C[rows], self.YY[rows])


def _patterns(long: LongitudinalArrays, mask: np.ndarray):
    """(observed, count, U, C, YY) of one trial's distinct missingness patterns."""
    analysed = mask.any(axis=1)
    if not analysed.any():
        raise AnalysisError("no observed post-baseline visit")
    T = long.n_visits
    codes = mask[analysed].astype(np.int64) @ (1 << np.arange(T))
    _, first, group = np.unique(codes, return_index=True, return_inverse=True)
    G, n = first.size, group.size
    member = np.zeros((n, G))
    member[np.arange(n), group] = 1.0
    u = np.column_stack([np.ones(long.change.shape[0]), -long.onehot, long.baseline_c])[analysed]
    y = np.where(mask, long.change, 0.0)[analysed]
    q = u.shape[1]
    by_group = (member[:, :, None] * u[:, None, :]).reshape(n, G * q).T  # rows (g, a): u_a in group g
    return (
        mask[analysed][first],
        member.sum(axis=0),
        (by_group @ u).reshape(G, q, q),
        (by_group @ y).reshape(G, q, T),
        ((member[:, :, None] * y[:, None, :]).reshape(n, G * T).T @ y).reshape(G, T, T),
    )


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched least squares through the normal equations, with a tiny ridge for empty or collinear designs."""
    ridge = 1e-9 * (np.trace(gram, axis1=-2, axis2=-1) + 1.0)
    return np.linalg.solve(gram + ridge[..., None, None] * np.eye(gram.shape[-1]), rhs[..., None])[..., 0]


def moment_covariance(stats: PatternStatistics) -> np.ndarray:
    """(R, T, T) pairwise moment estimates of Σ from per-visit least-squares residuals, made positive definite (the
    start of Newton's method for AR(1) and compound symmetry): S_st = Σ_i r_is r_it / (n_st − q) over the n_st
    patients observed at both visits."""
    q = stats.n_regressors
    obs = stats.observed.astype(float)
    coef = _solve(np.einsum("rgt,rgab->rtab", obs, stats.U), np.einsum("rgat->rta", stats.C)).swapaxes(1, 2)
    cross = np.einsum("rgas,rat->rgst", stats.C, coef)
    resid = stats.YY - cross - cross.swapaxes(-1, -2) + np.einsum("ras,rgab,rbt->rgst", coef, stats.U, coef)
    pairs = np.einsum("rg,rgs,rgt->rst", stats.count, obs, obs)
    S = np.einsum("rgs,rgt,rgst->rst", obs, obs, resid) / np.maximum(pairs - q, 1.0)
    vals, vecs = np.linalg.eigh(0.5 * (S + S.swapaxes(-1, -2)))
    vals = np.maximum(vals, 1e-3 * np.maximum(vals.max(axis=-1, keepdims=True), 1.0))
    return (vecs * vals[:, None, :]) @ vecs.swapaxes(-1, -2)


# --------------------------------------------------------------------------------------------------
# Covariance families: Σ(θ), dΣ/dθ, log prior and its gradient (rows of θ), start values (per trial)
# --------------------------------------------------------------------------------------------------


class Unstructured:
    """θ = (log ω_1 … log ω_T, φ_tj for j < t) of the modified Cholesky decomposition Σ⁻¹ = (I − Φ)ᵀ diag(ω)⁻¹ (I − Φ)
    (Pourahmadi 1999, *Biometrika* 86:677): ω_t is the variance of visit t given the earlier visits and φ_t the
    coefficients of that regression. In these coordinates the posterior is close to Gaussian (with monotone
    missingness the likelihood factorises into one regression per visit).

    Prior: per-visit SDs s_t = √Σ_tt ~ HalfNormal(c) and correlation R ~ LKJ(η), as a density of θ through the
    Jacobians |∂Σ/∂(s, R)| = 2^T Π s_t^T and |∂Σ/∂θ| = Π_j ω_j^(T − j + 1) (j = 1…T; Σ = L diag(ω) Lᵀ with
    L = (I − Φ)⁻¹ unit lower triangular, times ω_j for the log scale):
        log p(θ) = Σ_t [−s_t²/(2c²) − T log s_t] + Σ_j (T − j + 1) log ω_j + (η − 1) log|R| + const,
    log|R| = Σ_j log ω_j − Σ_t log s_t².
    """

    def __init__(self, n_visits: int, sd_scale: float = 50.0, lkj_eta: float = 1.0):
        T = n_visits
        self.n_visits = T
        self.rows, self.cols = np.tril_indices(T, -1)
        self.dim = T + self.rows.size
        self.sd_scale = float(sd_scale)
        self.lkj_eta = float(lkj_eta)
        self.jacobian_power = T - np.arange(T) + (self.lkj_eta - 1.0)  # on log ω_j, with LKJ's log|Σ| term
        self.log_sd_power = 0.5 * T + (self.lkj_eta - 1.0)  # on log s_t²: the SD Jacobian and LKJ

    def unit(self, theta: np.ndarray) -> np.ndarray:
        """I − Φ for each row of θ (any leading shape)."""
        T = self.n_visits
        unit = np.zeros((*theta.shape[:-1], T, T))
        unit[..., self.rows, self.cols] = -theta[..., T:]
        return unit + np.eye(T)

    def sigma(self, theta: np.ndarray, derivative: bool = False):
        omega, L = np.exp(theta[:, : self.n_visits]), np.linalg.inv(self.unit(theta))
        sigma = (L * omega[:, None, :]) @ L.swapaxes(-1, -2)
        if not derivative:
            return sigma, None
        # ∂Σ/∂log ω_j = ω_j l_j l_jᵀ; ∂Σ/∂φ_ij = l_i Σ_j· + its transpose (dL = L E_ij L)
        d_omega = np.einsum("msj,mtj->mjst", L * omega[:, None, :], L)
        d_phi = (L[:, :, self.rows][..., None] * sigma[:, self.cols, None, :].swapaxes(1, 2)).transpose(0, 2, 1, 3)
        return sigma, np.concatenate([d_omega, d_phi + d_phi.swapaxes(-1, -2)], axis=1)

    def prefix_precisions(self, theta: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ_OO⁻¹ embedded in T × T, (R, M, G, T, T), and log|Σ_OO|, (R, M, G), for θ (R, M, d) and monotone
        patterns O = {0, …, m − 1} (R, G, T): Σ_OO⁻¹ = Σ_{t<m} τ_t τ_tᵀ / ω_t with τ_t the rows of I − Φ, and
        log|Σ_OO| = Σ_{t<m} log ω_t."""
        T = self.n_visits
        unit = self.unit(theta)[:, :, None]
        weight = observed[:, None] * np.exp(-theta[:, :, None, :T])  # (R, M, G, T): 1{t ∈ O} / ω_t
        log_det = np.einsum("rmt,rgt->rmg", theta[..., :T], observed.astype(float))
        return unit.swapaxes(-1, -2) @ (unit * weight[..., None]), log_det

    def log_prior(self, theta: np.ndarray, sigma: np.ndarray, dsigma: np.ndarray | None):
        T = self.n_visits
        var = np.diagonal(sigma, axis1=-2, axis2=-1)
        value = np.sum(-var / (2.0 * self.sd_scale**2) - self.log_sd_power * np.log(var), axis=1)
        value += theta[:, :T] @ self.jacobian_power
        if dsigma is None:
            return value, None
        dvar = np.diagonal(dsigma, axis1=-2, axis2=-1)  # (N, d, T)
        grad = np.einsum("ndt,nt->nd", dvar, -1.0 / (2.0 * self.sd_scale**2) - self.log_sd_power / var)
        grad[:, :T] += self.jacobian_power
        return value, grad

    def start(self, stats: PatternStatistics) -> np.ndarray:
        """(R, d): least squares of each visit on the regressors and the earlier visits, over the patients observed
        at that visit and all earlier ones — the likelihood's mode for monotone missingness in these coordinates
        (up to degrees of freedom and priors), so Newton's method starts next to the posterior mode."""
        q, T = stats.n_regressors, self.n_visits
        log_omega, phi = [], []
        for t in range(T):
            rows = stats.observed[:, :, : t + 1].all(axis=-1).astype(float)  # (R, G)
            n = (rows * stats.count).sum(axis=1)
            U, C, YY = (np.einsum("rg,rg...->r...", rows, x) for x in (stats.U, stats.C, stats.YY))
            gram = np.concatenate(
                [
                    np.concatenate([U, C[:, :, :t]], axis=2),
                    np.concatenate([C[:, :, :t].swapaxes(1, 2), YY[:, :t, :t]], 2),
                ],
                axis=1,
            )
            cross = np.concatenate([C[:, :, t], YY[:, :t, t]], axis=1)
            coef = _solve(gram, cross)
            rss = YY[:, t, t] - np.sum(coef * cross, axis=1)
            floor = 1e-6 * np.maximum(YY[:, t, t] / np.maximum(n, 1.0), 1.0)
            log_omega.append(np.log(np.maximum(rss / np.maximum(n - q - t, 1.0), floor)))
            phi.append(coef[:, q:])
        return np.concatenate([np.stack(log_omega, axis=1), *phi], axis=1)

    def names(self) -> list[str]:
        T = self.n_visits
        return [f"log_omega[{t}]" for t in range(T)] + [f"phi[{r},{c}]" for r, c in zip(self.rows, self.cols)]


class AR1:
    """θ = (log σ, atanh ρ): Σ_st = σ² ρ^|s−t| in visit index. Prior σ ~ HalfNormal(c), ρ ~ U(−1, 1):
    log p(θ) = −σ²/(2c²) + log σ + log(1 − ρ²) + const."""

    dim = 2

    def __init__(self, n_visits: int, sd_scale: float = 50.0):
        self.n_visits = n_visits
        self.lag = np.abs(np.subtract.outer(np.arange(n_visits), np.arange(n_visits))).astype(float)
        self.sd_scale = float(sd_scale)

    def sigma(self, theta: np.ndarray, derivative: bool = False):
        var = np.exp(2.0 * theta[:, 0])[:, None, None]
        rho = np.tanh(theta[:, 1])[:, None, None]
        sigma = var * rho**self.lag
        if not derivative:
            return sigma, None
        d_rho = np.where(self.lag > 0, self.lag * rho ** np.maximum(self.lag - 1.0, 0.0), 0.0) * (1.0 - rho**2)
        return sigma, np.stack([2.0 * sigma, var * d_rho], axis=1)

    def log_prior(self, theta: np.ndarray, sigma: np.ndarray, dsigma: np.ndarray | None):
        var = np.exp(2.0 * theta[:, 0])
        rho = np.tanh(theta[:, 1])
        value = -var / (2.0 * self.sd_scale**2) + theta[:, 0] + np.log1p(-(rho**2))
        if dsigma is None:
            return value, None
        return value, np.column_stack([1.0 - var / self.sd_scale**2, -2.0 * rho])

    def start(self, stats: PatternStatistics) -> np.ndarray:
        S = moment_covariance(stats)
        var = np.diagonal(S, axis1=-2, axis2=-1)
        rho = np.full(len(S), 0.3)
        if self.n_visits > 1:
            sd = np.sqrt(var)
            rho = np.clip(np.mean(np.diagonal(S, 1, axis1=-2, axis2=-1) / (sd[:, 1:] * sd[:, :-1]), axis=1), -0.9, 0.95)
        return np.column_stack([0.5 * np.log(var.mean(axis=1)), np.arctanh(rho)])

    def names(self) -> list[str]:
        return ["log_sigma", "atanh_rho"]


class CompoundSymmetry:
    """θ = (log σ, log τ): Σ = σ² I + τ² 11ᵀ (a random patient intercept). Prior σ, τ ~ HalfNormal(c):
    log p(θ) = −(σ² + τ²)/(2c²) + log σ + log τ + const."""

    dim = 2

    def __init__(self, n_visits: int, sd_scale: float = 50.0):
        self.n_visits = n_visits
        self.sd_scale = float(sd_scale)
        self.eye = np.eye(n_visits)
        self.ones = np.ones((n_visits, n_visits))

    def sigma(self, theta: np.ndarray, derivative: bool = False):
        within = np.exp(2.0 * theta[:, 0])[:, None, None] * self.eye
        between = np.exp(2.0 * theta[:, 1])[:, None, None] * self.ones
        if not derivative:
            return within + between, None
        return within + between, np.stack([2.0 * within, 2.0 * between], axis=1)

    def log_prior(self, theta: np.ndarray, sigma: np.ndarray, dsigma: np.ndarray | None):
        var = np.exp(2.0 * theta)
        value = np.sum(theta - var / (2.0 * self.sd_scale**2), axis=1)
        if dsigma is None:
            return value, None
        return value, 1.0 - var / self.sd_scale**2

    def start(self, stats: PatternStatistics) -> np.ndarray:
        S = moment_covariance(stats)
        T = self.n_visits
        total = np.trace(S, axis1=-2, axis2=-1) / T
        off = (S.sum(axis=(1, 2)) - total * T) / (T * (T - 1)) if T > 1 else np.zeros(len(S))
        tau2 = np.maximum(off, 0.05 * total)
        return 0.5 * np.log(np.column_stack([np.maximum(total - tau2, 0.05 * total), tau2]))

    def names(self) -> list[str]:
        return ["log_sigma", "log_tau"]


def covariance_family(name: str, n_visits: int, sd_scale: float = 50.0, lkj_eta: float = 1.0):
    """The family object of a covariance name (``random_intercept`` is compound symmetry)."""
    if name == "unstructured":
        return Unstructured(n_visits, sd_scale, lkj_eta)
    if name == "ar1":
        return AR1(n_visits, sd_scale)
    if name in ("compound_symmetry", "random_intercept"):
        return CompoundSymmetry(n_visits, sd_scale)
    raise ScenarioError(f"unknown covariance {name!r}; choose one of {', '.join(COVARIANCES)}")


# --------------------------------------------------------------------------------------------------
# The marginal posterior of θ (β integrated out) and the conditional posterior of β
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """At θ (R, M, d): log p(θ | y) + const, its gradient (if asked), the effects' conditional posterior
    N(effect_mean, effect_cov) and (if asked) that of all mean parameters, N(beta, beta_cov)."""

    log_density: np.ndarray  # (R, M)
    gradient: np.ndarray | None  # (R, M, d)
    effect_mean: np.ndarray  # (R, M, K)
    effect_cov: np.ndarray  # (R, M, K, K)
    beta: np.ndarray | None = None  # (R, M, p)
    beta_cov: np.ndarray | None = None  # (R, M, p, p)


@dataclass(frozen=True)
class Mode:
    """Per trial, the Laplace approximation N(theta, hessian⁻¹) of p(θ | y)."""

    theta: np.ndarray  # (R, d)
    hessian: np.ndarray  # (R, d, d): −∇² log p(θ | y), positive definite
    log_density: np.ndarray  # (R,): log p(θ | y) + const
    converged: np.ndarray  # (R,) bool


class MarginalPosterior:
    """log p(θ | y) of the longitudinal model with β ~ N(prior_mean, diag(prior_prec)⁻¹) integrated out, for each
    trial of ``stats``.

    One Cholesky factorisation per θ of the bordered matrix [[A, b], [bᵀ, yᵀV⁻¹y + mᵀPm]], with the effects ordered
    last, gives everything but the gradient: log|A| from its diagonal, the quadratic form yᵀV⁻¹y + mᵀPm − bᵀA⁻¹b as
    the square of its last diagonal entry, and the effects' conditional mean and covariance from its trailing
    K × K block and last row (b = XᵀV⁻¹y + Pm).
    """

    def __init__(self, stats: PatternStatistics, family, prior_mean, prior_prec, effect_columns: Sequence[int]):
        self.stats, self.family = stats, family
        self.prior_mean = np.asarray(prior_mean, dtype=float)
        self.prior_prec = np.asarray(prior_prec, dtype=float)
        if np.any(self.prior_prec <= 0):
            raise ScenarioError("every mean parameter needs a proper Normal prior (precision > 0)")
        p = self.prior_mean.size
        self.effect_columns = list(effect_columns)
        self._order = np.array([j for j in range(p) if j not in self.effect_columns] + self.effect_columns)
        obs = stats.observed.astype(float)
        self._outer = obs[..., :, None] * obs[..., None, :]  # (R, G, T, T)
        self._fill = np.eye(stats.n_visits) * (1.0 - obs)[..., None]  # identity on missed visits
        prefix = np.arange(stats.n_visits) < obs.sum(axis=-1, keepdims=True)
        self._prefix_only = bool(np.all(stats.observed == prefix) and hasattr(family, "prefix_precisions"))
        self._prior_quad = float(np.sum(self.prior_prec * self.prior_mean**2))

    def evaluate(self, theta: np.ndarray, gradient: bool = False, full: bool = False) -> Evaluation:
        """At θ (R, M, d): log p(θ | y) and the effects' conditional posterior; with ``gradient`` also ∇ log p,
        with ``gradient`` or ``full`` also β | θ, y."""
        s = self.stats
        R, M, d = theta.shape
        q, T, K = s.n_regressors, s.n_visits, len(self.effect_columns)
        p, G = q * T, s.count.shape[1]
        flat = theta.reshape(R * M, d)
        sigma, dsigma = self.family.sigma(flat, derivative=gradient)
        W, log_det = self._precisions(theta, sigma.reshape(R, M, T, T))
        A = W.transpose(0, 1, 3, 4, 2).reshape(R, M * T * T, G) @ s.U.reshape(R, G, q * q)
        A = A.reshape(R, M, T, T, q, q).transpose(0, 1, 4, 2, 5, 3).reshape(R, M, p, p) + np.diag(self.prior_prec)
        b = (s.C[:, None] @ W).sum(axis=2).reshape(R, M, p) + self.prior_prec * self.prior_mean
        bordered = np.empty((R, M, p + 1, p + 1))
        bordered[..., :p, :p] = A[..., self._order, :][..., self._order]
        bordered[..., p, :p] = bordered[..., :p, p] = b[..., self._order]
        bordered[..., p, p] = (W * s.YY[:, None]).sum(axis=(2, 3, 4)) + self._prior_quad
        chol = np.linalg.cholesky(bordered)
        diag = np.diagonal(chol, axis1=-2, axis2=-1)
        trailing_inv = np.linalg.inv(chol[..., p - K : p, p - K : p])  # (L_KK)⁻¹, the trailing block of L⁻¹
        effect_mean = (trailing_inv.swapaxes(-1, -2) @ chol[..., p, p - K : p, None])[..., 0]
        effect_cov = trailing_inv.swapaxes(-1, -2) @ trailing_inv
        prior, prior_grad = self.family.log_prior(flat, sigma, dsigma)
        count = s.count[:, None, :]
        value = prior.reshape(R, M) - 0.5 * (
            np.sum(log_det * count, axis=-1) + 2.0 * np.log(diag[..., :p]).sum(axis=-1) + diag[..., p] ** 2
        )
        if not (gradient or full):
            return Evaluation(value, None, effect_mean, effect_cov)
        a_inv = np.linalg.inv(A)
        a_inv = 0.5 * (a_inv + a_inv.swapaxes(-1, -2))
        beta = (a_inv @ b[..., None])[..., 0]
        grad = None
        if gradient:
            # d(−2 log p) = tr(G dΣ), G = Σ_O n_O W_O − W_O (E_O + F_O) W_O: E_O = residual cross-products at β̂
            # (envelope theorem), F_O = Σ_i X_i A⁻¹ X_iᵀ over the pattern's patients (from d log|A|).
            B = beta.reshape(R, M, 1, q, T)
            ctb = s.C.swapaxes(-1, -2)[:, None] @ B
            E = s.YY[:, None] - ctb - ctb.swapaxes(-1, -2) + B.swapaxes(-1, -2) @ s.U[:, None] @ B
            blocks = a_inv.reshape(R, M, q, T, q, T).transpose(0, 1, 3, 5, 2, 4).reshape(R, M * T * T, q * q)
            F = (blocks @ s.U.reshape(R, G, q * q).swapaxes(1, 2)).reshape(R, M, T, T, G).transpose(0, 1, 4, 2, 3)
            G_sigma = np.einsum("rmgst,rg->rmst", W, s.count) - (W @ (E + F) @ W).sum(axis=2)
            dsigma = dsigma.reshape(R, M, d, T, T)
            grad = -0.5 * np.einsum("rmst,rmdst->rmd", G_sigma, dsigma) + prior_grad.reshape(R, M, d)
        return Evaluation(value, grad, effect_mean, effect_cov, beta, a_inv)

    def _precisions(self, theta: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ_OO⁻¹ embedded in T × T, (R, M, G, T, T), and log|Σ_OO|, (R, M, G): the inverse of Σ_OO ⊕ I (Σ on the
        observed visits, the identity on the missed ones), or in closed form for monotone patterns when the
        covariance family provides it."""
        if self._prefix_only:
            return self.family.prefix_precisions(theta, self.stats.observed)
        chol = np.linalg.cholesky(sigma[:, :, None] * self._outer[:, None] + self._fill[:, None])
        chol_inv = np.linalg.inv(chol)
        W = (chol_inv.swapaxes(-1, -2) @ chol_inv) * self._outer[:, None]
        return W, 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)

    def subset(self, rows: np.ndarray) -> MarginalPosterior:
        return MarginalPosterior(
            self.stats.subset(rows), self.family, self.prior_mean, self.prior_prec, self.effect_columns
        )

    def evaluate_safely(self, theta: np.ndarray, gradient: bool = False) -> Evaluation:
        """:meth:`evaluate`, but a point whose factorisation fails (far in a tail) gets log density −inf, NaN effects
        and gradient instead of failing the whole batch."""
        try:
            return self.evaluate(theta, gradient=gradient)
        except np.linalg.LinAlgError:
            pass
        R, M, d = theta.shape
        K = len(self.effect_columns)
        value, mean, cov = np.full((R, M), -np.inf), np.full((R, M, K), np.nan), np.full((R, M, K, K), np.nan)
        grad = np.full((R, M, d), np.nan) if gradient else None
        for r in range(R):
            one = self.subset(np.array([r]))
            for m in range(M):
                try:
                    point = one.evaluate(theta[r : r + 1, m : m + 1], gradient=gradient)
                except np.linalg.LinAlgError:
                    continue
                value[r, m], mean[r, m], cov[r, m] = (
                    point.log_density[0, 0],
                    point.effect_mean[0, 0],
                    point.effect_cov[0, 0],
                )
                if gradient:
                    grad[r, m] = point.gradient[0, 0]
        return Evaluation(value, grad, mean, cov)

    def curvature(self, theta: np.ndarray, step: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(H, gradient, log p) at θ (R, d): H = −∇² log p(θ | y) by forward differences of the analytic gradient
        (one evaluation of d + 1 points per trial)."""
        R, d = theta.shape
        here = self.evaluate(theta[:, None, :] + np.vstack([np.zeros(d), step * np.eye(d)])[None], gradient=True)
        grad = here.gradient[:, 0]
        hessian = -(here.gradient[:, 1:] - grad[:, None, :]) / step
        return 0.5 * (hessian + hessian.swapaxes(-1, -2)), grad, here.log_density[:, 0]

    def mode(self, start: np.ndarray, max_iterations: int = 50) -> Mode:
        """Newton's method on log p(θ | y) from ``start`` (R, d), all trials at once.

        The Hessian (:meth:`curvature`) is recomputed while the Newton decrement gᵀH⁻¹g exceeds 0.01 (θ farther
        than 0.1 posterior SD from the mode) and kept afterwards, when a step costs one gradient. Eigenvalues are
        clipped to keep each step an ascent direction and steps are halved until log p rises. A trial has
        converged when gᵀH⁻¹g < 10⁻⁶ (θ within 10⁻³ posterior SDs of its mode) with a negative-definite Hessian;
        its Hessian is the last one computed, at most 0.1 posterior SD from the mode (the importance sampling
        corrects the rest).
        """
        theta = np.array(start, dtype=float)
        R, d = theta.shape
        hessian, grad, log_density = self.curvature(theta)
        fresh = np.ones(R, dtype=bool)
        converged = np.zeros(R, dtype=bool)
        active = np.ones(R, dtype=bool)
        for _ in range(max_iterations):
            rows = np.nonzero(active)[0]
            if rows.size == 0:
                break
            vals, vecs = np.linalg.eigh(hessian[rows])
            floor = np.maximum(1e-8, 1e-6 * np.abs(vals).max(axis=1, keepdims=True))
            direction = np.einsum(
                "rij,rj->ri", vecs, np.einsum("rji,rj->ri", vecs, grad[rows]) / np.maximum(vals, floor)
            )
            decrement = np.sum(grad[rows] * direction, axis=1)
            definite = vals.min(axis=1) > 0
            done = definite & (decrement < 1e-6)
            converged[rows[done]] = True
            active[rows[done]] = False
            refresh = ~done & (decrement > 1e-2) & ~fresh[rows]
            if refresh.any():
                again = rows[refresh]
                hessian[again], grad[again], log_density[again] = self.subset(again).curvature(theta[again])
                fresh[again] = True
            move = ~done & ~refresh
            pending, direction = rows[move], direction[move]
            direction *= np.minimum(1.0, 3.0 / np.abs(direction).max(axis=1, keepdims=True))  # ≤ 3 units
            length = 1.0
            for _ in range(12):
                if pending.size == 0:
                    break
                candidate = theta[pending] + length * direction
                new = self.subset(pending).evaluate_safely(candidate[:, None, :], gradient=True)
                better = new.log_density[:, 0] > log_density[pending]
                up = pending[better]
                theta[up], grad[up], log_density[up] = (
                    candidate[better],
                    new.gradient[better, 0],
                    new.log_density[better, 0],
                )
                fresh[up] = False
                pending, direction, length = pending[~better], direction[~better], 0.5 * length
            if pending.size:  # no ascent left at double precision: at the mode if the Hessian is definite
                stuck = np.isin(rows, pending)
                converged[pending] = definite[stuck] & (np.abs(grad[pending]).max(axis=1) < 1e-3)
                active[pending] = False
        vals, vecs = np.linalg.eigh(hessian)
        converged &= vals.min(axis=1) > 0
        vals = np.maximum(vals, 1e-8 * np.maximum(np.abs(vals).max(axis=1, keepdims=True), 1.0))
        return Mode(theta, (vecs * vals[:, None, :]) @ vecs.swapaxes(-1, -2), log_density, converged)


@functools.cache
def sobol_points(n: int, d: int) -> np.ndarray:
    """The first n points of the d-dimensional Sobol sequence (unscrambled; randomised per trial by a shift)."""
    from scipy.stats import qmc

    points = qmc.Sobol(d, scramble=False).random(n)
    points.flags.writeable = False
    return points


# --------------------------------------------------------------------------------------------------
# Mixtures of normals
# --------------------------------------------------------------------------------------------------


def mixture_summary(weights: np.ndarray, means: np.ndarray, sds: np.ndarray, probs: np.ndarray, margins: np.ndarray):
    """Mean, SD, quantiles and exceedance probabilities of the mixtures Σ_s w_s N(mean_s, sd_s²).

    Args: weights (R, S) summing to 1 per trial; means, sds (R, S, K); probs (Q,); margins (J,).
    Returns: mean and SD (R, K), the quantiles ``probs`` (R, K, Q) and P(x > margin) (R, K, J). Quantiles by
    Newton's method on the (monotone) mixture CDF from the moment-matched normal, to 10⁻¹⁰ in probability.
    """
    mean = np.einsum("rs,rsk->rk", weights, means)
    sd = np.sqrt(np.maximum(np.einsum("rs,rsk->rk", weights, sds**2 + means**2) - mean**2, 0.0))
    centres, scales = means.transpose(0, 2, 1)[:, :, None, :], sds.transpose(0, 2, 1)[:, :, None, :]  # (R, K, 1, S)
    w = weights[:, None, None, :]
    x = mean[..., None] + sd[..., None] * special.ndtri(probs)
    for _ in range(100):
        z = (x[..., None] - centres) / scales
        cdf = np.sum(special.ndtr(z) * w, axis=-1)
        pdf = np.sum(np.exp(-0.5 * z**2) / (scales * math.sqrt(2.0 * math.pi)) * w, axis=-1)
        x = x - (cdf - probs) / np.maximum(pdf, 1e-300)
        if np.all(np.abs(cdf - probs) < 1e-10):
            break
    exceed = np.sum(special.ndtr((centres - margins[:, None]) / scales) * w, axis=-1)
    return mean, sd, x, exceed


def monte_carlo_error(weights: np.ndarray, means: np.ndarray, sds: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """(R,) largest Monte Carlo SE, relative to its tolerance, of the importance-sampled posterior mean and of every
    P(effect > margin), from the self-normalised IS variance Σ_s w_s² (f_s − f̂)²: ≤ 1 when both tolerances hold."""
    mean = np.einsum("rs,rsk->rk", weights, means)
    sd = np.sqrt(np.maximum(np.einsum("rs,rsk->rk", weights, sds**2 + means**2) - mean**2, 1e-300))
    se_mean = np.sqrt(np.einsum("rs,rsk->rk", weights**2, (means - mean[:, None]) ** 2)) / (MEAN_TOLERANCE * sd)
    exceed = special.ndtr((means[..., None] - margins) / sds[..., None])  # (R, S, K, J)
    spread = exceed - np.einsum("rs,rskj->rkj", weights, exceed)[:, None]
    se_prob = np.sqrt(np.einsum("rs,rskj->rkj", weights**2, spread**2)) / PROBABILITY_TOLERANCE
    return np.maximum(se_mean.max(axis=1), se_prob.max(axis=(1, 2)))


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------


def prior_arrays(long: LongitudinalArrays, effect_prior, vague_sd: float, nuisance_sd: float):
    """Normal prior (mean, precision) of β = vec(B) in the order [visit means, arm × visit effects, slopes]:
    endpoint effects from ``effect_prior`` ((mean, sd) or None = vague), other effects vague, the rest nuisance."""
    T, K = long.n_visits, long.n_active
    mean = np.zeros(long.n_params)
    prec = np.full(long.n_params, 1.0 / nuisance_sd**2)
    prec[T : T + K * T] = 1.0 / vague_sd**2
    if effect_prior is not None and effect_prior[1] is not None:
        for k in range(K):
            j = long.effect_column(k)
            mean[j], prec[j] = float(effect_prior[0]), 1.0 / float(effect_prior[1]) ** 2
    return mean, prec


class LaplaceAnalysis:
    """Approximate Bayesian MMRM of simulated trials (see the module docstring).

    Args:
        covariance: ``"unstructured"``, ``"ar1"``, ``"compound_symmetry"`` or ``"random_intercept"`` (the same).
        effect_prior: ``(mean, sd)`` of every active arm's endpoint effect (PANSS points); None or ``(mean, None)``
            = vague N(0, ``vague_sd``²), as in the NUTS model.
        vague_sd, nuisance_sd, sigma_scale, lkj_eta: the other priors (module docstring).
        margin, margin2: P(effect > margin) and P(effect > margin2) are reported (margin2 None → NaN).
        ci_level: equal-tailed credible interval level.
        draws, max_draws: importance-sampling points, doubled from ``draws`` until the Monte Carlo tolerances
            hold or ``max_draws`` are used (powers of 2 keep the Sobol points balanced).
    """

    def __init__(
        self,
        covariance: str = "unstructured",
        *,
        effect_prior: tuple[float, float | None] | None = None,
        vague_sd: float = 100.0,
        nuisance_sd: float = 1000.0,
        sigma_scale: float = 50.0,
        lkj_eta: float = 1.0,
        margin: float = 0.0,
        margin2: float | None = None,
        ci_level: float = 0.95,
        draws: int = 32,
        max_draws: int = 1024,
    ):
        if covariance not in COVARIANCES:
            raise ScenarioError(f"unknown covariance {covariance!r}; choose one of {', '.join(COVARIANCES)}")
        if not 2 <= draws <= max_draws:
            raise ScenarioError("need 2 ≤ draws ≤ max_draws")
        self.covariance = covariance
        self.effect_prior = effect_prior
        self.vague_sd, self.nuisance_sd = float(vague_sd), float(nuisance_sd)
        self.sigma_scale, self.lkj_eta = float(sigma_scale), float(lkj_eta)
        self.margins = np.array([margin] + ([] if margin2 is None else [margin2]), dtype=float)
        self.ci_level = float(ci_level)
        self.draws, self.max_draws = int(draws), int(max_draws)

    def posterior(self, trials: Sequence[LongitudinalArrays], masks=None) -> MarginalPosterior:
        """The marginal posterior of the variance parameters of each trial (cells in ``masks``, default all)."""
        long = trials[0]
        family = covariance_family(self.covariance, long.n_visits, self.sigma_scale, self.lkj_eta)
        mean, prec = prior_arrays(long, self.effect_prior, self.vague_sd, self.nuisance_sd)
        columns = [long.effect_column(k) for k in range(long.n_active)]
        return MarginalPosterior(PatternStatistics.of(trials, masks), family, mean, prec, columns)

    def fit(self, data: TrialData, seed: int | np.random.SeedSequence | None = None) -> FitResult:
        """Analyse one trial: ``{active arm name: record}`` with the keys of ``RECORD_KEYS``."""
        return self.fit_many([data], [seed])[0]

    def fit_many(self, trials: Sequence[TrialData], seeds: Sequence) -> list[FitResult]:
        """Analyse trials of one design (same arms and visits) together; one :class:`FitResult` per trial, failed
        records (never an exception) for a trial that cannot be analysed."""
        start = time.perf_counter()
        results: list[FitResult | None] = [None] * len(trials)
        prepared = []
        for i, data in enumerate(trials):
            try:
                long = longitudinal_arrays(data)
                if prepared and (long.n_visits, long.n_active) != (prepared[0][1].n_visits, prepared[0][1].n_active):
                    raise AnalysisError("trials of one fit_many call must share arms and visits")
                if not long.mask.any():
                    raise AnalysisError("no observed post-baseline visit")
                prepared.append((i, long))
            except Exception as exc:  # noqa: BLE001 - a failed fit is a record, never an exception
                results[i] = _failed(data, exc, 0)
        if prepared:
            try:
                self._fit_prepared(trials, seeds, prepared, results)
            except Exception:  # noqa: BLE001 - isolate the trial that breaks the batch
                for item in prepared:
                    try:
                        self._fit_prepared(trials, seeds, [item], results)
                    except Exception as exc:  # noqa: BLE001
                        results[item[0]] = _failed(trials[item[0]], exc, item[1].n_patients_analysed)
        seconds = (time.perf_counter() - start) / max(len(trials), 1)
        for result in results:
            result.seconds = seconds
        return results

    def _fit_prepared(self, trials, seeds, prepared, results) -> None:
        index = [i for i, _ in prepared]
        longs = [long for _, long in prepared]
        posterior = self.posterior(longs)
        mode = posterior.mode(posterior.family.start(posterior.stats))
        weights, means, sds, error = self._integrate(posterior, mode, [seeds[i] for i in index])
        alpha = (1.0 - self.ci_level) / 2.0
        mean, sd, bounds, exceed = mixture_summary(weights, means, sds, np.array([alpha, 1.0 - alpha]), self.margins)
        for r, (i, long) in enumerate(prepared):
            notes = ["" if mode.converged[r] else "Newton's method did not converge"]
            if error[r] > 1.0:
                notes.append(f"importance-sampling error {error[r]:.1f}× the tolerance")
            records = {}
            for k, name in enumerate(arm_layout(trials[i]).active_names):
                rec = empty_record(name)
                rec.update(
                    estimate=float(mean[r, k]),
                    sd=float(sd[r, k]),
                    ci_low=float(bounds[r, k, 0]),
                    ci_high=float(bounds[r, k, 1]),
                    prob_effect_gt_margin=float(exceed[r, k, 0]),
                    prob_effect_gt_margin2=float(exceed[r, k, 1]) if self.margins.size > 1 else math.nan,
                    divergences=0,
                    diagnostics_ok=bool(mode.converged[r] and error[r] <= 1.0),
                    fit_failed=False,
                    n_analysed=long.n_patients_analysed,
                    error="; ".join(filter(None, notes)),
                )
                records[name] = rec
            results[i] = FitResult(records)

    def _integrate(self, posterior: MarginalPosterior, mode: Mode, seeds: Sequence):
        """Importance-sampled mixtures over θ: weights (R, S), conditional means and SDs of the effects (R, S, K),
        and each trial's largest Monte Carlo error relative to its tolerance (:func:`monte_carlo_error`).

        Proposal: a split normal along each eigenvector v_j of H⁻¹ (SD λ_j^½) with its own scale on each side,
        s_j^± = 2/√(2Δ_j^±) where Δ_j^± = log p(θ̂ | y) − log p(θ̂ ± 2λ_j^½ v_j | y) (1 for a Gaussian, whose log
        density drops by 2 there), bounded to [½, 4]: θ = θ̂ + Σ_j v_j λ_j^½ s_j^± z_j with z standard normal and
        q(θ) ∝ Π_j φ(z_j)/s_j^±.
        """
        R, d = mode.theta.shape
        K = len(posterior.effect_columns)
        vals, vecs = np.linalg.eigh(mode.hessian)
        axes = vecs / np.sqrt(vals)[:, None, :]  # columns λ_j^½ v_j
        probe = posterior.evaluate_safely(
            mode.theta[:, None, :] + 2.0 * np.concatenate([axes, -axes], 2).swapaxes(1, 2)
        )
        drop = mode.log_density[:, None] - probe.log_density
        scale = np.clip(2.0 / np.sqrt(2.0 * np.maximum(drop, 1e-12)), 0.5, 4.0).reshape(R, 2, d)
        shift = np.stack([np.random.default_rng(seed).random(d) for seed in seeds])
        log_w = np.full((R, self.max_draws), -np.inf)
        means, sds = np.zeros((R, self.max_draws, K)), np.ones((R, self.max_draws, K))
        error = np.full(R, np.inf)
        pending, done, draws = np.arange(R), 0, self.draws
        while pending.size:
            z = special.ndtri(
                np.clip((sobol_points(self.max_draws, d)[done:draws] + shift[pending, None]) % 1.0, 1e-12, 1 - 1e-12)
            )
            side = np.where(z >= 0, scale[pending, None, 0], scale[pending, None, 1])
            theta = mode.theta[pending, None] + np.einsum("rsj,rij->rsi", z * side, axes[pending])
            points = posterior.subset(pending).evaluate_safely(theta)
            new = (
                points.log_density - mode.log_density[pending, None] + 0.5 * np.sum(z**2, axis=2) + np.log(side).sum(2)
            )
            finite = np.isfinite(new) & np.all(np.isfinite(points.effect_mean), axis=2)
            log_w[pending, done:draws] = np.where(finite, new, -np.inf)
            means[pending, done:draws] = np.where(finite[..., None], points.effect_mean, 0.0)
            variance = np.diagonal(points.effect_cov, axis1=-2, axis2=-1)
            sds[pending, done:draws] = np.where(finite[..., None], np.sqrt(np.abs(variance)), 1.0)
            weights = _normalised(log_w[pending, :draws])
            error[pending] = monte_carlo_error(weights, means[pending, :draws], sds[pending, :draws], self.margins)
            if draws >= self.max_draws:
                break
            pending = pending[error[pending] > 1.0]
            done, draws = draws, min(2 * draws, self.max_draws)
        return _normalised(log_w), means, sds, error

    def __repr__(self) -> str:
        return f"LaplaceAnalysis(covariance={self.covariance!r}, draws={self.draws})"


def _normalised(log_w: np.ndarray) -> np.ndarray:
    """Self-normalised importance weights per row (entries of −inf get 0)."""
    weights = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _failed(data: TrialData, exc: BaseException, n_analysed: int) -> FitResult:
    names = arm_layout(data).active_names
    return FitResult({name: failed_record(name, exc, n_analysed) for name in names}, failed=True)
