"""Maths of sequential decisions: alpha spending, group-sequential efficacy boundaries, conditional power and
predictive probabilities of success. Pure numpy/scipy, deterministic, vectorised where stated.

Group-sequential quantities use the canonical joint distribution of the standardised statistics at information
fractions t_1 < … < t_K: (Z_1, …, Z_K) multivariate normal, corr(Z_j, Z_k) = √(t_j/t_k), E[Z_k] = drift·√t_k, where
drift is E[Z] at full information (Jennison & Turnbull 2000, *Group Sequential Methods with Applications to
Clinical Trials*, ch. 3 and 19). One-sided: a look crosses when Z_k ≥ c_k (positive effect = improvement).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaincinv, ndtr, ndtri, stdtr, stdtrit

SPENDING_KINDS = ("obrien_fleming", "pocock", "hsd")

_GRID_R = 64
"""Grid size parameter r of the recursive integration: 6r − 1 grid points before Simpson midpoints (J&T 2000 §19.2.1
use r = 16; the error falls as r⁻⁴). At r = 64 two-look crossing probabilities agree with the exact bivariate normal
(Owen's T) within 1e-9."""


def spending(kind: str, t: np.ndarray, alpha: float, gamma: float | None = None) -> np.ndarray:
    """Cumulative one-sided type I error α(t) spent at information fractions ``t`` ∈ (0, 1] (Lan & DeMets 1983;
    Hwang, Shih & DeCani 1990). α(1) = α.

    - ``obrien_fleming``: α(t) = 2·(1 − Φ(z_{1−α/2}/√t));
    - ``pocock``: α(t) = α·ln(1 + (e − 1)·t);
    - ``hsd`` (parameter ``gamma`` = γ): α(t) = α·(1 − e^{−γt})/(1 − e^{−γ}), α·t when γ = 0. γ = −4 is close to
      O'Brien–Fleming, γ = 1 close to Pocock.
    """
    if kind not in SPENDING_KINDS:
        raise ValueError(f"spending kind {kind!r} is not one of {', '.join(SPENDING_KINDS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha = {alpha!r} must lie in (0, 1)")
    t = np.asarray(t, dtype=float)
    if not np.all((t > 0.0) & (t <= 1.0)):
        raise ValueError(f"information fractions must lie in (0, 1], got {t!r}")
    if kind == "hsd":
        if gamma is None or not np.isfinite(gamma):
            raise ValueError("the Hwang–Shih–DeCani spending function needs a finite gamma")
        if gamma == 0.0:
            return alpha * t
        if gamma > 0.0:
            return alpha * np.expm1(-gamma * t) / np.expm1(-gamma)
        return alpha * np.exp(-gamma * (t - 1.0)) * np.expm1(gamma * t) / np.expm1(gamma)  # no overflow for γ ≪ 0
    if gamma is not None:
        raise ValueError(f"gamma applies only to kind 'hsd', not {kind!r}")
    if kind == "obrien_fleming":
        return 2.0 * ndtr(ndtri(alpha / 2.0) / np.sqrt(t))
    return alpha * np.log1p((np.e - 1.0) * t)


def _check_fractions(fractions: np.ndarray) -> np.ndarray:
    t = np.asarray(fractions, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"information fractions must be a non-empty 1-d sequence, got {fractions!r}")
    if not (np.all((t > 0.0) & (t <= 1.0)) and np.all(np.diff(t) > 0.0)):
        raise ValueError(f"information fractions must be strictly increasing in (0, 1], got {fractions!r}")
    return t


def _grid_offsets(r: int) -> np.ndarray:
    """The 6r − 1 grid points of J&T (2000) §19.2.1 around a zero mean: even within ±3 SD, then log-spaced out to
    ±(3 + 4 ln r)."""
    i = np.arange(1, 6 * r)
    return np.select(
        [i < r, i <= 5 * r],
        [-3.0 - 4.0 * np.log(r / np.minimum(i, r)), -3.0 + 3.0 * (i - r) / (2.0 * r)],
        3.0 + 4.0 * np.log(r / np.maximum(6 * r - i, 1)),
    )


_OFFSETS = _grid_offsets(_GRID_R)


def _simpson_grid(upper: float, mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and composite-Simpson weights covering the continuation region (−∞, ``upper``) of a statistic with
    mean ``mean`` (unit variance); empty when the region holds no probability worth integrating."""
    nodes = mean + _OFFSETS
    if upper < nodes[-1]:
        nodes = np.append(nodes[nodes < upper], upper)
    if nodes.size < 2:
        return np.empty(0), np.empty(0)
    width = np.diff(nodes)
    points = np.empty(2 * nodes.size - 1)
    points[0::2] = nodes
    points[1::2] = nodes[:-1] + width / 2.0
    weights = np.zeros_like(points)
    weights[0:-1:2] += width / 6.0
    weights[2::2] += width / 6.0
    weights[1::2] = 4.0 * width / 6.0
    return points, weights


class _Recursion:
    """Sub-density of Z_k on the continuation region of looks 1..k, on a Simpson grid (Armitage, McPherson & Rowe
    1969; J&T 2000 ch. 19). Call :meth:`crossing` for the probability of first crossing a candidate boundary at
    the next look, then :meth:`advance` with the chosen boundary."""

    def __init__(self, fractions: np.ndarray, drift: float):
        self.t = fractions
        self.drift = drift
        self.look = -1  # index of the look whose continuation density is held
        self.points = self.weighted = np.empty(0)

    def _transition(self) -> tuple[np.ndarray, float]:
        """Mean (per grid point) and SD of Z at the next look given Z at the current look."""
        t_now, t_next = self.t[self.look], self.t[self.look + 1]
        step = t_next - t_now
        mean = (self.points * np.sqrt(t_now) + self.drift * step) / np.sqrt(t_next)
        return mean, np.sqrt(step / t_next)

    def crossing(self, boundary: float) -> float:
        """P(continue at every look so far, Z_next ≥ boundary)."""
        if self.look < 0:
            return float(ndtr(self.drift * np.sqrt(self.t[0]) - boundary))
        mean, sd = self._transition()
        return float(self.weighted @ ndtr((mean - boundary) / sd))

    def advance(self, boundary: float) -> None:
        centre = self.drift * np.sqrt(self.t[self.look + 1])
        points, weights = _simpson_grid(boundary, centre)
        if self.look < 0:
            density = np.exp(-0.5 * (points - centre) ** 2) / np.sqrt(2.0 * np.pi)
        else:
            mean, sd = self._transition()
            kernel = np.exp(-0.5 * ((points[:, None] - mean[None, :]) / sd) ** 2) / (sd * np.sqrt(2.0 * np.pi))
            density = kernel @ self.weighted
        self.points, self.weighted = points, weights * density
        self.look += 1


def crossing_probabilities(boundaries: np.ndarray, fractions: np.ndarray, drift: float = 0.0) -> np.ndarray:
    """Probability that the first look with Z_k ≥ c_k is look k, for each k, when E[Z_k] = drift·√t_k.

    ``boundaries`` c_1..c_K (+inf: no stopping at that look), ``fractions`` t_1 < … < t_K in (0, 1], ``drift`` =
    E[Z] at full information (e.g. δ/SE(δ̂) at the final analysis). Exact up to the quadrature error of the
    recursive integration (≈ 1e-9 in probability). Sum = probability of stopping for efficacy at any look.
    """
    t = _check_fractions(fractions)
    c = np.asarray(boundaries, dtype=float)
    if c.shape != t.shape:
        raise ValueError(f"{c.size} boundaries for {t.size} information fractions")
    if np.any(np.isnan(c) | (c == -np.inf)):
        raise ValueError(f"boundaries must be finite or +inf, got {boundaries!r}")
    if not np.isfinite(drift):
        raise ValueError(f"drift must be finite, got {drift!r}")
    recursion = _Recursion(t, float(drift))
    probabilities = np.empty(t.size)
    for k, boundary in enumerate(c):
        probabilities[k] = recursion.crossing(boundary)
        if k + 1 < t.size:
            recursion.advance(boundary)
    return probabilities


def efficacy_boundaries(
    fractions: np.ndarray, alpha: float = 0.025, kind: str = "obrien_fleming", gamma: float | None = None
) -> np.ndarray:
    """One-sided upper critical values c_1..c_K (z scale) with P_0(first crossing at look k) = α(t_k) − α(t_{k−1})
    for the spending function ``kind`` (see :func:`spending`). Each c_k solves the exact crossing probability
    (recursive numerical integration) with Brent's method; +inf where nothing is spent.

    Reference (R): ``rpact::getDesignGroupSequential(typeOfDesign = "asOF", informationRates = c(1/3, 2/3, 1),
    alpha = 0.025, sided = 1)$criticalValues`` = 3.710, 2.511, 1.993 (``"asP"``; ``"asHSD"`` with ``gammaA``).
    """
    from scipy.optimize import brentq

    t = _check_fractions(fractions)
    spent = np.diff(spending(kind, t, alpha, gamma), prepend=0.0)
    recursion = _Recursion(t, 0.0)
    boundaries = np.full(t.size, np.inf)
    for k, target in enumerate(spent):
        if target > 0.0:
            upper = 1.0 - ndtri(target)  # P(Z_k ≥ upper) < target; crossing(−10) ≈ 1 − α(t_{k−1}) > target
            boundaries[k] = brentq(
                lambda c, goal: recursion.crossing(c) - goal, -10.0, upper, args=(target,), xtol=1e-12
            )
        if k + 1 < t.size:
            recursion.advance(boundaries[k])
    return boundaries


def conditional_power(
    z: np.ndarray, fraction: np.ndarray, final_critical: np.ndarray, drift: np.ndarray | None = None
) -> np.ndarray:
    """P(Z(1) ≥ ``final_critical`` | Z(t) = ``z``) at information fraction t = ``fraction`` (vectorised, broadcast).

    B-value formulation (Lan & Wittes 1988; Lachin 2005): B(t) = Z(t)√t,
    CP = 1 − Φ((c − B(t) − θ(1 − t))/√(1 − t)), with θ = ``drift`` = E[Z(1)] under the design alternative, or the
    current trend θ = B(t)/t when ``drift`` is None. Ignores any interim boundaries between t and 1 (the chance of
    stopping earlier is not removed). At t = 1 it is 1[z ≥ c].
    """
    z = np.asarray(z, dtype=float)
    t = np.asarray(fraction, dtype=float)
    if not np.all((t > 0.0) & (t <= 1.0)):
        raise ValueError(f"information fraction must lie in (0, 1], got {fraction!r}")
    b_value = z * np.sqrt(t)
    theta = b_value / t if drift is None else np.asarray(drift, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        standardised = (final_critical - b_value - theta * (1.0 - t)) / np.sqrt(1.0 - t)
    return np.where(t < 1.0, ndtr(-standardised), (z >= final_critical).astype(float))


def _check_threshold(threshold: np.ndarray) -> np.ndarray:
    threshold = np.asarray(threshold, dtype=float)
    if not np.all((threshold > 0.0) & (threshold < 1.0)):
        raise ValueError(f"posterior probability threshold must lie in (0, 1), got {threshold!r}")
    return threshold


def predictive_probability_normal(
    mean: np.ndarray, sd: np.ndarray, future_sd: np.ndarray, margin: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """Predictive probability that the final analysis succeeds — P(effect > ``margin`` | final data) ≥
    ``threshold`` — in the conjugate normal model with known variance (vectorised, broadcast). Units: PANSS points.

    Current posterior θ ~ N(m = ``mean``, v = ``sd``²); the patients still to come estimate θ by θ̂_f ~ N(θ, v_f =
    ``future_sd``²), with future_sd = σ·√(1/n_arm + 1/n_control) over the future patients. Final posterior:
    1/v_fin = 1/v + 1/v_f, m_fin = v_fin(m/v + θ̂_f/v_f); success iff m_fin ≥ margin + z_threshold·√v_fin. Under the
    posterior predictive θ̂_f ~ N(m, v + v_f), so (Spiegelhalter, Freedman & Blackburn 1986)

        PPoS = Φ((m − margin − z_threshold·√v_fin) / ((v_fin/v_f)·√(v + v_f))).

    Limits: future_sd = inf (no patients to come) gives 1[current rule met]; future_sd = 0 (infinitely many) gives
    the current P(θ > margin); sd = inf (no information yet, flat prior) gives 1/2; sd = 0 gives 1[m ≥ margin].
    """
    mean, sd, future_sd, margin = (np.asarray(x, dtype=float) for x in (mean, sd, future_sd, margin))
    threshold = _check_threshold(threshold)
    if np.any(sd < 0.0) or np.any(future_sd < 0.0):
        raise ValueError("sd and future_sd must be non-negative (inf allowed; NaN gives NaN)")
    with np.errstate(divide="ignore", invalid="ignore"):
        final_sd = 1.0 / np.sqrt(1.0 / sd**2 + 1.0 / future_sd**2)
        gap = mean - margin - ndtri(threshold) * final_sd
        # 1/denominator = √(v + v_f)/v = √(1 + (future_sd/sd)²)/sd
        inverse_spread = np.where(np.isinf(future_sd) | (sd == 0.0), np.inf, np.hypot(1.0, future_sd / sd) / sd)
        return np.where(np.isinf(inverse_spread), (gap >= 0.0).astype(float), ndtr(gap * inverse_spread))


def predictive_probability_nig(
    loc: np.ndarray,
    scale: np.ndarray,
    df: np.ndarray,
    residual_sd: np.ndarray,
    n_future_arm: np.ndarray,
    n_future_control: np.ndarray,
    margin: np.ndarray,
    threshold: np.ndarray,
) -> np.ndarray:
    """Predictive probability that the final analysis succeeds — P(effect > ``margin`` | final data) ≥
    ``threshold`` — when the current posterior is the conjugate normal–inverse-gamma one of the engine's ANCOVA
    (vectorised, broadcast over trials and comparisons). Units: PANSS points.

    **Current posterior.** σ² ~ IG(a, b), θ | σ² ~ N(``loc``, κσ²): the effect θ is Student-t(``df`` = 2a, loc,
    ``scale``) with scale² = κ·b/a. ``residual_sd`` = √(b/a), the posterior scale of the residual SD σ (with flat
    priors the residual SD estimate), separates κ = (scale/residual_sd)² from b = a·residual_sd².

    **Future data** (this comparison's ``n_future_arm`` and ``n_future_control`` patients): changes, adjusted for
    baseline with the slope treated as known, independent N(μ_f + θ·[arm], σ²), with their own intercept μ_f (flat
    prior). Sufficient statistics: the contrast d ~ N(θ, qσ²), q = 1/n_arm + 1/n_control, and the within-group
    residual sum of squares R ~ σ²χ²_ν, ν = n_arm + n_control − 2 (a group without future patients has no mean to
    fit; with one group empty d does not exist, P below is Beta(a, ν/2) and C = 0).

    **Final rule.** Final posterior: κ_fin = κq/(κ + q), m_fin = (q·loc + κ·d)/(κ + q), a_fin = a + (ν + 1)/2,
    b_fin = b + R/2 + (d − loc)²/(2(κ + q)); θ is Student-t(2a_fin, m_fin, √(κ_fin·b_fin/a_fin)); success iff
    T = (m_fin − margin)/√(κ_fin·b_fin/a_fin) ≥ τ = t⁻¹_{2a_fin}(threshold).

    **Exact reduction.** Under the posterior predictive W = 2b/σ² ~ χ²_{2a}, Z = (d − loc)/(σ√(κ + q)) ~ N(0, 1)
    and R/σ² ~ χ²_ν are independent, and T ≥ τ ⇔ G·√P + C·√(1 − P)·Y ≥ H with P = W/(W + Z² + R/σ²) ~
    Beta(a, (ν + 1)/2), Y = Z/√(Z² + R/σ²) independent of P, Y·√ν/√(1 − Y²) ~ t_ν, G = (loc − margin)/√(2b),
    C = κ/√(κ + q), H = τ·√(κ_fin/(2a_fin)). The probability over Y is a t_ν CDF; the expectation over P is split
    at the roots in √P of (H − G√P)² = C²(1 − P), where the success set in Y becomes empty or total: the outer
    pieces are regularised incomplete beta functions, the middle one a tanh–sinh quadrature in the Beta
    probability scale (absolute error < 1e-10).

    **Approximations** (of the engine's final ANCOVA, not of the integral): a separate intercept for the future
    patients (the pooled ANCOVA has one: the same estimate when both stages have the same allocation ratio, one
    degree of freedom more), the baseline slope known for the future patients, and in a multi-arm trial the future
    patients of the other arms ignored (they would add residual degrees of freedom). As df → ∞ this tends to
    :func:`predictive_probability_normal` with sd = scale and future_sd = residual_sd·√q.

    Patient numbers may be fractional (expected future completers): the formulas hold for real ν, floored at 0.
    NaN where an input is NaN or infinite (e.g. an invalid posterior in a batch).
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (loc, scale, df, residual_sd, n_future_arm, n_future_control, margin)),
        _check_threshold(threshold),
    )
    loc, scale, df, sigma, n_arm, n_control, margin, threshold = arrays
    for value, name in [(scale, "scale"), (df, "df"), (sigma, "residual_sd")]:
        if np.any(value <= 0.0):
            raise ValueError(f"{name} must be positive, got {value!r}")
    for value, name in [(n_arm, "n_future_arm"), (n_control, "n_future_control")]:
        if np.any(value < 0.0):
            raise ValueError(f"{name} must be non-negative, got {value!r}")
    undefined = ~np.isfinite(loc + scale + df + sigma + n_arm + n_control + margin)
    loc, scale, df, sigma, n_arm, n_control, margin = (
        np.where(undefined, 1.0, x) for x in (loc, scale, df, sigma, n_arm, n_control, margin)
    )

    has_arm, has_control = n_arm > 0, n_control > 0
    contrast = has_arm & has_control
    nu = np.maximum(n_arm + n_control - has_arm - has_control, 0.0)
    with np.errstate(divide="ignore"):
        q = np.where(contrast, 1.0 / n_arm + 1.0 / n_control, np.inf)
    kappa = (scale / sigma) ** 2
    df_final = df + nu + contrast
    big_g = (loc - margin) / (sigma * np.sqrt(df))
    big_c = kappa / np.sqrt(kappa + q)
    big_h = stdtrit(df_final, threshold) * np.sqrt(1.0 / (1.0 / kappa + 1.0 / q) / df_final)
    shape1, shape2 = df / 2.0, (nu + contrast) / 2.0  # P ~ Beta(shape1, shape2); shape2 = 0: no future data, P = 1

    # Y-success set is empty (G√P − H ≤ −C√(1 − P)) or total (≥ C√(1 − P)) outside [low, high] in √P.
    norm2 = big_g**2 + big_c**2
    spread2 = norm2 - big_h**2
    has_roots = (spread2 >= 0.0) & (norm2 > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.where(has_roots, big_g * big_h / norm2, 1.0)
        half_width = np.where(has_roots, big_c * np.sqrt(np.maximum(spread2, 0.0)) / norm2, 0.0)
    low = np.clip(centre - half_width, 0.0, 1.0)
    high = np.clip(centre + half_width, low, 1.0)
    with np.errstate(invalid="ignore"):
        u_low, u_high = betainc(shape1, shape2, low**2), betainc(shape1, shape2, high**2)
    outer = (big_h < 0.0) * u_low + (big_h < big_g) * (1.0 - u_high)

    middle = np.where(nu == 0, 0.5 * (u_high - u_low), 0.0)  # ν = 0: Y = ±1 with probability 1/2 each
    need = (big_c > 0.0) & (nu > 0) & (u_high > u_low)
    if np.any(need):
        from scipy.integrate import tanhsinh

        result = tanhsinh(
            _success_given_p_quantile,
            u_low[need],
            u_high[need],
            args=(shape1[need], shape2[need], big_g[need], big_c[need], big_h[need], nu[need]),
            atol=1e-11,
            rtol=0.0,
        )
        middle[need] = result.integral
    success = np.where(shape2 > 0.0, outer + middle, (big_g >= big_h).astype(float))
    return np.where(undefined, np.nan, success)


def _success_given_p_quantile(u, shape1, shape2, big_g, big_c, big_h, nu):
    """P(G√P + C√(1 − P)·Y ≥ H | P = u-quantile of Beta(shape1, shape2)), Y·√ν/√(1 − Y²) ~ t_ν."""
    p = betaincinv(shape1, shape2, u)
    gap = big_g * np.sqrt(p) - big_h
    spread2 = big_c**2 * (1.0 - p) - gap**2
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = stdtr(nu, np.sqrt(nu) * gap / np.sqrt(spread2))
    return np.where(spread2 > 0.0, inside, (gap > 0.0).astype(float))


def predictive_probability_draws(
    effect_draws: np.ndarray,
    sigma_draws: np.ndarray,
    n_future_arm: np.ndarray,
    n_future_control: np.ndarray,
    current_mean: np.ndarray,
    current_sd: np.ndarray,
    margin: np.ndarray,
    threshold: np.ndarray,
) -> np.ndarray | float:
    """Predictive probability of final success from posterior draws, for engines without a closed form (NUTS,
    frequentist): the average over draws (θ_j, σ_j), along the last axis, of the probability that the final rule
    of :func:`predictive_probability_normal` is met. Units: PANSS points.

    For each draw the future contrast estimate is θ̂_f ~ N(θ_j, v_j = σ_j²(1/n_arm + 1/n_control)); it is combined
    with the current posterior approximated as N(``current_mean``, ``current_sd``²): 1/v_fin = 1/v + 1/v_j,
    m_fin = v_fin(m/v + θ̂_f/v_j); success iff m_fin ≥ margin + z_threshold·√v_fin. The probability over θ̂_f is
    taken in closed form (m_fin is normal given the draw) instead of simulating one θ̂_f per draw: the same
    expectation with a smaller Monte Carlo error and no random numbers. What remains is the Monte Carlo error of a
    mean over the (possibly autocorrelated) draws. No future patient in a group: 1[current rule met].
    The other arguments broadcast with the leading axes of the draws (e.g. trials × comparisons × draws).
    """
    theta = np.asarray(effect_draws, dtype=float)
    sigma = np.asarray(sigma_draws, dtype=float)
    if theta.shape != sigma.shape or theta.ndim == 0:
        raise ValueError(f"effect and sigma draws must have the same shape, got {theta.shape} and {sigma.shape}")
    if not np.all(sigma > 0.0):
        raise ValueError("sigma draws must be positive")
    n_arm, n_control, mean, sd, margin = (
        np.asarray(x, dtype=float)[..., None]
        for x in (n_future_arm, n_future_control, current_mean, current_sd, margin)
    )
    if not np.all(sd > 0.0):
        raise ValueError("current_sd must be positive (inf allowed)")
    if not np.all((n_arm >= 0.0) & (n_control >= 0.0)):
        raise ValueError("future patient numbers must be non-negative")
    z_threshold = ndtri(_check_threshold(threshold))[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        future_var = sigma**2 * (1.0 / n_arm + 1.0 / n_control)
        final_var = 1.0 / (1.0 / sd**2 + 1.0 / future_var)
        gap = final_var * (mean / sd**2 + theta / future_var) - margin - z_threshold * np.sqrt(final_var)
        success = np.where(np.isinf(future_var), gap >= 0.0, ndtr(gap * np.sqrt(future_var) / final_var))
    return np.mean(success, axis=-1)
