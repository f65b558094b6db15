"""Sequential-decision maths against closed forms, rpact reference values and Monte Carlo (fixed seeds, 3.5–4 MCSE).

Reference values computed once with R 4.2 / rpact 3.3.4 and hard-coded; no test needs R.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import betainc, ndtr, ndtri, owens_t, stdtr, stdtrit

from trialsim.inference.sequential import (
    conditional_power,
    crossing_probabilities,
    efficacy_boundaries,
    predictive_probability_draws,
    predictive_probability_nig,
    predictive_probability_normal,
    spending,
)

EQUAL = (1 / 3, 2 / 3, 1.0)
UNEQUAL = (0.25, 0.6, 1.0)

# rpact: for (rates in list(c(1/3, 2/3, 1), c(0.25, 0.6, 1))) for (spec in list(list("asOF", 1), list("asP", 1),
#   list("asHSD", -4), list("asHSD", 1))) print(getDesignGroupSequential(typeOfDesign = spec[[1]],
#   gammaA = spec[[2]], informationRates = rates, alpha = 0.025, sided = 1)$criticalValues, digits = 11)
RPACT_BOUNDARIES = {
    (EQUAL, "obrien_fleming", None): (3.7103028733, 2.5114274845, 1.9930474833),
    (EQUAL, "pocock", None): (2.2794282389, 2.2949111387, 2.2959395871),
    (EQUAL, "hsd", -4.0): (3.0107394854, 2.5465305522, 1.9992263541),
    (EQUAL, "hsd", 1.0): (2.2831413559, 2.2844412550, 2.3012553677),
    (UNEQUAL, "obrien_fleming", None): (4.3326336460, 2.6688687578, 1.9809763357),
    (UNEQUAL, "pocock", None): (2.3683277035, 2.2920871302, 2.2670424059),
    (UNEQUAL, "hsd", -4.0): (3.1553730327, 2.6432125196, 1.9917233810),
    (UNEQUAL, "hsd", 1.0): (2.3761025272, 2.2809044793, 2.2703809962),
}


def test_obrien_fleming_boundaries_to_three_decimals():
    """rpact: getDesignGroupSequential(typeOfDesign = "asOF", informationRates = c(1/3, 2/3, 1), alpha = 0.025,
    sided = 1)$criticalValues = 3.710, 2.511, 1.993."""
    np.testing.assert_array_equal(np.round(efficacy_boundaries(EQUAL), 3), [3.710, 2.511, 1.993])


@pytest.mark.parametrize(("fractions", "kind", "gamma"), list(RPACT_BOUNDARIES))
def test_boundaries_match_rpact(fractions, kind, gamma):
    """Every spending family at equal and unequal fractions, within 1e-7 of rpact (R code above the table)."""
    expected = RPACT_BOUNDARIES[(fractions, kind, gamma)]
    np.testing.assert_allclose(efficacy_boundaries(fractions, 0.025, kind, gamma), expected, rtol=0, atol=1e-7)


def test_spending_functions_closed_forms():
    """α(t) at t = 0.6, α = 0.025: O'Brien–Fleming 2(1 − Φ(z_{0.9875}/√0.6)) = 0.00380806 (rpact asOF alphaSpent),
    Pocock α·ln(1 + 0.6(e − 1)), HSD α(1 − e^{−γ·0.6})/(1 − e^{−γ}); α(1) = α for all; HSD γ → 0 is α·t."""
    t = np.array([0.6, 1.0])
    assert spending("obrien_fleming", t, 0.025)[0] == pytest.approx(0.00380806324894, abs=1e-9)
    assert spending("pocock", t, 0.025)[0] == pytest.approx(0.025 * np.log(1 + 0.6 * (np.e - 1)), rel=1e-12)
    for gamma in (-4.0, 1.0):
        hsd = 0.025 * (1 - np.exp(-gamma * 0.6)) / (1 - np.exp(-gamma))
        assert spending("hsd", t, 0.025, gamma)[0] == pytest.approx(hsd, rel=1e-12)
    np.testing.assert_allclose(spending("hsd", t, 0.025, 0.0), 0.025 * t)
    np.testing.assert_allclose(spending("hsd", t, 0.025, 1e-9), 0.025 * t, rtol=1e-8)
    np.testing.assert_allclose(spending("hsd", t, 0.025, -1000.0), [0.025 * np.exp(-400.0), 0.025])  # no overflow
    for kind, gamma in [("obrien_fleming", None), ("pocock", None), ("hsd", 3.0)]:
        assert spending(kind, np.array([1.0]), 0.025, gamma)[0] == pytest.approx(0.025, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: spending("linear", [0.5], 0.025), "not one of"),
        (lambda: spending("pocock", [0.5], 1.5), "alpha"),
        (lambda: spending("pocock", [0.0, 0.5], 0.025), r"\(0, 1\]"),
        (lambda: spending("pocock", [1.2], 0.025), r"\(0, 1\]"),
        (lambda: spending("hsd", [0.5], 0.025), "gamma"),
        (lambda: spending("pocock", [0.5], 0.025, gamma=1.0), "only to kind 'hsd'"),
        (lambda: efficacy_boundaries([0.5, 0.4, 1.0]), "strictly increasing"),
        (lambda: crossing_probabilities([2.0, 2.0], [0.5, 1.0, 1.0]), "strictly increasing"),
        (lambda: crossing_probabilities([2.0], [0.5, 1.0]), "1 boundaries for 2"),
        (lambda: crossing_probabilities([-np.inf, 2.0], [0.5, 1.0]), "finite or \\+inf"),
        (lambda: conditional_power(1.0, 0.0, 1.96), "fraction"),
        (lambda: predictive_probability_normal(1.0, 1.0, 1.0, 0.0, 1.0), "threshold"),
        (lambda: predictive_probability_nig(1.0, 1.0, 10, 15.0, -1, 3, 0.0, 0.9), "non-negative"),
        (lambda: predictive_probability_nig(1.0, 0.0, 10, 15.0, 2, 3, 0.0, 0.9), "scale"),
        (lambda: predictive_probability_draws(np.zeros(3), np.ones(2), 1, 1, 0.0, 1.0, 0.0, 0.9), "same shape"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_nothing_spent_gives_infinite_boundary():
    """O'Brien–Fleming spends 2(1 − Φ(2.24/√0.001)) = 0 (underflow) at t = 0.001: no stopping there, and the later
    looks still spend α in total."""
    boundaries = efficacy_boundaries([0.001, 0.5, 1.0])
    assert boundaries[0] == np.inf
    assert crossing_probabilities(boundaries, [0.001, 0.5, 1.0]).sum() == pytest.approx(0.025, abs=1e-9)


@pytest.mark.parametrize(("kind", "gamma"), [("obrien_fleming", None), ("pocock", None), ("hsd", -4.0)])
@pytest.mark.parametrize("fractions", [EQUAL, UNEQUAL, (0.1, 0.2, 0.45, 0.7, 0.85, 1.0)])
def test_crossing_probabilities_under_null_spend_alpha(kind, gamma, fractions):
    """Σ_k P_0(first crossing at k) = α(1) = 0.025 to 1e-6, and each look spends α(t_k) − α(t_{k−1})."""
    boundaries = efficacy_boundaries(fractions, 0.025, kind, gamma)
    probabilities = crossing_probabilities(boundaries, fractions)
    assert probabilities.sum() == pytest.approx(0.025, abs=1e-6)
    spent = np.diff(spending(kind, np.array(fractions), 0.025, gamma), prepend=0.0)
    np.testing.assert_allclose(probabilities, spent, rtol=0, atol=1e-9)


def _bivariate_normal_cdf(h: float, k: float, rho: float) -> float:
    """P(X < h, Y < k), standard bivariate normal, correlation ρ, via Owen's T (Owen 1956; h, k ≠ 0)."""
    root = np.sqrt(1 - rho**2)
    correction = 0.0 if h * k > 0 or (h * k == 0 and h + k >= 0) else 0.5
    return (
        0.5 * (ndtr(h) + ndtr(k))
        - owens_t(h, (k - rho * h) / (h * root))
        - owens_t(k, (h - rho * k) / (k * root))
        - correction
    )


