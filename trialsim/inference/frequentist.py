"""Frequentist comparators of one simulated trial: ANCOVA t-test and MMRM.

Both return a :class:`~trialsim.inference.diagnostics.FitResult`: ``{active arm name: record}`` with the keys of
:data:`~trialsim.inference.diagnostics.RECORD_KEYS`. Effects follow the package convention: (mean change in
control) − (mean change in arm) in PANSS points, positive = improvement. ``p_value`` is ONE-sided, for
H0: effect ≤ margin against H1: effect > margin. Bayesian-only fields (``prob_effect_gt_margin*``, R-hat, ESS,
MCSE) are NaN; ``divergences`` is 0.

- :func:`ancova_ttest`: completers only, change at the endpoint ~ intercept + arm (each active arm vs control)
  + baseline (centred), ordinary least squares with a t reference distribution on n − p degrees of freedom.
- :func:`mmrm`: all observed post-baseline visits (missing visits dropped, i.e. MAR), change ~ arm × visit
  means + baseline × visit slopes, with a within-patient covariance structure:

  * ``"compound_symmetry"`` (alias ``"random_intercept"``): statsmodels ``MixedLM`` with a random patient
    intercept, REML. (Identical to a compound-symmetry covariance with a non-negative within-patient
    correlation.)
  * ``"unstructured"``: a separate variance per visit and correlation per pair of visits; REML fitted here
    (numpy/scipy, log-Cholesky parametrisation, L-BFGS-B; one multivariate-normal block per missingness
    pattern, so any missingness pattern is handled exactly).
  * ``"ar1"``: first-order autoregressive in visit index, Σ_st = σ² ρ^|s−t|, REML as above.

  Any other name raises :class:`~trialsim.exceptions.ScenarioError`. Degrees of freedom for the t reference
  of the endpoint contrast: (number of patients observed at the endpoint) − (2 + number of active arms), the
  residual df of the endpoint visit's own regression. With complete data this reproduces the ANCOVA t-test
  exactly for ``"unstructured"`` (identical regressors at every visit, so GLS = per-visit OLS); with missing
  data it is an approximation to Kenward–Roger/Satterthwaite, conservative only in small samples.

This module imports numpy/scipy only; statsmodels is imported inside :func:`mmrm` when MixedLM is needed.
The array helpers at the bottom (designs, responder counts) are shared with :mod:`trialsim.inference.nuts`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, optimize, stats

from trialsim.exceptions import ScenarioError
from trialsim.inference.data import TrialData
from trialsim.inference.diagnostics import FitResult, empty_record, failed_record

MMRM_COVARIANCES: tuple[str, ...] = ("compound_symmetry", "random_intercept", "unstructured", "ar1")


# --------------------------------------------------------------------------------------------------
# ANCOVA t-test
# --------------------------------------------------------------------------------------------------


def ancova_ttest(data: TrialData, margin: float = 0.0, *, ci_level: float = 0.95) -> FitResult:
    """ANCOVA on completers: change at endpoint ~ 1 + arm + (baseline − mean baseline), OLS, t reference.

    Args:
        data: one simulated trial.
        margin: the one-sided p-value tests H0: effect ≤ margin (PANSS points).
        ci_level: two-sided confidence level of ``ci_low``/``ci_high``.

    Returns:
        ``{active arm: record}``; a singular design or fewer completers than parameters gives failed records.
    """
    start = time.perf_counter()
    layout = arm_layout(data)
    try:
        design = ancova_design(data)
        n, p = design.X.shape
        df = n - p
        if df <= 0:
            raise ValueError(f"{n} completers for {p} ANCOVA parameters")
        xtx = design.X.T @ design.X
        if np.linalg.matrix_rank(xtx) < p:
            raise ValueError("singular ANCOVA design (an arm without completers?)")
        chol = linalg.cho_factor(xtx)
        beta = linalg.cho_solve(chol, design.X.T @ design.y)
        resid = design.y - design.X @ beta
        s2 = float(resid @ resid) / df
        cov = s2 * linalg.cho_solve(chol, np.eye(p))
    except Exception as exc:  # noqa: BLE001 - any numerical failure becomes a failed record
        return _failed(layout.active_names, exc, start)
    records = {}
    for k, name in enumerate(layout.active_names):
        j = 1 + k
        records[name] = _frequentist_record(name, beta[j], math.sqrt(cov[j, j]), df, margin, ci_level, n)
    return FitResult(records, seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------
# MMRM
# --------------------------------------------------------------------------------------------------


def mmrm(
    data: TrialData,
    covariance: str = "unstructured",
    margin: float = 0.0,
    *,
    ci_level: float = 0.95,
    maxiter: int = 500,
) -> FitResult:
    """Mixed model for repeated measures on change from baseline at every observed post-baseline visit.

    Mean model: a separate mean per arm and visit, and a separate baseline slope per visit (baseline centred
    at the mean of the analysed patients). Missing visits are simply absent from the likelihood (MAR). The
    effect is the control − arm contrast of the arm × visit means at the endpoint visit.

    Args:
        data: one simulated trial.
        covariance: ``"unstructured"``, ``"ar1"`` or ``"compound_symmetry"`` (alias ``"random_intercept"``);
            anything else raises :class:`~trialsim.exceptions.ScenarioError`.
        margin: the one-sided p-value tests H0: effect ≤ margin.
        ci_level: two-sided confidence level.
        maxiter: iteration limit of the REML optimiser.

    Returns:
        ``{active arm: record}``; ``diagnostics_ok`` is False when the optimiser did not report convergence.
    """
    cov_name = _check_covariance(covariance)
    start = time.perf_counter()
    layout = arm_layout(data)
    try:
        long = longitudinal_arrays(data)
        if long.n_patients_analysed == 0:
            raise ValueError("no observed post-baseline visit")
        rows = _long_rows(long)
        if cov_name == "compound_symmetry":
            beta, cov_beta, converged, note = _mixedlm_fit(rows)
        else:
            beta, cov_beta, converged, note = _reml_fit(long, rows, cov_name, maxiter)
        n_endpoint = int(long.mask[:, long.endpoint].sum())
        df = n_endpoint - (2 + long.n_active)
        if df <= 0:
            raise ValueError(f"{n_endpoint} patients observed at the endpoint for {2 + long.n_active} parameters")
    except Exception as exc:  # noqa: BLE001
        return _failed(layout.active_names, exc, start)
    records = {}
    for k, name in enumerate(layout.active_names):
        j = long.effect_column(k)
        se = math.sqrt(max(float(cov_beta[j, j]), 0.0))
        rec = _frequentist_record(name, float(beta[j]), se, df, margin, ci_level, long.n_patients_analysed)
        rec["diagnostics_ok"] = bool(converged and np.isfinite(se) and se > 0)
        rec["error"] = note
        records[name] = rec
    return FitResult(records, seconds=time.perf_counter() - start)


def _check_covariance(covariance: str) -> str:
    name = str(covariance).lower().replace("-", "_").replace(" ", "_")
    aliases = {"cs": "compound_symmetry", "random_intercept": "compound_symmetry", "un": "unstructured", "ar(1)": "ar1"}
    name = aliases.get(name, name)
    if name not in ("compound_symmetry", "unstructured", "ar1"):
        raise ScenarioError(
            f"unsupported MMRM covariance structure {covariance!r}; supported: 'unstructured', 'ar1', "
            "'compound_symmetry' (alias 'random_intercept')"
        )
    return name


@dataclass(frozen=True)
class _Rows:
    """Observed post-baseline cells in long format."""

    X: np.ndarray  # (n_obs, p) mean-model design
    y: np.ndarray  # (n_obs,) change from baseline
    patient: np.ndarray  # (n_obs,) patient index
    visit: np.ndarray  # (n_obs,) post-baseline visit index 0..T-1


def _long_rows(long: LongitudinalArrays) -> _Rows:
    pat, vis = np.nonzero(long.mask)
    X = long.design_rows(pat, vis)
    return _Rows(X=X, y=long.change[pat, vis], patient=pat, visit=vis)


def _mixedlm_fit(rows: _Rows) -> tuple[np.ndarray, np.ndarray, bool, str]:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model = sm.MixedLM(rows.y, rows.X, groups=rows.patient)
        result = model.fit(reml=True)
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    p = rows.X.shape[1]
    beta = np.asarray(result.fe_params, dtype=float)
    cov = np.asarray(result.cov_params(), dtype=float)[:p, :p]
    converged = bool(getattr(result, "converged", True)) and not notes
    return beta, cov, converged, "; ".join(notes)[:300]


def _reml_fit(long: LongitudinalArrays, rows: _Rows, cov_name: str, maxiter: int):
    """REML with an unstructured or AR(1) covariance over the post-baseline visits.

    The mean model has, for every visit t, the same q = 2 + K regressors u_i = [1, −arm dummies, centred baseline]
    with visit-specific coefficients, so a patient's design is X_i = (rows of I_T for the observed visits) ⊗ u_iᵀ.
    Grouping patients by missingness pattern O (any pattern, not only monotone), the GLS pieces are
        XᵀV⁻¹X = Σ_O U_O ⊗ W_O,  XᵀV⁻¹y = vec(Σ_O C_O W_O),  yᵀV⁻¹y = Σ_O tr(W_O Y_O),
    with W_O = Σ_OO⁻¹ embedded in T × T, U_O = Σ u_i u_iᵀ, C_O = Σ u_i y_iᵀ, Y_O = Σ y_i y_iᵀ over the pattern's
    patients: one REML evaluation costs O(patterns · (qT)²), independent of the number of patients.
    """
    T = long.n_visits
    q = 2 + long.n_active
    p = q * T
    u = np.column_stack([np.ones(long.change.shape[0]), -long.onehot, long.baseline_c])
    patterns: dict[tuple[bool, ...], list[int]] = {}
    for i in np.nonzero(long.mask.any(axis=1))[0]:
        patterns.setdefault(tuple(bool(v) for v in long.mask[i]), []).append(int(i))
    groups = []
    for pattern, patients in patterns.items():
        obs = np.nonzero(np.asarray(pattern))[0]
        idx = np.asarray(patients)
        U = u[idx].T @ u[idx]
        Y = long.change[np.ix_(idx, obs)]
        C = np.zeros((q, T))
        C[:, obs] = u[idx].T @ Y
        YY = Y.T @ Y
        groups.append((obs, idx.size, U, C, YY))

    # Starting values from OLS residuals.
    beta0, *_ = np.linalg.lstsq(rows.X, rows.y, rcond=None)
    resid = rows.y - rows.X @ beta0
    var_t = np.array([np.mean(resid[rows.visit == t] ** 2) if np.any(rows.visit == t) else 1.0 for t in range(T)])
    var_t = np.where(var_t > 0, var_t, 1.0)

    tril = np.tril_indices(T)
    if cov_name == "unstructured":

        def sigma_of(theta: np.ndarray) -> np.ndarray:
            L = np.zeros((T, T))
            L[tril] = theta
            L[np.diag_indices(T)] = np.exp(np.diag(L))
            return L @ L.T

        # start at the pairwise moment estimate of the OLS residuals (the exact REML solution with complete
        # data, where GLS = per-visit OLS), made positive definite
        rmat = np.zeros(long.change.shape)
        rmat[rows.patient, rows.visit] = resid
        obs_f = long.mask.astype(float)
        pairs = obs_f.T @ obs_f
        S0 = (rmat.T @ rmat) / np.maximum(pairs - q, 1.0)
        vals, vecs = np.linalg.eigh(0.5 * (S0 + S0.T))
        vals = np.maximum(vals, 1e-3 * max(vals.max(), 1e-8))
        L0 = np.linalg.cholesky((vecs * vals) @ vecs.T)
        L0[np.diag_indices(T)] = np.log(np.diag(L0))
        theta0 = L0[tril]
    else:  # ar1
        lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))

        def sigma_of(theta: np.ndarray) -> np.ndarray:
            return math.exp(2 * theta[0]) * np.tanh(theta[1]) ** lag

        theta0 = np.array([0.5 * math.log(var_t.mean()), math.atanh(0.5)])

    def gls_pieces(theta: np.ndarray):
        sigma = sigma_of(theta)
        A = np.zeros((p, p))
        Bm = np.zeros((q, T))
        yy = 0.0
        logdet = 0.0
        inverses = []
        for obs, n_g, U, C, YY in groups:
            c = linalg.cho_factor(sigma[np.ix_(obs, obs)], lower=True)
            logdet += n_g * 2.0 * float(np.sum(np.log(np.diag(c[0]))))
            W_oo = linalg.cho_solve(c, np.eye(obs.size))
            W = np.zeros((T, T))
            W[np.ix_(obs, obs)] = W_oo
            A += np.kron(U, W)
            Bm += C @ W
            yy += float(np.sum(W_oo * YY))
            inverses.append(W_oo)
        return A, Bm.reshape(-1), yy, logdet, inverses

    def neg2_reml(theta: np.ndarray, with_grad: bool = False):
        try:
            A, b, yy, logdet, inverses = gls_pieces(theta)
            cA = linalg.cho_factor(A, lower=True)
        except (np.linalg.LinAlgError, linalg.LinAlgError, ValueError):
            return (1e300, np.zeros_like(theta)) if with_grad else 1e300
        beta = linalg.cho_solve(cA, b)
        value = logdet + 2.0 * np.sum(np.log(np.diag(cA[0]))) + yy - float(b @ beta)
        if not np.isfinite(value):
            return (1e300, np.zeros_like(theta)) if with_grad else 1e300
        if not with_grad:
            return float(value)
        # d(−2ℓ_R) = tr(G dΣ), G = Σ_O embed(n W − W (E + F) W): E = residual cross-products at the GLS β
        # (envelope theorem), F = Σ_i X_i A⁻¹ X_iᵀ from d log|A|.
        a_inv = linalg.cho_solve(cA, np.eye(p)).reshape(q, T, q, T)
        bmat = beta.reshape(q, T)
        G = np.zeros((T, T))
        for (obs, n_g, U, C, YY), W in zip(groups, inverses):
            Bo, Co = bmat[:, obs], C[:, obs]
            E = YY - Co.T @ Bo - Bo.T @ Co + Bo.T @ U @ Bo
            F = np.einsum("bsct,bc->st", a_inv[:, obs][:, :, :, obs], U)
            G[np.ix_(obs, obs)] += n_g * W - W @ (E + F) @ W
        L = np.zeros((T, T))
        L[tril] = theta
        L[np.diag_indices(T)] = np.exp(np.diag(L))
        dL = 2.0 * G @ L
        dL[np.diag_indices(T)] *= np.diag(L)
        return float(value), dL[tril]

    if cov_name == "unstructured":
        res = optimize.minimize(
            neg2_reml,
            theta0,
            args=(True,),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-8},
        )
    else:
        res = optimize.minimize(
            neg2_reml, theta0, method="L-BFGS-B", options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-7}
        )
    A, b, _, _, _ = gls_pieces(res.x)
    cA = linalg.cho_factor(A, lower=True)
    beta = linalg.cho_solve(cA, b)
    cov_beta = linalg.cho_solve(cA, np.eye(p))
    # status 2 = the line search cannot improve further (at the optimum to machine precision): accepted
    converged = bool(res.success or res.status == 2) and np.isfinite(res.fun) and res.fun < 1e299
    note = "" if res.success else f"REML optimiser: {res.message}"
    return beta, cov_beta, converged, str(note)


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


def _frequentist_record(
    arm: str, estimate: float, se: float, df: float, margin: float, ci_level: float, n_analysed: int
) -> dict[str, Any]:
    rec = empty_record(arm)
    q = stats.t.ppf(0.5 + ci_level / 2.0, df)
    rec.update(
        estimate=float(estimate),
        sd=float(se),
        ci_low=float(estimate - q * se),
        ci_high=float(estimate + q * se),
        p_value=float(stats.t.sf((estimate - margin) / se, df)) if se > 0 else math.nan,
        df=float(df),
        divergences=0,
        diagnostics_ok=bool(np.isfinite(se) and se > 0),
        fit_failed=False,
        n_analysed=int(n_analysed),
    )
    return rec


def _failed(names: tuple[str, ...], exc: BaseException, start: float) -> FitResult:
    return FitResult(
        {name: failed_record(name, exc) for name in names}, seconds=time.perf_counter() - start, failed=True
    )


# --------------------------------------------------------------------------------------------------
# Shared array helpers (also used by trialsim.inference.nuts)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmLayout:
    """Control arm and the active arms in scenario order (the order of every per-arm output)."""

    control: int
    active: tuple[int, ...]
    active_names: tuple[str, ...]


def arm_layout(data: TrialData) -> ArmLayout:
    active = tuple(i for i in range(len(data.arm_names)) if i != data.control)
    return ArmLayout(
        control=int(data.control), active=active, active_names=tuple(str(data.arm_names[i]) for i in active)
    )


def active_onehot(data: TrialData, layout: ArmLayout | None = None) -> np.ndarray:
    """(n, K) indicator of each patient's active arm (all zeros for control)."""
    layout = layout or arm_layout(data)
    arm = np.asarray(data.arm)
    return (arm[:, None] == np.asarray(layout.active, dtype=int)[None, :]).astype(float)


