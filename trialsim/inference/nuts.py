"""PyMC models of one trial, compiled ONCE per design point and sampled with nutpie for every simulated trial.

Usage::

    analysis = NutsAnalysis("longitudinal", n_visits=7, n_arms=2, effect_prior=(0.0, 5.0),
                            margin=0.0, margin2=5.0)          # compiles here (≈ 10–40 s, once)
    result = analysis.fit(trial_data, seed=1234)               # ≈ 0.05 s (ancova) to 0.4 s (random intercept)
    result["clozapine"]["prob_effect_gt_margin"]

Model kinds (all effects: (mean change in control) − (mean change in arm), positive = improvement):

``ancova``
    Completers' change at the endpoint ~ Normal(intercept − effect_k·1{arm=k} + slope·(baseline − mean), σ).
    The likelihood is written with the sufficient statistics X'X, X'y, y'y, n (exactly the Normal likelihood
    of the completers, but its cost does not depend on the number of patients and needs no padding), in
    coordinates where its quadratic forms are diagonal (see ``_build_ancova``).
``longitudinal``
    MMRM-like: change at every observed post-baseline visit ~ arm × visit means + baseline × visit slopes;
    missing visits are dropped from the likelihood (MAR). ``residual`` = ``"random_intercept"`` (default;
    patient intercept integrated out analytically: compound symmetry with σ² residual + τ² between-patient;
    written with sufficient statistics grouped by the number of observed visits, exact for any missingness
    pattern, cost independent of n), ``"ar1"`` (Σ_st = σ² ρ^|s−t| in visit index, exact for any missingness
    pattern; patient-level arrays padded to ``n_max`` rows, see "Padding" below), or ``"unstructured"`` (a
    variance per visit and a correlation per pair of visits, in the modified-Cholesky coordinates of
    :class:`trialsim.inference.laplace.Unstructured`; written with sufficient statistics per visit, exact for
    monotone missingness — a patient's observations after their first missed post-baseline visit are dropped
    for this structure; cost independent of n, ≈ 0.3 s per fit with 5 visits). The effect reported is the one at
    the endpoint visit.
``responder``
    Logistic regression of responder status on arm, completers only: responder = reduction of at least
    ``responder_threshold`` (default 0.20) of the floor-adjusted baseline (PANSS − 30) at the endpoint. Written
    as Binomial counts per arm (the same likelihood as per-patient Bernoulli with arm as the only covariate).
    The effect is the log odds ratio (arm vs control), positive = more responders on the arm.

Priors (all numbers are data of the compiled model, so changing a prior never recompiles):

- Effect per active arm: ``effect_prior=(mean, sd)`` (or one pair per active arm) Normal, in PANSS points
  (log-odds for ``responder``); ``None`` = vague Normal(0, ``vague_sd`` = 100).
- ``prior_scaled_by_sigma=True, sigma_ref=…`` (``ancova`` only): effect ~ Normal(mean, sd·σ/σ_ref) given σ,
  the normal–inverse-gamma form of the conjugate analysis; with ``sigma_prior="inverse_gamma"`` (or
  ``"jeffreys"``) and ``nuisance_sd=None`` this is exactly the conjugate model.
- Nuisance coefficients (intercept/control means, baseline slopes, non-endpoint visit effects, control
  log-odds): Normal(0, ``nuisance_sd`` = 1000) — effectively flat — or improper flat with ``None``.
- Residual SD σ: ``sigma_prior="halfnormal"`` (default, HalfNormal(``sigma_scale`` = 50 PANSS points)),
  ``"jeffreys"`` (p(σ) ∝ 1/σ, improper) or ``"inverse_gamma"`` (σ² ~ InvGamma(``sigma2_shape``,
  ``sigma2_rate``)). Random-intercept SD τ ~ HalfNormal(``sigma_scale``); AR(1) ρ ~ Uniform(−1, 1);
  unstructured: per-visit SDs ~ HalfNormal(``sigma_scale``) (the σ family does not apply), correlation
  ~ LKJ(``lkj_eta`` = 1), as a density of the modified-Cholesky coordinates (Jacobian included).

Sampler parametrisation: the regression coefficients and log-scales are one vector θ = c + T·z with z the
sampled (flat) vector, c an approximate posterior mode and T a Cholesky factor of an approximate posterior
covariance, both computed per trial with least squares / moments (Stan's "QR reparametrisation" idea) — for
``"unstructured"``, the Laplace approximation of :mod:`trialsim.inference.laplace` (mode and curvature of the
variance parameters' marginal posterior, and the mean parameters' Gaussian posterior given them). The map
is affine with a data-only Jacobian, so the posterior of θ is exactly the model's; it just makes the sampler
see an almost standard-normal target, so NUTS needs few leapfrog steps and little tuning whatever the scale
and correlation of the data.

Padding: the compiled model has fixed (static) array shapes per design point. ``ancova``, ``responder`` and
the random-intercept and unstructured ``longitudinal`` models use sufficient statistics whose shapes depend only
on the number of arms and visits, so one compiled model serves any number of patients. For ``residual="ar1"``
the patient-level arrays (change from baseline, observed mask, arm indicators, centred baseline, lag
bookkeeping) have ``n_max`` rows; a trial with n < n_max patients fills rows n… with zeros
and mask 0, and every log-likelihood term is multiplied by the mask, so padded rows (and missed visits)
contribute exactly 0. A trial with more than ``n_max`` patients raises
:class:`~trialsim.exceptions.AnalysisError` (a design-point mismatch, not a fit failure).

Diagnostics and records: see :mod:`trialsim.inference.diagnostics`. R-hat/ESS (worst case) are taken over the
monitored quantities: every active arm's effect (at the endpoint for ``longitudinal``) and the scale parameters
(log σ; log τ or atanh ρ or the per-visit log SDs and log ω; the control log-odds for ``responder``) — not over all ~20
whitened coordinates, whose maximum R-hat with 2 chains exceeds 1.01 in ≈ 5 % of well-mixed fits.
``diagnostics_ok`` uses :class:`DiagnosticThresholds` (R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergence);
divergences are the post-warmup divergent transitions of all chains. Even so, with 2 chains × 1000 draws about
1–3 % of well-mixed random-intercept fits exceed R-hat 1.01 by chance (measured): 4 chains make the rule
sharper. A fit that raises returns failed records (``fit_failed=True``), never an exception.

Environment: pymc/pytensor/nutpie are imported lazily (constructing :class:`NutsAnalysis`), never when this
module is imported. Before the first import, :func:`configure_backend` points pytensor's compile cache at a
project-specific directory (``$TRIALSIM_PYTENSOR_DIR`` or ``$XDG_CACHE_HOME/trialsim/pytensor``, by adding
``base_compiledir=…`` to ``PYTENSOR_FLAGS`` unless the user already set a compiledir there) and sets
``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` to 1 if unset (effective only for libraries not
yet loaded: a runner should set them before importing numpy, e.g. in the worker initializer). The sampled
log-densities are numba code on arrays of at most a few hundred numbers (ancova/responder/random intercept), so
BLAS threads would not help anyway.
Sampling always uses ``cores=1``: one process = one core; parallelise over trials with processes.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trialsim.exceptions import AnalysisError, ScenarioError
from trialsim.inference.data import TrialData
from trialsim.inference.diagnostics import (
    DiagnosticThresholds,
    FitResult,
    convergence_summary,
    empty_record,
    failed_record,
    worst,
)
from trialsim.inference.frequentist import (
    ancova_design,
    arm_layout,
    longitudinal_arrays,
    responder_counts,
)

KINDS: tuple[str, ...] = ("ancova", "longitudinal", "responder")
RESIDUALS: tuple[str, ...] = ("random_intercept", "ar1", "unstructured")
SIGMA_PRIORS: tuple[str, ...] = ("halfnormal", "jeffreys", "inverse_gamma")

_COMPILE_COUNT = 0
_COMPILED_CACHE: dict[tuple, Any] = {}


def compile_count() -> int:
    """Number of nutpie compilations done in this process (all :class:`NutsAnalysis` instances)."""
    return _COMPILE_COUNT


def clear_compiled_cache() -> None:
    """Forget the compiled models shared between :class:`NutsAnalysis` instances of the same structure."""
    _COMPILED_CACHE.clear()


def default_compiledir() -> str:
    """Project-specific pytensor cache: ``$TRIALSIM_PYTENSOR_DIR`` or ``$XDG_CACHE_HOME/trialsim/pytensor``."""
    explicit = os.environ.get("TRIALSIM_PYTENSOR_DIR")
    if explicit:
        return explicit
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "trialsim", "pytensor")


def configure_backend(compiledir: str | None = None) -> None:
    """Set thread counts and the pytensor compile directory before pytensor is first imported.

    Idempotent; does nothing to pytensor once it is imported (its config is read at import time), and
    never overrides a ``compiledir``/``base_compiledir`` the user put in ``PYTENSOR_FLAGS``.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if "pytensor" in sys.modules:
        return
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" in flags:
        return
    path = compiledir or default_compiledir()
    os.makedirs(path, exist_ok=True)
    os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={path}") if f)