@pytest.mark.parametrize("drift", [-1.0, 0.0, 2.2, 3.5, 6.0])
@pytest.mark.parametrize(("c1", "c2", "t1"), [(2.8, 2.0, 0.4), (3.5, 1.96, 0.2), (2.5, 1.0, 0.3)])
def test_two_look_crossing_is_exact(drift, c1, c2, t1):
    """Two looks: P(Z_1 < c_1, Z_2 ≥ c_2) = Φ(c_1 − μ_1) − Φ₂(c_1 − μ_1, c_2 − μ_2; √t_1), μ_k = drift·√t_k,
    with the bivariate normal CDF in closed form (Owen's T); agreement within 2e-9."""
    t = np.array([t1, 1.0])
    h, k = np.array([c1, c2]) - drift * np.sqrt(t)
    exact = ndtr(h) - _bivariate_normal_cdf(h, k, np.sqrt(t1))
    probabilities = crossing_probabilities([c1, c2], t, drift)
    assert probabilities[0] == pytest.approx(ndtr(-h), abs=1e-15)
    assert probabilities[1] == pytest.approx(exact, abs=2e-9)


def test_crossing_probabilities_match_rpact_under_drift():
    """rpact: d <- getDesignGroupSequential(typeOfDesign = "asOF", informationRates = c(0.25, 0.6, 1),
    alpha = 0.025, sided = 1); p <- getGroupSequentialProbabilities(rbind(rep(-Inf, 3), d$criticalValues -
    drift * sqrt(c(0.25, 0.6, 1))), c(0.25, 0.6, 1)); p[3, ] - p[2, ]  (drift = 1.5 and 2.8)."""
    boundaries = efficacy_boundaries(UNEQUAL)
    expected = {
        1.5: (0.000170073746, 0.065756878356, 0.253829469182),
        2.8: (0.001680501158, 0.306893812719, 0.487623750427),
    }
    for drift, values in expected.items():
        np.testing.assert_allclose(crossing_probabilities(boundaries, UNEQUAL, drift), values, rtol=0, atol=1e-8)