@dataclass(frozen=True)
class AncovaDesign:
    """Completers' ANCOVA design: columns [intercept, −1{arm = k} for each active k, centred baseline].

    The arm columns carry a minus sign so that their coefficients ARE the effects: (control mean change) −
    (arm mean change), positive = improvement.
    """

    X: np.ndarray
    y: np.ndarray
    baseline_centre: float

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


def ancova_design(data: TrialData) -> AncovaDesign:
    keep = np.asarray(data.endpoint_observed, dtype=bool)
    y = np.asarray(data.change_at_endpoint, dtype=float)[keep]
    base = np.asarray(data.baseline, dtype=float)[keep]
    centre = float(base.mean()) if base.size else 0.0
    onehot = active_onehot(data)[keep]
    X = np.column_stack([np.ones(y.size), -onehot, base - centre])
    return AncovaDesign(X=X, y=y, baseline_centre=centre)


@dataclass(frozen=True)
class LongitudinalArrays:
    """Post-baseline change from baseline as (patients × T) arrays, T = number of post-baseline visits.

    Attributes:
        change: change from baseline (PANSS points), 0 where not observed.
        mask: observed cells.
        baseline_c: baseline centred at the mean of the patients with ≥ 1 observed post-baseline visit.
        onehot: (n, K) active-arm indicators.
        endpoint: index of the endpoint among post-baseline visits (``data.endpoint_visit − 1``).
    """

    change: np.ndarray
    mask: np.ndarray
    baseline_c: np.ndarray
    onehot: np.ndarray
    endpoint: int

    @property
    def n_visits(self) -> int:
        return int(self.change.shape[1])

    @property
    def n_active(self) -> int:
        return int(self.onehot.shape[1])

    @property
    def n_patients_analysed(self) -> int:
        return int(self.mask.any(axis=1).sum())

    @property
    def n_params(self) -> int:
        """Mean-model parameters: T control means, K × T effects, T baseline slopes."""
        return self.n_visits * (2 + self.n_active)

    def effect_column(self, k: int) -> int:
        """Column of the mean-model design holding active arm k's effect at the endpoint."""
        return self.n_visits + k * self.n_visits + self.endpoint

    def design_rows(self, patient: np.ndarray, visit: np.ndarray) -> np.ndarray:
        """Mean-model design rows for cells (patient, visit): [visit dummies, −arm×visit, baseline×visit]."""
        T, K = self.n_visits, self.n_active
        X = np.zeros((patient.size, T * (2 + K)))
        rows = np.arange(patient.size)
        X[rows, visit] = 1.0
        for k in range(K):
            X[rows, T + k * T + visit] = -self.onehot[patient, k]
        X[rows, T + K * T + visit] = self.baseline_c[patient]
        return X