def _backend():
    configure_backend()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz's refactor notice and similar at import
        import nutpie
        import pymc as pm
        import pytensor.tensor as pt
    # nutpie compiles with numba; pytensor's C-backend BLAS notice is irrelevant here
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)
    return pm, pt, nutpie


def seed_to_int(seed: int | np.random.SeedSequence | None) -> int:
    """A 63-bit nutpie seed derived deterministically from an int or SeedSequence (fresh entropy for None)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    hi, lo = (int(v) for v in ss.generate_state(2, dtype=np.uint32))
    return (hi << 31) | (lo >> 1)


# --------------------------------------------------------------------------------------------------
# Prior specification
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorSpec:
    """Plain-number priors; see the module docstring for their meaning."""

    effect: tuple[tuple[float, float] | None, ...]  # per active arm; None = vague, sd = inf: flat
    vague_sd: float = 100.0
    nuisance_sd: float | None = 1000.0
    scaled_by_sigma: bool = False
    sigma_ref: float | None = None
    sigma: str = "halfnormal"
    sigma_scale: float = 50.0
    sigma2_shape: float | None = None
    sigma2_rate: float | None = None

    def effect_mean_prec(self, k: int) -> tuple[float, float]:
        spec = self.effect[k]
        if spec is None:
            return 0.0, 1.0 / self.vague_sd**2
        mean, sd = spec
        return float(mean), (0.0 if math.isinf(sd) else 1.0 / float(sd) ** 2)

    @property
    def nuisance_prec(self) -> float:
        return 0.0 if self.nuisance_sd is None else 1.0 / float(self.nuisance_sd) ** 2

    def sigma_coefficients(self) -> np.ndarray:
        """(c1, c2, c3): log p(log σ) = c1·log σ − c2·σ² − c3/σ² (+ const), Jacobian of log σ included."""
        if self.sigma == "halfnormal":
            return np.array([1.0, 0.5 / self.sigma_scale**2, 0.0])
        if self.sigma == "jeffreys":
            return np.array([0.0, 0.0, 0.0])
        a, b = float(self.sigma2_shape), float(self.sigma2_rate)  # type: ignore[arg-type]
        return np.array([-2.0 * a, 0.0, b])


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


def _normalise_effect_prior(effect_prior, n_active: int) -> tuple[tuple[float, float] | None, ...]:
    """Per active arm: None (vague) or (mean, sd) with sd = inf for a flat prior (``sd`` given as None)."""
    if effect_prior is None:
        return (None,) * n_active
    single = (
        isinstance(effect_prior, Sequence)
        and len(effect_prior) == 2
        and _is_number(effect_prior[0])
        and (effect_prior[1] is None or _is_number(effect_prior[1]))
    )
    raw_items = [effect_prior] * n_active if single else list(effect_prior)
    if len(raw_items) != n_active:
        raise ScenarioError(f"effect_prior has {len(raw_items)} entries for {n_active} active arms")
    items: list[tuple[float, float] | None] = []
    for item in raw_items:
        if item is None:
            items.append(None)
            continue
        if not (
            isinstance(item, Sequence)
            and len(item) == 2
            and _is_number(item[0])
            and (item[1] is None or (_is_number(item[1]) and item[1] > 0))
        ):
            raise ScenarioError(f"effect prior {item!r} must be (mean, sd) with sd > 0, or (mean, None) for flat")
        sd = math.inf if item[1] is None else float(item[1])
        if not math.isfinite(float(item[0])):
            raise ScenarioError(f"effect prior mean {item[0]!r} must be finite")
        items.append((float(item[0]), sd))
    return tuple(items)


# --------------------------------------------------------------------------------------------------
# Model builders (run once per structure; every number that varies by trial or prior is pm.Data)
# --------------------------------------------------------------------------------------------------


@dataclass
class _Structure:
    kind: str
    n_active: int
    n_visits: int  # post-baseline visits T (longitudinal), else 0
    n_max: int  # padded rows (longitudinal), else 0
    residual: str
    lkj_eta: float
    sd_scale: float  # only used by the unstructured per-visit SD prior
    theta_names: list[str] = field(default_factory=list)

    @property
    def n_mean(self) -> int:
        if self.kind == "ancova":
            return self.n_active + 2
        if self.kind == "responder":
            return self.n_active + 1
        return self.n_visits * (2 + self.n_active)

    @property
    def n_theta(self) -> int:
        if self.kind == "ancova":
            return self.n_mean + 1
        if self.kind == "responder":
            return self.n_mean
        if self.residual == "unstructured":
            return self.n_mean + self.n_visits * (self.n_visits + 1) // 2
        return self.n_mean + 2

    def key(self) -> tuple:
        return (
            self.kind,
            self.n_active,
            self.n_visits,
            self.n_max,
            self.residual,
            self.lkj_eta,
            self.sd_scale if self.residual == "unstructured" else None,
        )


def _data(pm, name: str, value) -> Any:
    """pm.Data with a STATIC shape (lets pytensor drop shape checks; with_data must keep the shape)."""
    value = np.asarray(value)
    return pm.Data(name, value, shape=value.shape)


def _theta(pm, pt, d: int):
    centre = _data(pm, "centre", np.zeros(d))
    transform = _data(pm, "transform", np.eye(d))
    raw = pm.Flat("z", shape=(d,))
    # elementwise product + row sums: ~1.8 µs cheaper per gradient than a BLAS Dot at these sizes
    return centre + pt.sum(transform * raw[None, :], axis=1)


def _gaussian_prior(pm, p: int):
    """Data of independent Normal priors on p coefficients: (mean, precision); precision 0 = flat."""
    mean = _data(pm, "prior_mean", np.zeros(p))
    prec = _data(pm, "prior_prec", np.zeros(p))
    return mean, prec


def _sigma_logp(pm, pt, log_sigma):
    coef = _data(pm, "sigma_prior", np.zeros(3))
    return coef[0] * log_sigma - coef[1] * pt.exp(2.0 * log_sigma) - coef[2] * pt.exp(-2.0 * log_sigma)


def _build_ancova(pm, pt, s: _Structure):
    """ANCOVA on sufficient statistics, written in coordinates where every quadratic form is diagonal.

    With β = c + T·z (T from a generalised eigen-decomposition, see ``_prepare_ancova``) the log posterior is
        −(n + n_s) log σ − ½ σ⁻² (c₁ + Σ z(2b₁ + a₁z)) − ½ (c₀ + Σ z(2b₀ + a₀z)) + log p(log σ)
    where the σ⁻² form is the residual sum of squares plus the σ-scaled effect priors and the other form the
    unscaled Normal priors: exactly the Normal likelihood of the completers and the stated priors, with
    elementwise operations only (a p × p quadratic form costs ≈ 1 µs more per gradient in pytensor's numba
    backend; the sampler makes ~10⁴ gradient calls per fit).
    """
    K = s.n_active
    p = s.n_mean
    with pm.Model() as model:
        z_all = pm.Flat("z", shape=(p + 1,))
        z = z_all[:p]
        log_sigma = _data(pm, "ls_centre", np.array(0.0)) + _data(pm, "ls_scale", np.array(1.0)) * z_all[p]
        a1 = _data(pm, "a1", np.ones(p))
        b1 = _data(pm, "b1", np.zeros(p))
        c1 = _data(pm, "c1", np.array(1.0))
        a0 = _data(pm, "a0", np.zeros(p))
        b0 = _data(pm, "b0", np.zeros(p))
        c0 = _data(pm, "c0", np.array(0.0))
        n_eff = _data(pm, "n_eff", np.array(float(p + 2)))  # completers + number of σ-scaled effect priors
        q1 = c1 + pt.sum(z * (2.0 * b1 + a1 * z))
        q0 = c0 + pt.sum(z * (2.0 * b0 + a0 * z))
        logp = -n_eff * log_sigma - 0.5 * pt.exp(-2.0 * log_sigma) * q1 - 0.5 * q0
        pm.Potential("logp", logp + _sigma_logp(pm, pt, log_sigma))
        eff_centre = _data(pm, "eff_centre", np.zeros(K))
        eff_rows = _data(pm, "eff_rows", np.zeros((K, p)))
        pm.Deterministic("effect", eff_centre + pt.sum(eff_rows * z[None, :], axis=1))
    s.theta_names = ["intercept", *[f"effect[{k}]" for k in range(K)], "baseline_slope", "log_sigma"]
    return model


def _build_responder(pm, pt, s: _Structure):
    K = s.n_active
    p = s.n_mean
    with pm.Model() as model:
        theta = _theta(pm, pt, s.n_theta)
        x = _data(pm, "responders", np.zeros(K + 1))
        n = _data(pm, "analysed", np.ones(K + 1))
        logit = theta[0] + pt.concatenate([pt.zeros(1), theta[1:]])
        loglik = pt.sum(x * logit - n * pt.softplus(logit))
        mean, prec = _gaussian_prior(pm, p)
        pm.Potential("logp", loglik - 0.5 * pt.sum(prec * (theta - mean) ** 2))
        pm.Deterministic("effect", theta[1:])
    s.theta_names = ["control_logit", *[f"effect[{k}]" for k in range(K)]]
    return model


def _build_ar1(pm, pt, s: _Structure):
    """AR(1) model on patient-level arrays padded to n_max rows (mask 0 = no contribution)."""
    K, T, N = s.n_active, s.n_visits, s.n_max
    p = s.n_mean
    with pm.Model() as model:
        theta = _theta(pm, pt, s.n_theta)
        y = _data(pm, "change", np.zeros((N, T)))
        w = _data(pm, "mask", np.zeros((N, T)))
        onehot = _data(pm, "onehot", np.zeros((N, K)))
        base = _data(pm, "baseline_c", np.zeros(N))
        a = theta[:T]
        delta = theta[T : T + K * T].reshape((K, T))
        gamma = theta[T + K * T : p]
        mu = a[None, :] - pt.dot(onehot, delta) + base[:, None] * gamma[None, :]
        r = (y - mu) * w
        mean, prec = _gaussian_prior(pm, p)
        logp = -0.5 * pt.sum(prec * (theta[:p] - mean) ** 2)
        prev = _data(pm, "prev_index", np.zeros(N * T, dtype="int64"))
        has_prev = _data(pm, "has_prev", np.zeros((N, T)))
        gap = _data(pm, "gap", np.ones((N, T)))
        log_sigma, u = theta[p], theta[p + 1]
        rho = pt.tanh(u)
        r_prev = r.reshape((N * T,))[prev].reshape((N, T))
        phi = has_prev * rho**gap
        e = r - phi * r_prev
        log_v = 2.0 * log_sigma + pt.log1p(-(phi**2))
        loglik = pt.sum(w * (-0.5 * log_v - 0.5 * e**2 * pt.exp(-log_v)))
        logp += _sigma_logp(pm, pt, log_sigma) + pt.log1p(-(rho**2))
        pm.Potential("logp", loglik + logp)
        pm.Deterministic("effect", delta)
    s.theta_names = _mean_names(K, T) + ["log_sigma", "atanh_rho"]
    return model


def _build_unstructured(pm, pt, s: _Structure):
    """Unstructured covariance on sufficient statistics per visit, exact for monotone missingness.

    θ holds β and the modified Cholesky coordinates of Σ (:class:`trialsim.inference.laplace.Unstructured`):
    Σ⁻¹ = Tᵀ diag(ω)⁻¹ T with T = I − Φ unit lower triangular, i.e. visit t given the earlier visits has residual
    variance ω_t and regression coefficients φ_t. For a patient observed at visits 0…m−1, Σ_OO⁻¹ is built from the
    leading m rows of T, so with τ_t the t-th row of T and r_i = y_i − Bᵀu_i the residuals,
        −2 log L = Σ_t n_t log ω_t + Σ_t τ_tᵀ (Σ_{i observed at t} r_i r_iᵀ) τ_t / ω_t,
    and Σ_{i observed at t} r_i r_iᵀ = Y_t − C_tᵀB − BᵀC_t + BᵀU_tB needs only the cross-products of the patients
    observed at visit t (Y_t = Σ y yᵀ, C_t = Σ u yᵀ, U_t = Σ u uᵀ, n_t): the cost does not depend on the number
    of patients. Prior: HalfNormal per-visit SDs and an LKJ correlation, as a density of these coordinates.
    """
    from trialsim.inference.laplace import Unstructured

    K, T = s.n_active, s.n_visits
    q, p = 2 + K, s.n_mean
    prior = Unstructured(T, s.sd_scale, s.lkj_eta)
    with pm.Model() as model:
        theta = _theta(pm, pt, s.n_theta)
        beta = theta[:p]
        log_omega = theta[p : p + T]
        unit = pt.set_subtensor(pt.zeros((T, T))[prior.rows, prior.cols], -theta[p + T :]) + np.eye(T)
        n_t = _data(pm, "n_t", np.zeros(T))
        U_t = _data(pm, "U_t", np.zeros((T, q, q)))
        C_t = _data(pm, "C_t", np.zeros((T, q, T)))
        Y_t = _data(pm, "Y_t", np.zeros((T, T, T)))
        v = pt.dot(beta.reshape((q, T)), unit.T).T  # (T, q): row t = B τ_t
        quad = (
            pt.sum(Y_t * unit[:, :, None] * unit[:, None, :], axis=(1, 2))
            - 2.0 * pt.sum(pt.sum(C_t * unit[:, None, :], axis=2) * v, axis=1)
            + pt.sum(U_t * v[:, :, None] * v[:, None, :], axis=(1, 2))
        )
        loglik = -0.5 * pt.sum(n_t * log_omega) - 0.5 * pt.sum(quad * pt.exp(-log_omega))
        mean, prec = _gaussian_prior(pm, p)
        var = pt.sum(_unit_lower_inverse(pt, unit, T) ** 2 * pt.exp(log_omega)[None, :], axis=1)  # Σ_tt
        power = 0.5 * T + (s.lkj_eta - 1.0)
        log_prior = pt.sum(-var / (2.0 * s.sd_scale**2) - power * pt.log(var)) + pt.sum(
            prior.jacobian_power * log_omega
        )
        pm.Potential("logp", loglik - 0.5 * pt.sum(prec * (beta - mean) ** 2) + log_prior)
        pm.Deterministic("effect", beta[T : T + K * T].reshape((K, T)))
        pm.Deterministic("visit_sd", pt.sqrt(var))
    s.theta_names = _mean_names(K, T) + prior.names()
    return model


def _unit_lower_inverse(pt, unit, T: int):
    """L = T⁻¹ of a unit lower-triangular T by forward substitution, unrolled in the graph: elementwise operations
    only (a LAPACK call per gradient costs more than the whole model when BLAS threads spin on a busy machine)."""
    rows = []
    for t in range(T):
        row = pt.set_subtensor(pt.zeros(T)[t], 1.0)
        for j in range(t):
            row = row - unit[t, j] * rows[j]
        rows.append(row)
    return pt.stack(rows)


def _mean_names(K: int, T: int) -> list[str]:
    return (
        [f"mean[{t}]" for t in range(T)]
        + [f"effect[{k},{t}]" for k in range(K) for t in range(T)]
        + [f"baseline_slope[{t}]" for t in range(T)]
    )


def _build_random_intercept(pm, pt, s: _Structure):
    """Random-intercept (compound symmetry) model on sufficient statistics grouped by #observed visits.

    With residual r_i = y_i − X_i β of patient i (m_i observed cells) and V_i = σ² I + τ² 11ᵀ,
    −2 log L_i = 2 m_i log σ + log(1 + m_i τ²/σ²) + (r_iᵀr_i − c(m_i)(1ᵀr_i)²)/σ² + const,
    c(m) = (τ²/σ²)/(1 + m τ²/σ²). Σ r_iᵀr_i needs X'X, X'y, y'y over all cells, and Σ_{i: m_i=m} (1ᵀr_i)²
    needs A_m = Σ g_i g_iᵀ, b_m = Σ g_i s_i, c_m = Σ s_i² with g_i = X_iᵀ1, s_i = 1ᵀy_i, for m = 1…T.
    Exact, and the cost does not depend on the number of patients.
    """
    K, T = s.n_active, s.n_visits
    p = s.n_mean
    with pm.Model() as model:
        theta = _theta(pm, pt, s.n_theta)
        beta = theta[:p]
        log_sigma, log_tau = theta[p], theta[p + 1]
        xtx = _data(pm, "xtx", np.eye(p))
        xty = _data(pm, "xty", np.zeros(p))
        yty = _data(pm, "yty", np.array(1.0))
        n_cells = _data(pm, "n_cells", np.array(1.0))
        n_by_m = _data(pm, "n_by_m", np.zeros(T))  # patients with m = 1..T observed visits
        a_by_m = _data(pm, "a_by_m", np.zeros((T, p * p)))  # row m−1: A_m flattened
        b_by_m = _data(pm, "b_by_m", np.zeros((T, p)))
        c_by_m = _data(pm, "c_by_m", np.zeros(T))
        m = np.arange(1, T + 1, dtype=float)
        ratio = pt.exp(2.0 * (log_tau - log_sigma))
        c_m = ratio / (1.0 + m * ratio)
        # Σ_i (r_iᵀr_i − c(m_i)(1ᵀr_i)²) = βᵀMβ − 2βᵀv + w with M = X'X − Σ c_m A_m, v = X'y − Σ c_m b_m, ...
        M = xtx - pt.dot(c_m, a_by_m).reshape((p, p))
        v = xty - pt.dot(c_m, b_by_m)
        w = yty - pt.sum(c_m * c_by_m)
        quad = (pt.sum(beta * pt.sum(M * beta[None, :], axis=1)) - 2.0 * pt.sum(beta * v) + w) * pt.exp(
            -2.0 * log_sigma
        )
        loglik = -0.5 * (2.0 * n_cells * log_sigma + pt.sum(n_by_m * pt.log1p(m * ratio)) + quad)
        mean, prec = _gaussian_prior(pm, p)
        tau_coef = _data(pm, "tau_prior", np.array(0.0))  # HalfNormal(scale): 1/(2 scale²)
        logp = -0.5 * pt.sum(prec * (beta - mean) ** 2)
        logp += _sigma_logp(pm, pt, log_sigma) + log_tau - tau_coef * pt.exp(2.0 * log_tau)
        pm.Potential("logp", loglik + logp)
        pm.Deterministic("effect", theta[T : T + K * T].reshape((K, T)))
    s.theta_names = _mean_names(K, T) + ["log_sigma", "log_tau"]
    return model


def _build_longitudinal(pm, pt, s: _Structure):
    builders = {"random_intercept": _build_random_intercept, "ar1": _build_ar1, "unstructured": _build_unstructured}
    return builders[s.residual](pm, pt, s)


_BUILDERS = {"ancova": _build_ancova, "responder": _build_responder, "longitudinal": _build_longitudinal}


# --------------------------------------------------------------------------------------------------
# Per-trial data preparation (numpy only)
# --------------------------------------------------------------------------------------------------


def _whitening(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre H⁻¹g and T with T·Tᵀ = H⁻¹ (H: approximate posterior precision). Robust to singular H."""
    H = 0.5 * (H + H.T)
    scale = float(np.max(np.abs(np.diag(H)))) if H.size else 1.0
    H = H + np.eye(H.shape[0]) * (1e-10 * scale + 1e-12)
    try:
        L = np.linalg.cholesky(H)
        centre = np.linalg.solve(H, g)
        transform = np.linalg.solve(L.T, np.eye(H.shape[0]))  # L⁻ᵀ
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(H)
        vals = np.maximum(vals, 1e-6 * max(vals.max(), 1e-12))
        centre = vecs @ ((vecs.T @ g) / vals)
        transform = vecs / np.sqrt(vals)[None, :]
    return centre, transform