@pytest.mark.statistical
@pytest.mark.parametrize("drift", [1.0, 2.8])
def test_crossing_probabilities_against_simulation(drift):
    """10⁶ draws of the canonical joint distribution (Z_k = S_k/√t_k, S a Brownian motion with drift in
    information time); the simulated first-crossing frequency at each look (and of not crossing) is within 3.5 MCSE
    = 3.5·√(p(1 − p)/n) of the exact value."""
    fractions = np.array([0.2, 0.5, 0.75, 1.0])
    boundaries = efficacy_boundaries(fractions, 0.025, "hsd", -2.0)
    exact = crossing_probabilities(boundaries, fractions, drift)
    n = 1_000_000
    rng = np.random.default_rng(20240611)
    steps = np.diff(fractions, prepend=0.0)
    s = np.cumsum(rng.normal(drift * steps, np.sqrt(steps), (n, fractions.size)), axis=1)
    crossed = s / np.sqrt(fractions) >= boundaries
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), fractions.size)
    simulated = np.bincount(first, minlength=fractions.size + 1) / n
    exact = np.append(exact, 1 - exact.sum())
    mcse = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(simulated - exact) <= 3.5 * mcse), (simulated, exact, mcse)


@pytest.mark.parametrize(("z", "t", "c", "drift"), [(1.2, 0.5, 1.96, None), (0.3, 0.3, 2.0, 2.8), (2.5, 0.8, 2.0, 0.0)])
def test_conditional_power_against_bivariate_normal(z, t, c, drift):
    """(Z(t), Z(1)) is bivariate normal with means θ√t, θ, unit variances, correlation √t (θ = drift, or the current
    trend z/√t). CP = ∫_c^∞ f(z, y) dy / f_{Z(t)}(z), integrated numerically from the joint density."""
    theta = z / np.sqrt(t) if drift is None else drift
    joint = stats.multivariate_normal([theta * np.sqrt(t), theta], [[1.0, np.sqrt(t)], [np.sqrt(t), 1.0]])
    tail, _ = integrate.quad(lambda y: joint.pdf([z, y]), c, np.inf, epsabs=1e-13)
    expected = tail / stats.norm.pdf(z, theta * np.sqrt(t))
    assert conditional_power(z, t, c, drift) == pytest.approx(expected, abs=1e-9)