def longitudinal_arrays(data: TrialData) -> LongitudinalArrays:
    panss = np.asarray(data.panss, dtype=float)
    base = np.asarray(data.baseline, dtype=float)
    if panss.shape[1] < 2:
        raise ScenarioError("a longitudinal analysis needs at least one post-baseline visit")
    if not 1 <= int(data.endpoint_visit) < panss.shape[1]:
        raise ScenarioError(f"endpoint_visit {data.endpoint_visit} is not a post-baseline visit")
    change = panss[:, 1:] - base[:, None]
    mask = np.isfinite(change)
    any_obs = mask.any(axis=1)
    centre = float(base[any_obs].mean()) if any_obs.any() else 0.0
    return LongitudinalArrays(
        change=np.where(mask, change, 0.0),
        mask=mask,
        baseline_c=np.where(any_obs, base - centre, 0.0),
        onehot=active_onehot(data),
        endpoint=int(data.endpoint_visit) - 1,
    )


def responder_status(data: TrialData, threshold: float = 0.20) -> tuple[np.ndarray, np.ndarray]:
    """(responder, analysed) boolean arrays per patient.

    A responder has a reduction of at least ``threshold`` of the floor-adjusted baseline total,
    (baseline − endpoint) / (baseline − 30) ≥ threshold (PANSS items score 1–7, so 30 is the floor). Analysed
    = completers (endpoint observed) with baseline > 30.
    """
    base = np.asarray(data.baseline, dtype=float)
    end = np.asarray(data.panss, dtype=float)[:, data.endpoint_visit]
    analysed = np.isfinite(end) & (base > 30.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (base - end) / (base - 30.0)
    responder = analysed & (frac >= threshold - 1e-12)
    return responder, analysed


def responder_counts(data: TrialData, threshold: float = 0.20) -> tuple[np.ndarray, np.ndarray]:
    """(responders, analysed) counts per arm in the order [control, active arms...]."""
    layout = arm_layout(data)
    responder, analysed = responder_status(data, threshold)
    arm = np.asarray(data.arm)
    order = (layout.control, *layout.active)
    x = np.array([np.sum(responder & (arm == a)) for a in order], dtype=float)
    n = np.array([np.sum(analysed & (arm == a)) for a in order], dtype=float)
    return x, n