def _block_diag(*blocks: np.ndarray) -> np.ndarray:
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    i = 0
    for b in blocks:
        out[i : i + b.shape[0], i : i + b.shape[0]] = b
        i += b.shape[0]
    return out


class NutsAnalysis:
    """One compiled PyMC model of a design point, refitted to each simulated trial with nutpie.

    Args:
        kind: ``"ancova"``, ``"longitudinal"`` or ``"responder"``.
        n_max: padded number of patients (``longitudinal`` with ``residual="ar1"``; ignored
            by the sufficient-statistics models).
        n_visits: number of visits INCLUDING baseline, i.e. ``data.panss.shape[1]`` (``longitudinal`` only).
        n_arms: number of arms including control.
        residual: ``longitudinal`` covariance: ``"random_intercept"``, ``"ar1"`` or ``"unstructured"``.
        effect_prior: ``(mean, sd)`` for every active arm, a sequence of such pairs (or None) per active arm,
            or None for vague Normal(0, ``vague_sd``).
        prior_scaled_by_sigma, sigma_ref: the conjugate (normal–inverse-gamma) form, ``ancova`` only.
        sigma_prior, sigma_scale, sigma2_shape, sigma2_rate: prior of the residual SD.
        nuisance_sd: SD of the Normal(0, ·) prior on nuisance coefficients; None = flat (improper).
        vague_sd: SD of the vague effect prior.
        lkj_eta: LKJ shape for ``residual="unstructured"``.
        responder_threshold: responder definition (fraction of floor-adjusted baseline).
        margin, margin2: P(effect > margin) and P(effect > margin2) are reported (margin2 None → NaN).
        ci_level: equal-tailed credible interval level.
        draws, tune, chains: nutpie settings per fit (always ``cores=1``).
        target_accept: nutpie step-size target.
        thresholds: :class:`DiagnosticThresholds` for ``diagnostics_ok``.
        use_cache: reuse a compiled model of the same structure built earlier in this process.
    """

    def __init__(
        self,
        kind: str = "ancova",
        n_max: int | None = None,
        n_visits: int | None = None,
        n_arms: int = 2,
        *,
        residual: str = "random_intercept",
        effect_prior: Any = None,
        prior_scaled_by_sigma: bool = False,
        sigma_ref: float | None = None,
        sigma_prior: str = "halfnormal",
        sigma_scale: float = 50.0,
        sigma2_shape: float | None = None,
        sigma2_rate: float | None = None,
        nuisance_sd: float | None = 1000.0,
        vague_sd: float = 100.0,
        lkj_eta: float = 1.0,
        responder_threshold: float = 0.20,
        margin: float = 0.0,
        margin2: float | None = None,
        ci_level: float = 0.95,
        draws: int = 1000,
        tune: int = 500,
        chains: int = 2,
        target_accept: float = 0.8,
        thresholds: DiagnosticThresholds | None = None,
        use_cache: bool = True,
    ):
        kind = str(kind).lower()
        if kind not in KINDS:
            raise ScenarioError(f"unknown NUTS model kind {kind!r}; choose one of {', '.join(KINDS)}")
        if n_arms < 2:
            raise ScenarioError("n_arms must be ≥ 2 (control + at least one active arm)")
        residual = str(residual).lower()
        if kind == "longitudinal":
            if residual not in RESIDUALS:
                raise ScenarioError(f"unknown residual structure {residual!r}; choose one of {', '.join(RESIDUALS)}")
            if n_visits is None or n_visits < 2:
                raise ScenarioError("longitudinal models need n_visits ≥ 2 (baseline included)")
            if residual == "ar1" and (n_max is None or n_max < 1):
                raise ScenarioError("residual='ar1' needs n_max ≥ 1 (patient rows are padded to n_max)")
            if residual in ("ar1", "unstructured") and n_visits < 3:
                raise ScenarioError(f"residual={residual!r} needs ≥ 2 post-baseline visits")
            if residual != "ar1":
                n_max = 0  # sufficient statistics: no patient-level arrays, any n works
        if sigma_prior not in SIGMA_PRIORS:
            raise ScenarioError(f"unknown sigma_prior {sigma_prior!r}; choose one of {', '.join(SIGMA_PRIORS)}")
        if sigma_prior == "inverse_gamma" and not (
            sigma2_shape is not None and sigma2_rate is not None and sigma2_shape >= 0 and sigma2_rate >= 0
        ):
            raise ScenarioError("sigma_prior='inverse_gamma' needs sigma2_shape ≥ 0 and sigma2_rate ≥ 0")
        if prior_scaled_by_sigma and (kind != "ancova" or sigma_ref is None or not sigma_ref > 0):
            raise ScenarioError("prior_scaled_by_sigma needs kind='ancova' and sigma_ref > 0")
        if draws < 4 or tune < 0 or chains < 1:
            raise ScenarioError("need draws ≥ 4, tune ≥ 0, chains ≥ 1")
        self.kind = kind
        self.n_arms = int(n_arms)
        self.n_active = self.n_arms - 1
        self.prior = PriorSpec(
            effect=_normalise_effect_prior(effect_prior, self.n_active),
            vague_sd=float(vague_sd),
            nuisance_sd=None if nuisance_sd is None else float(nuisance_sd),
            scaled_by_sigma=bool(prior_scaled_by_sigma),
            sigma_ref=None if sigma_ref is None else float(sigma_ref),
            sigma=sigma_prior,
            sigma_scale=float(sigma_scale),
            sigma2_shape=sigma2_shape,
            sigma2_rate=sigma2_rate,
        )
        self.responder_threshold = float(responder_threshold)
        self.margin = float(margin)
        self.margin2 = None if margin2 is None else float(margin2)
        self.ci_level = float(ci_level)
        self.draws, self.tune, self.chains = int(draws), int(tune), int(chains)
        self.target_accept = float(target_accept)
        self.thresholds = thresholds or DiagnosticThresholds()
        self.structure = _Structure(
            kind=kind,
            n_active=self.n_active,
            n_visits=int(n_visits) - 1 if kind == "longitudinal" else 0,
            n_max=int(n_max) if kind == "longitudinal" else 0,
            residual=residual if kind == "longitudinal" else "",
            lkj_eta=float(lkj_eta),
            sd_scale=float(sigma_scale),
        )
        self.n_compiles = 0
        self.compile_seconds = 0.0
        self._compiled = self._compile(use_cache)

    # ---------------------------------------------------------------- compile
    def _compile(self, use_cache: bool):
        global _COMPILE_COUNT
        pm, pt, nutpie = _backend()
        key = self.structure.key()
        if use_cache and key in _COMPILED_CACHE:
            compiled, names = _COMPILED_CACHE[key]
            self.structure.theta_names = list(names)
            return compiled
        start = time.perf_counter()
        model = _BUILDERS[self.kind](pm, pt, self.structure)
        stored = ["effect", "visit_sd"] if self.structure.residual == "unstructured" else ["effect"]
        compiled = nutpie.compile_pymc_model(model, var_names=stored)
        self.compile_seconds = time.perf_counter() - start
        self.n_compiles += 1
        _COMPILE_COUNT += 1
        if use_cache:
            _COMPILED_CACHE[key] = (compiled, list(self.structure.theta_names))
        return compiled

    # ---------------------------------------------------------------- data
    def check_design(self, data: TrialData) -> None:
        """Raise :class:`AnalysisError` if the trial does not fit the compiled shapes (arms, visits, n_max)."""
        if len(data.arm_names) != self.n_arms:
            raise AnalysisError(f"trial has {len(data.arm_names)} arms, the compiled model {self.n_arms}")
        if self.kind == "longitudinal":
            s = self.structure
            if data.panss.shape[1] != s.n_visits + 1:
                raise AnalysisError(f"trial has {data.panss.shape[1]} visits, the compiled model {s.n_visits + 1}")
            if s.n_max and data.n > s.n_max:
                raise AnalysisError(f"trial has {data.n} patients, more than n_max={s.n_max} of the compiled model")

    def prepare(self, data: TrialData) -> tuple[dict[str, np.ndarray], int]:
        """Arrays to swap into the compiled model for this trial, and the number of patients analysed."""
        self.check_design(data)
        if self.kind == "ancova":
            return self._prepare_ancova(data)
        if self.kind == "responder":
            return self._prepare_responder(data)
        return self._prepare_longitudinal(data)

    def _effect_prior_arrays(self, p: int, effect_index: list[int], nuisance: list[int]):
        mean = np.zeros(p)
        prec = np.zeros(p)
        prec[nuisance] = self.prior.nuisance_prec
        for k, j in enumerate(effect_index):
            mean[j], prec[j] = self.prior.effect_mean_prec(k)
        return mean, prec

    def _prepare_ancova(self, data: TrialData):
        from scipy import linalg

        K = self.n_active
        design = ancova_design(data)
        X, y = design.X, design.y
        n, p = X.shape
        if n == 0:
            raise AnalysisError("no completer to analyse")
        xtx, xty, yty = X.T @ X, X.T @ y, float(y @ y)
        effect_idx = list(range(1, 1 + K))
        mean, prec = self._effect_prior_arrays(p, effect_idx, [0, p - 1])
        scaled = np.zeros(p, dtype=bool)
        sigma_ref2 = 1.0
        if self.prior.scaled_by_sigma:
            scaled[effect_idx] = True
            sigma_ref2 = float(self.prior.sigma_ref) ** 2
        p_s = np.where(scaled, prec, 0.0) * sigma_ref2  # enters multiplied by σ⁻²
        p_u = np.where(scaled, 0.0, prec)
        A1 = xtx + np.diag(p_s)
        A0 = np.diag(p_u)
        B = A1 + A0
        try:
            np.linalg.cholesky(B)
        except np.linalg.LinAlgError:
            raise AnalysisError(
                "improper posterior: singular ANCOVA design (an arm without completers?) and flat priors"
            ) from None
        # approximate posterior mode at a residual variance s2, for the centre and the scales
        ridge = np.linalg.lstsq(xtx + 1e-8 * np.eye(p) * max(np.trace(xtx), 1.0) / p, xty, rcond=None)[0]
        rss = max(yty - 2 * ridge @ xty + ridge @ xtx @ ridge, 0.0)
        s2 = rss / max(n - p, 1)
        if not s2 > 1e-8:
            s2 = max(float(np.var(y)), 1.0)
        H = A1 / s2 + A0
        lin1 = xty + p_s * mean  # linear term of the σ⁻² form
        centre = np.linalg.solve(H, lin1 / s2 + p_u * mean)
        # V: Vᵀ A1 V = diag(μ), Vᵀ A0 V = I − diag(μ) (both forms diagonal in the new coordinates)
        mu, V = linalg.eigh(A1, B)
        mu = np.clip(mu, 0.0, 1.0)
        scale = 1.0 / np.sqrt(mu / s2 + (1.0 - mu))
        T = V * scale[None, :]
        M1, M0 = T.T @ A1 @ T, T.T @ A0 @ T
        off = max(np.max(np.abs(M1 - np.diag(np.diag(M1)))), np.max(np.abs(M0 - np.diag(np.diag(M0)))))
        if off > 1e-8 * max(1.0, np.max(np.abs(np.diag(M1))), np.max(np.abs(np.diag(M0)))):
            raise AnalysisError(f"simultaneous diagonalisation failed (off-diagonal {off:.3g})")
        q1_c = yty - 2.0 * centre @ xty + centre @ xtx @ centre + float(np.sum(p_s * (centre - mean) ** 2))
        q0_c = float(np.sum(p_u * (centre - mean) ** 2))
        n_scaled = float(np.sum(scaled & (prec > 0)))
        ls_scale = 1.0 / math.sqrt(2.0 * max(n, 1))
        arrays = dict(
            ls_centre=np.array(0.5 * math.log(s2)),
            ls_scale=np.array(ls_scale),
            a1=np.diag(M1).copy(),
            b1=T.T @ (A1 @ centre - lin1),
            c1=np.array(q1_c),
            a0=np.diag(M0).copy(),
            b0=T.T @ (A0 @ centre - p_u * mean),
            c0=np.array(q0_c),
            n_eff=np.array(float(n) + n_scaled),
            sigma_prior=self.prior.sigma_coefficients(),
            eff_centre=centre[effect_idx],
            eff_rows=T[effect_idx],
            # bookkeeping (not model data): θ = centre + transform · z
            centre=np.concatenate([centre, [0.5 * math.log(s2)]]),
            transform=_block_diag(T, np.array([[ls_scale]])),
        )
        return arrays, n

    def _prepare_responder(self, data: TrialData):
        x, n = responder_counts(data, self.responder_threshold)
        K = self.n_active
        p = K + 1
        mean, prec = self._effect_prior_arrays(p, list(range(1, p)), [0])
        phat = (x + 0.5) / (n + 1.0)
        logit = np.log(phat) - np.log1p(-phat)
        wts = n * phat * (1 - phat)
        Xa = np.column_stack([np.ones(p), np.vstack([np.zeros(K), np.eye(K)])])
        H = (Xa * wts[:, None]).T @ Xa + np.diag(prec)
        guess = np.concatenate([[logit[0]], logit[1:] - logit[0]])
        centre, transform = _whitening(H, H @ guess)
        arrays = dict(centre=centre, transform=transform, responders=x, analysed=n, prior_mean=mean, prior_prec=prec)
        return arrays, int(n.sum())

    def _prepare_longitudinal(self, data: TrialData):
        s = self.structure
        T, K, N = s.n_visits, s.n_active, s.n_max
        long = longitudinal_arrays(data)
        mask = long.mask.copy()
        if s.residual == "unstructured":  # keep each patient's monotone prefix
            mask &= np.cumprod(mask, axis=1).astype(bool)
        n_analysed = int(mask.any(axis=1).sum())
        if n_analysed == 0:
            raise AnalysisError("no observed post-baseline visit")
        p = s.n_mean
        effect_idx = [T + k * T + long.endpoint for k in range(K)]
        nuisance = [j for j in range(p) if j not in effect_idx]
        mean, prec = self._effect_prior_arrays(p, effect_idx, nuisance)
        # non-endpoint visit effects get the vague effect prior unless the nuisance prior is flat
        if self.prior.nuisance_sd is not None:
            for k in range(K):
                for t in range(T):
                    if t != long.endpoint:
                        prec[T + k * T + t] = 1.0 / self.prior.vague_sd**2
        if s.residual == "unstructured":
            return self._prepare_unstructured(long, mask, mean, prec), n_analysed

        # --- approximate GLS fit under a random-intercept working covariance (sampler map only)
        pat, vis = np.nonzero(mask)
        X = long.design_rows(pat, vis)
        yv = long.change[pat, vis]
        n_obs = pat.size
        beta_ols = np.linalg.lstsq(X, yv, rcond=None)[0]
        resid = yv - X @ beta_ols
        m = mask.sum(axis=1).astype(float)
        S_r = np.bincount(pat, weights=resid, minlength=data.n)
        mean_r = np.divide(S_r, m, out=np.zeros_like(S_r), where=m > 0)
        within_df = float(np.sum(np.maximum(m - 1, 0)))
        total_var = float(np.mean(resid**2)) if n_obs else 1.0
        if within_df > 0:
            s2_w = float(np.sum((resid - mean_r[pat]) ** 2)) / within_df
        else:
            s2_w = total_var
        s2_w = max(s2_w, 1e-6 * max(total_var, 1.0), 1e-8)
        tau2 = max(total_var - s2_w, 0.05 * s2_w)
        c = tau2 / (s2_w + m * tau2)
        G = np.zeros((data.n, p))
        np.add.at(G, pat, X)
        S_y = np.bincount(pat, weights=yv, minlength=data.n)
        H_mean = (X.T @ X - (G * c[:, None]).T @ G) / s2_w + np.diag(prec)
        g_mean = (X.T @ yv - G.T @ (c * S_y)) / s2_w + prec * mean
        c_mean, T_mean = _whitening(H_mean, g_mean)

        if s.residual == "ar1":  # patient-level arrays padded to n_max rows
            pad = N - data.n
            padded = lambda a: np.concatenate([a, np.zeros((pad, *a.shape[1:]))]) if pad else a  # noqa: E731
            arrays: dict[str, np.ndarray] = dict(
                change=padded(np.where(mask, long.change, 0.0)),
                mask=padded(mask.astype(float)),
                onehot=padded(long.onehot),
                baseline_c=padded(long.baseline_c),
                prior_mean=mean,
                prior_prec=prec,
            )
        if s.residual == "random_intercept":
            n_pat = max(n_analysed, 1)
            centre = np.concatenate([c_mean, [0.5 * math.log(s2_w), 0.5 * math.log(tau2)]])
            transform = _block_diag(
                T_mean, np.diag([1.0 / math.sqrt(2.0 * max(within_df, 1.0)), math.sqrt(2.0 / n_pat)])
            )
            mi = m.astype(int)
            a_by_m = np.zeros((T, p * p))
            b_by_m = np.zeros((T, p))
            c_by_m = np.zeros(T)
            n_by_m = np.zeros(T)
            for mm in range(1, T + 1):
                sel = mi == mm
                if sel.any():
                    g = G[sel]
                    a_by_m[mm - 1] = (g.T @ g).reshape(-1)
                    b_by_m[mm - 1] = g.T @ S_y[sel]
                    c_by_m[mm - 1] = float(S_y[sel] @ S_y[sel])
                    n_by_m[mm - 1] = float(sel.sum())
            arrays = dict(
                xtx=X.T @ X,
                xty=X.T @ yv,
                yty=np.array(float(yv @ yv)),
                n_cells=np.array(float(n_obs)),
                n_by_m=n_by_m,
                a_by_m=a_by_m,
                b_by_m=b_by_m,
                c_by_m=c_by_m,
                prior_mean=mean,
                prior_prec=prec,
                sigma_prior=self.prior.sigma_coefficients(),
                tau_prior=np.array(0.5 / self.prior.sigma_scale**2),
            )
        elif s.residual == "ar1":
            full_mask = np.zeros((N, T), dtype=bool)
            full_mask[: data.n] = mask
            prev_index = np.zeros((N, T), dtype=np.int64)
            has_prev = np.zeros((N, T))
            gap = np.ones((N, T))
            last = np.full(N, -1)
            for t in range(T):
                seen = last >= 0
                prev_index[:, t] = np.where(seen, np.arange(N) * T + np.maximum(last, 0), np.arange(N) * T + t)
                has_prev[:, t] = seen
                gap[:, t] = np.where(seen, t - last, 1)
                last = np.where(full_mask[:, t], t, last)
            # lag-1 residual correlation for the centre of atanh ρ
            rfull = np.zeros((data.n, T))
            rfull[pat, vis] = resid
            pair = mask[:, 1:] & mask[:, :-1]
            if pair.sum() > 2:
                a_, b_ = rfull[:, 1:][pair], rfull[:, :-1][pair]
                rho = float(np.clip(np.corrcoef(a_, b_)[0, 1], -0.9, 0.95))
            else:
                rho = 0.3
            if not np.isfinite(rho):
                rho = 0.3
            centre = np.concatenate([c_mean, [0.5 * math.log(max(total_var, 1e-8)), math.atanh(rho)]])
            transform = _block_diag(
                T_mean, np.diag([1.0 / math.sqrt(2.0 * max(n_obs, 1)), 1.0 / math.sqrt(max(int(pair.sum()), 1))])
            )
            arrays.update(
                prev_index=prev_index.reshape(-1),
                has_prev=has_prev,
                gap=gap,
                sigma_prior=self.prior.sigma_coefficients(),
            )
        arrays.update(centre=centre, transform=transform)
        return arrays, n_analysed

    def _prepare_unstructured(self, long, mask: np.ndarray, mean: np.ndarray, prec: np.ndarray):
        """Per-visit cross-products of the patients observed at each visit (``_build_unstructured``), and a sampler
        map centred at the Laplace approximation of the posterior: β̂(θ̂) with covariance A(θ̂)⁻¹, and θ̂ with H⁻¹."""
        from trialsim.inference.laplace import MarginalPosterior, PatternStatistics, Unstructured

        s = self.structure
        stats = PatternStatistics.of([long], [mask])
        family = Unstructured(s.n_visits, s.sd_scale, s.lkj_eta)
        # a flat prior (precision 0) is proper enough for the sampler map when given a negligible precision
        effects = [long.effect_column(k) for k in range(long.n_active)]
        posterior = MarginalPosterior(stats, family, mean, np.maximum(prec, 1e-12), effects)
        mode = posterior.mode(family.start(stats))
        centre = posterior.evaluate(mode.theta[:, None, :], full=True)
        beta_root = np.linalg.cholesky(centre.beta_cov[0, 0])
        theta_root = np.linalg.solve(np.linalg.cholesky(mode.hessian[0]).T, np.eye(family.dim))
        seen = stats.observed[0].astype(float)  # (G, T): per visit t, sums over the patterns observing t
        return dict(
            n_t=seen.T @ stats.count[0],
            U_t=np.einsum("gt,gab->tab", seen, stats.U[0]),
            C_t=np.einsum("gt,gas->tas", seen, stats.C[0]),
            Y_t=np.einsum("gt,gsu->tsu", seen, stats.YY[0]),
            prior_mean=mean,
            prior_prec=prec,
            centre=np.concatenate([centre.beta[0, 0], mode.theta[0]]),
            transform=_block_diag(beta_root, theta_root),
        )

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        data: TrialData,
        seed: int | np.random.SeedSequence | None = None,
        *,
        margin: float | None = None,
        margin2: float | None = None,
        keep_idata: bool = False,
    ) -> FitResult:
        """Swap this trial's data into the compiled model, sample, and summarise per active arm.

        Args:
            data: one simulated trial (same arms/visits as the compiled design; ≤ n_max patients).
            seed: int or SeedSequence; the nutpie seed is derived from it deterministically.
            margin, margin2: override the instance's margins for this fit.
            keep_idata: attach an ``arviz.InferenceData`` (posterior of effects and named parameters, sample
                stats) as ``result.idata``, e.g. to save the first trials with ``arviz.to_netcdf``.

        Returns:
            :class:`FitResult` ``{active arm name: record}``. Never raises for a failed fit (records have
            ``fit_failed=True``); raises :class:`AnalysisError` only when the trial does not match the
            compiled design (arms, visits, n > n_max).
        """
        start = time.perf_counter()
        layout = arm_layout(data)
        names = layout.active_names
        margin = self.margin if margin is None else float(margin)
        margin2 = self.margin2 if margin2 is None else float(margin2)
        self.check_design(data)
        n_analysed = 0
        try:
            arrays, n_analysed = self.prepare(data)
            draws, stats = self._sample(arrays, seed)
            effect = draws["effect"]  # (C, D, K) or (C, D, K, T)
            effect_all = None
            if self.kind == "longitudinal":
                effect_all = effect
                effect = effect[..., int(data.endpoint_visit) - 1]
            C, D = effect.shape[:2]
            summary = convergence_summary(self._monitored(draws, arrays, effect))
            rhat_max, ess_bulk_min, ess_tail_min = worst(summary)
            divergences = int(stats["diverging"].sum())
            ok = self.thresholds.ok(rhat_max, ess_bulk_min, ess_tail_min, divergences)
            flat = effect.reshape(C * D, -1)
            alpha = (1.0 - self.ci_level) / 2.0
            lo, hi = np.quantile(flat, [alpha, 1.0 - alpha], axis=0)
            records = {}
            for k, nm in enumerate(names):
                rec = empty_record(nm)
                col = flat[:, k]
                rec.update(
                    estimate=float(col.mean()),
                    sd=float(col.std(ddof=1)),
                    ci_low=float(lo[k]),
                    ci_high=float(hi[k]),
                    prob_effect_gt_margin=float(np.mean(col > margin)),
                    prob_effect_gt_margin2=math.nan if margin2 is None else float(np.mean(col > margin2)),
                    mcse=float(summary["mcse_mean"][k]),
                    rhat_max=rhat_max,
                    ess_bulk_min=ess_bulk_min,
                    ess_tail_min=ess_tail_min,
                    divergences=divergences,
                    diagnostics_ok=ok,
                    fit_failed=False,
                    n_analysed=int(n_analysed),
                    error="" if np.all(np.isfinite(col)) else "non-finite draws",
                )
                if not np.all(np.isfinite(col)):
                    rec["diagnostics_ok"] = False
                records[nm] = rec
            idata = None
            if keep_idata:
                idata = self._to_idata(
                    draws, stats, arrays, names, effect, effect_all if self.kind == "longitudinal" else None
                )
            return FitResult(records, idata=idata, seconds=time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - a failed fit is a record, never an exception
            return FitResult(
                {nm: failed_record(nm, exc, n_analysed) for nm in names},
                seconds=time.perf_counter() - start,
                failed=True,
            )

    def _monitored(self, draws: dict[str, np.ndarray], arrays: dict[str, np.ndarray], effect: np.ndarray):
        """(chains, draws, P) array of the monitored quantities: the reported effects and the scale parameters.

        Why not every sampled coordinate: with 2 chains the maximum of ~20 rank-normalised R-hats of a perfectly
        mixed fit exceeds 1.01 in ≈ 5 % of fits (measured on the random-intercept model), which would flag sound
        fits; the effects and scales are what the decisions and the model's geometry depend on.
        """
        C, D = effect.shape[:2]
        parts = [effect.reshape(C, D, -1)]
        z = draws.get("z")
        if z is not None:
            idx = [
                j
                for j, nm in enumerate(self.structure.theta_names)
                if nm.startswith(("log_", "atanh_")) or nm == "control_logit"
            ]
            if idx:
                rows = arrays["transform"][idx]
                parts.append(arrays["centre"][idx][None, None, :] + np.einsum("ij,cdj->cdi", rows, z))
        if "visit_sd" in draws:
            parts.append(np.log(draws["visit_sd"]).reshape(C, D, -1))
        return np.concatenate(parts, axis=2)

    def _sample(self, arrays: dict[str, np.ndarray], seed):
        import pyarrow

        _, _, nutpie = _backend()
        shared = self._compiled.shared_data
        model_arrays = {}
        for name in shared:  # static shapes: a wrong shape must never reach numba
            value = arrays[name]
            if np.shape(value) != shared[name].shape:
                raise AnalysisError(f"data {name!r} has shape {np.shape(value)}, compiled {shared[name].shape}")
            model_arrays[name] = value
        compiled = self._compiled.with_data(**model_arrays)
        kwargs: dict[str, Any] = {}
        if self.target_accept != 0.8:
            kwargs["target_accept"] = self.target_accept
        raw = nutpie.sample(
            compiled,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            cores=1,
            seed=seed_to_int(seed),
            progress_bar=False,
            return_raw_trace=True,
            **kwargs,
        )
        draw_batches, stat_batches = raw.get_arrow_trace()
        per_chain_draws: dict[str, list[np.ndarray]] = {}
        per_chain_stats: dict[str, list[np.ndarray]] = {}
        shapes = self._compiled.shapes
        for draw_b, stat_b in zip(draw_batches, stat_batches):
            tuning = np.asarray(pyarrow.array(stat_b.column("tuning")).to_numpy(zero_copy_only=False), dtype=bool)
            keep = ~tuning
            for name in draw_b.column_names:
                col = pyarrow.array(draw_b.column(name))
                if _is_list_type(pyarrow, col.type):
                    values = col.flatten().to_numpy(zero_copy_only=False)
                else:
                    values = col.to_numpy(zero_copy_only=False)
                shape = tuple(shapes.get(name, ()))
                values = np.asarray(values, dtype=float).reshape(len(keep), *shape)
                per_chain_draws.setdefault(name, []).append(values[keep])
            for name in ("diverging", "n_steps", "depth", "step_size", "energy"):
                if name in stat_b.column_names:
                    vals = pyarrow.array(stat_b.column(name)).to_numpy(zero_copy_only=False)
                    per_chain_stats.setdefault(name, []).append(np.asarray(vals)[keep])
        n_draws = min(v.shape[0] for v in per_chain_draws["effect"])
        draws = {k: np.stack([v[:n_draws] for v in vs]) for k, vs in per_chain_draws.items()}
        stats = {k: np.stack([v[:n_draws] for v in vs]) for k, vs in per_chain_stats.items()}
        return draws, stats

    def _to_idata(self, draws, stats, arrays, names, effect, effect_all):
        import arviz as az

        posterior: dict[str, np.ndarray] = {"effect": effect}
        dims: dict[str, list[str]] = {"effect": ["arm"]}
        coords: dict[str, Any] = {"arm": list(names)}
        z = draws.get("z")
        if z is not None:
            theta = arrays["centre"][None, None, :] + np.einsum("ij,cdj->cdi", arrays["transform"], z)
            for j, nm in enumerate(self.structure.theta_names):
                if nm.startswith("log_"):
                    posterior[nm[4:]] = np.exp(theta[..., j])
                elif nm == "atanh_rho":
                    posterior["rho"] = np.tanh(theta[..., j])
                elif not nm.startswith("effect["):
                    posterior[nm] = theta[..., j]
        if effect_all is not None:
            posterior["effect_by_visit"] = effect_all
            dims["effect_by_visit"] = ["arm", "visit"]
            coords["visit"] = list(range(1, effect_all.shape[-1] + 1))
        if "visit_sd" in draws:
            posterior["visit_sd"] = draws["visit_sd"]
            dims["visit_sd"] = ["visit"]
        return az.from_dict(posterior=posterior, sample_stats=stats, coords=coords, dims=dims)

    def __repr__(self) -> str:
        extra = f", residual={self.structure.residual!r}" if self.kind == "longitudinal" else ""
        return (
            f"NutsAnalysis(kind={self.kind!r}, n_arms={self.n_arms}{extra}, draws={self.draws}, "
            f"tune={self.tune}, chains={self.chains})"
        )


def _is_list_type(pyarrow, typ) -> bool:
    t = pyarrow.types
    return bool(t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ))