def test_conditional_power_vectorised_and_final_look():
    z = np.array([[0.0, 1.0, 2.0]])
    t = np.array([[0.25], [0.5]])
    cp = conditional_power(z, t, 1.96, drift=2.8)
    assert cp.shape == (2, 3)
    assert cp[1, 2] == pytest.approx(conditional_power(2.0, 0.5, 1.96, 2.8))
    assert np.all(np.diff(cp, axis=1) > 0)
    np.testing.assert_array_equal(conditional_power(np.array([1.9, 1.96, 2.1]), 1.0, 1.96), [0.0, 1.0, 1.0])


@pytest.mark.statistical
@pytest.mark.parametrize(
    ("mean", "sd", "future_sd", "margin", "threshold"),
    [(3.0, 2.0, 2.4, 0.0, 0.975), (5.5, 1.5, 3.0, 1.0, 0.9), (-1.0, 2.5, 1.0, 0.0, 0.975), (1.0, 3.0, 1.5, 0.0, 0.4)],
)
def test_predictive_probability_normal_against_simulation(mean, sd, future_sd, margin, threshold):
    """Draw θ ~ N(m, sd²), θ̂_f ~ N(θ, future_sd²), apply the final rule m_fin ≥ margin + z_thr·√v_fin: the
    success frequency of 400,000 draws is within 4 MCSE of the closed form."""
    rng = np.random.default_rng(7)
    n = 400_000
    theta = rng.normal(mean, sd, n)
    estimate = rng.normal(theta, future_sd)
    final_var = 1 / (1 / sd**2 + 1 / future_sd**2)
    final_mean = final_var * (mean / sd**2 + estimate / future_sd**2)
    simulated = np.mean(final_mean >= margin + ndtri(threshold) * np.sqrt(final_var))
    exact = predictive_probability_normal(mean, sd, future_sd, margin, threshold)
    assert abs(simulated - exact) <= 4 * np.sqrt(exact * (1 - exact) / n) + 1e-12


def test_predictive_probability_normal_limits():
    """No patient to come: 1[current rule met]; infinitely many: current P(θ > margin) = Φ((m − margin)/sd);
    flat current posterior: 1/2; known effect (sd = 0): 1[m ≥ margin]."""
    met, unmet = (3.0, 1.0, np.inf, 0.0, 0.975), (1.5, 1.0, np.inf, 0.0, 0.975)
    assert predictive_probability_normal(*met) == 1.0 and predictive_probability_normal(*unmet) == 0.0
    assert predictive_probability_normal(1.5, 1.0, 0.0, 0.0, 0.975) == pytest.approx(ndtr(1.5), rel=1e-14)
    assert predictive_probability_normal(1.5, np.inf, 2.0, 0.0, 0.975) == 0.5
    assert predictive_probability_normal(0.2, 0.0, 2.0, 0.0, 0.975) == 1.0
    near = predictive_probability_normal(3.0, 1.0, np.array([1e-9, 1e9]), 0.0, 0.975)
    np.testing.assert_allclose(near, [ndtr(3.0), 1.0], atol=1e-6)


def _simulate_final_decisions(loc, scale, df, residual_sd, n_arm, n_control, margin, threshold, n, rng):
    """Brute force of the predictive in :func:`predictive_probability_nig`: draw σ² ~ IG(df/2, df·s²/2),
    θ ~ N(loc, κσ²) (κ = scale²/s²), the future group means ȳ_arm ~ N(μ_f + θ, σ²/n_arm), ȳ_control ~ N(μ_f,
    σ²/n_control) and the residual SS R ~ σ²χ²_{n−2}; update the NIG posterior of (θ, μ_f) by the generic conjugate
    regression formulas (prior precision diag(1/κ, 0), flat μ_f: Λ = Λ₀ + XᵀX, m = Λ⁻¹(Λ₀m₀ + Xᵀy),
    a' = a + (n − 1)/2, b' = b + (yᵀy + m₀ᵀΛ₀m₀ − mᵀΛm)/2) and apply P(θ > margin) = T_{2a'}(·) ≥ threshold.
    Returns the success indicators."""
    a = df / 2
    b = a * residual_sd**2
    kappa = (scale / residual_sd) ** 2
    sigma2 = b / rng.gamma(a, 1.0, n)
    theta = rng.normal(loc, np.sqrt(kappa * sigma2))
    y_arm = rng.normal(10.0 + theta, np.sqrt(sigma2 / n_arm))
    y_control = rng.normal(10.0, np.sqrt(sigma2 / n_control))
    rss = sigma2 * rng.chisquare(n_arm + n_control - 2, n) if n_arm + n_control > 2 else np.zeros(n)
    prior_precision, prior_mean = np.diag([1 / kappa, 0.0]), np.array([loc, 0.0])
    precision = prior_precision + np.array([[n_arm, n_arm], [n_arm, n_arm + n_control]])
    rhs = np.stack([n_arm * y_arm, n_arm * y_arm + n_control * y_control], axis=-1) + prior_precision @ prior_mean
    post_mean = np.linalg.solve(precision, rhs.T).T
    yty = rss + n_arm * y_arm**2 + n_control * y_control**2
    a_post = a + (n_arm + n_control - 1) / 2
    b_post = b + (yty + prior_mean @ prior_precision @ prior_mean - np.einsum("ki,ki->k", post_mean, rhs)) / 2
    post_scale = np.sqrt(b_post / a_post * np.linalg.inv(precision)[0, 0])
    return stdtr(2 * a_post, (post_mean[:, 0] - margin) / post_scale) >= threshold


NIG_CASES = [  # loc, scale, df, residual_sd, n_future_arm, n_future_control, margin, threshold
    (4.0, 2.5, 60, 15.0, 40, 40, 0.0, 0.975),  # mid
    (8.0, 2.0, 100, 15.0, 50, 50, 0.0, 0.975),  # near 1
    (-0.5, 2.5, 60, 15.0, 30, 30, 0.0, 0.975),  # near 0
    (1.0, 3.0, 8, 14.0, 10, 12, 0.0, 0.975),  # small df, near 0
    (3.0, 4.0, 5, 12.0, 3, 2, 1.0, 0.6),  # tiny df, tiny future
    (3.0, 2.0, 300, 15.0, 150, 100, 2.0, 0.8),  # large df, unequal allocation
    (2.0, 3.0, 20, 15.0, 200, 200, 0.0, 0.3),  # threshold below 1/2
    (6.0, 2.2, 4, 10.0, 1, 1, 0.0, 0.95),  # no future residual df (ν = 0)
    (2.0, 1.5, 30.5, 8.0, 7, 5, 1.0, 0.9),  # non-integer df
]


@pytest.mark.statistical
@pytest.mark.parametrize("case", NIG_CASES)
def test_predictive_probability_nig_against_brute_force(case):
    """Closed form + quadrature vs 200,000 brute-force draws of the same predictive (see the helper's docstring):
    within 4 MCSE, MCSE = √(p(1 − p)/n) at the exact p (plus 1/n for p at 0 or 1)."""
    n = 200_000
    simulated = _simulate_final_decisions(*case, n=n, rng=np.random.default_rng(11)).mean()
    exact = float(predictive_probability_nig(*case))
    assert abs(simulated - exact) <= 4 * np.sqrt(exact * (1 - exact) / n) + 1 / n, (simulated, exact)


@pytest.mark.parametrize(
    "case", [c for c in NIG_CASES if c[7] > 0.5 and c[4] + c[5] > 2] + [(2.5, 2.0, 40, 15.0, 24.9, 20.35, 0.0, 0.975)]
)
def test_predictive_probability_nig_against_contrast_integral(case):
    """Independent route, conditioning the other way round: the future contrast δ = d − loc is marginally
    t_{2a}(0, s·√(κ + q)); given δ, σ² ~ IG(a + 1/2, b + δ²/(2(κ + q))), so R/(R + 2b') ~ Beta(ν/2, a + 1/2) and
    success (threshold > 1/2) ⇔ L = m_fin − margin > 0 and R ≤ R_max(δ) = 2(L²/h − b) − δ²/(κ + q),
    h = τ²κ_fin/a_fin. PPoS = ∫ t-density(δ)·I_{R_max/(R_max + 2b')}(ν/2, a + 1/2) dδ over the δ-interval where
    R_max > 0, by adaptive quadrature (scipy.integrate.quad): agreement within 1e-9. The last case has fractional
    (expected) numbers of future patients."""
    loc, scale, df, s, n_arm, n_control, margin, threshold = case
    a, kappa, q, nu = df / 2, (scale / s) ** 2, 1 / n_arm + 1 / n_control, n_arm + n_control - 2
    b, a_final = a * s**2, a + (nu + 1) / 2
    h = stdtrit(2 * a_final, threshold) ** 2 * kappa * q / (kappa + q) / a_final
    gap0, weight, spread = loc - margin, kappa / (kappa + q), kappa + q

    def success_given(delta: float) -> float:
        gap = gap0 + weight * delta
        r_max = 2 * (gap**2 / h - b) - delta**2 / spread
        if gap <= 0 or r_max <= 0:
            return 0.0
        return betainc(nu / 2, a + 0.5, r_max / (r_max + 2 * b + delta**2 / spread))

    c2, c1, c0 = weight**2 - h / (2 * spread), 2 * gap0 * weight, gap0**2 - h * b  # R_max(δ)·h/2 = c2δ² + c1δ + c0
    discriminant = c1**2 - 4 * c2 * c0
    exact = predictive_probability_nig(*case)
    if discriminant <= 0:  # only when c2 < 0: R_max < 0 everywhere
        assert exact == 0.0
        return
    low, high = np.sort((-c1 + np.array([-1, 1]) * np.sqrt(discriminant)) / (2 * c2))
    if c2 > 0:  # L < 0 between the roots
        low, high = high, np.inf
    density = stats.t(2 * a, scale=s * np.sqrt(spread)).pdf
    value, _ = integrate.quad(lambda d: density(d) * success_given(d), low, high, epsabs=1e-13, epsrel=1e-12, limit=200)
    assert exact == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize(("loc", "margin", "threshold"), [(3.0, 0.5, 0.95), (1.0, 0.0, 0.975), (6.0, 2.0, 0.8)])
def test_predictive_probability_nig_tends_to_normal(loc, margin, threshold):
    """df → ∞ fixes σ at residual_sd: the NIG answer tends to the known-variance one with sd = scale and
    future_sd = residual_sd·√(1/n_arm + 1/n_control), the gap shrinking like 1/df."""
    scale, s, n_arm, n_control = 2.0, 15.0, 60, 50
    normal = predictive_probability_normal(loc, scale, s * np.sqrt(1 / n_arm + 1 / n_control), margin, threshold)
    gaps = [
        abs(predictive_probability_nig(loc, scale, df, s, n_arm, n_control, margin, threshold) - normal)
        for df in (1e3, 1e6)
    ]
    assert gaps[1] < 1e-5
    assert gaps[1] < gaps[0] / 100


def test_predictive_probability_nig_without_future_contrast():
    """No future patient: 1[current rule T_df((loc − margin)/scale) ≥ threshold]. Future patients in one group only:
    they inform σ² alone — the final posterior is t(df + ν, loc, scale·√((b + R/2)/b · a/a_fin)), checked against
    200,000 draws of σ² ~ IG(a, b), R ~ σ²χ²_ν (4 MCSE)."""
    loc, scale, df, s, margin, threshold = np.array([2.0, 5.0]), 2.0, 10.0, 12.0, 0.0, 0.975
    np.testing.assert_array_equal(predictive_probability_nig(loc, scale, df, s, 0, 0, margin, threshold), [0.0, 1.0])
    rng = np.random.default_rng(5)
    n, nu = 200_000, 7
    a, b = df / 2, df / 2 * s**2
    rss = b / rng.gamma(a, 1.0, n) * rng.chisquare(nu, n)
    final_scale = scale * np.sqrt((b + rss / 2) / b * a / (a + nu / 2))
    simulated = np.mean(stdtr(df + nu, (4.6 - margin) / final_scale) >= threshold)
    exact = predictive_probability_nig(4.6, scale, df, s, 0, nu + 1, margin, threshold)
    assert abs(simulated - exact) <= 4 * np.sqrt(exact * (1 - exact) / n)


def test_predictive_probabilities_propagate_nan():
    """An invalid posterior in a batch (NaN) gives NaN for that element only."""
    nig = predictive_probability_nig(np.array([3.0, np.nan]), np.array([2.0, np.nan]), 40, 15.0, 20, 20, 0.0, 0.975)
    assert np.isfinite(nig[0]) and np.isnan(nig[1])
    assert np.isnan(predictive_probability_normal(np.nan, 1.0, 1.0, 0.0, 0.975))


def test_predictive_probability_nig_broadcasts_over_trials_and_comparisons():
    rng = np.random.default_rng(2)
    loc = rng.normal(3.0, 2.0, (4, 3))
    n_arm = np.array([20, 25, 30])
    result = predictive_probability_nig(loc, 2.5, 50, 15.0, n_arm, 30, 0.0, 0.975)
    assert result.shape == (4, 3)
    for k, j in [(0, 0), (3, 2), (2, 1)]:
        assert result[k, j] == predictive_probability_nig(loc[k, j], 2.5, 50, 15.0, n_arm[j], 30, 0.0, 0.975)


@pytest.mark.statistical
def test_predictive_probability_draws_agrees_with_normal():
    """Draws θ_j from the exact normal posterior N(m, sd²) with σ_j = σ known: the per-draw success probabilities
    average to the closed form of predictive_probability_normal within 4 MCSE (SD of the per-draw values/√n)."""
    rng = np.random.default_rng(3)
    mean, sd, sigma, n_arm, n_control = 3.0, 2.0, 15.0, 40, 35
    theta = rng.normal(mean, sd, 100_000)
    per_draw = predictive_probability_draws(
        theta[:, None], np.full((theta.size, 1), sigma), n_arm, n_control, mean, sd, 0.0, 0.975
    )
    estimate = predictive_probability_draws(theta, np.full(theta.size, sigma), n_arm, n_control, mean, sd, 0.0, 0.975)
    assert estimate == pytest.approx(per_draw.mean(), rel=1e-12)
    exact = predictive_probability_normal(mean, sd, sigma * np.sqrt(1 / n_arm + 1 / n_control), 0.0, 0.975)
    assert abs(estimate - exact) <= 4 * per_draw.std() / np.sqrt(theta.size)


def test_predictive_probability_draws_shapes_and_no_future():
    rng = np.random.default_rng(4)
    theta = rng.normal(2.0, 1.0, (5, 2, 1000))
    sigma = np.full(theta.shape, 15.0)
    result = predictive_probability_draws(theta, sigma, np.array([30, 0]), 30, np.array([2.0, 2.5]), 1.0, 0.0, 0.975)
    assert result.shape == (5, 2)
    np.testing.assert_array_equal(result[:, 1], 1.0)  # no future arm patients; 2.5 − 1.96·1 ≥ 0: rule met now
