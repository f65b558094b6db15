"""Simulation-based calibration (Talts et al. 2018) of the NUTS models of :mod:`trialsim.inference.nuts`.

For each model kind (``ancova``, ``longitudinal`` with a random intercept, ``responder``) one
:class:`~trialsim.inference.nuts.NutsAnalysis` is built with PROPER, moderately informative priors
(:data:`SBC_PRIORS`). Each simulation then

1. draws every parameter of the model from exactly those priors — read from the analysis' own
   :class:`~trialsim.inference.nuts.PriorSpec`, so the generator cannot drift from the analysed prior;
2. generates one small trial (:class:`~trialsim.inference.data.TrialData`, 2 arms × ``n_per_arm`` patients, a
   little MCAR missingness) from the model's likelihood, in the parameterisation of the PyMC model;
3. fits it with NUTS (nutpie) and records the rank of the true effect among ``n_rank_draws`` posterior draws of
   the effect (the endpoint effect for ``longitudinal``, the log odds ratio for ``responder``).

If the sampler and the model code are right, the ranks are uniform on 0 … ``n_rank_draws``.

Generative models (arm a ∈ {0 = control, 1 = active}; PANSS change from baseline, negative = improvement):

``ancova`` (endpoint only; completers = endpoint observed, MCAR)
    σ² ~ InvGamma(shape, rate) (or σ ~ HalfNormal(scale)); effect | σ ~ N(m, sd·σ/σ_ref) (``prior_scaled_by_sigma``;
    N(m, sd) otherwise); intercept, slope ~ N(0, nuisance_sd);
    change_i = intercept − effect·a_i + slope·(baseline_i − mean baseline of completers) + σ ε_i.
``longitudinal`` (T post-baseline visits, each cell MCAR; random intercept)
    per visit t: control mean α_t ~ N(0, nuisance_sd), baseline slope γ_t ~ N(0, nuisance_sd), effect δ_t ~
    N(0, vague_sd) for t < T and δ_T ~ N(m, sd) at the endpoint (the model's prior: non-endpoint visit effects get
    the vague effect prior); σ, τ ~ HalfNormal(sigma_scale);
    change_it = α_t − δ_t·a_i + γ_t·(baseline_i − mean baseline of patients with ≥ 1 observed visit) + τ u_i + σ ε_it.
``responder`` (endpoint only; completers MCAR)
    control log-odds θ₀ ~ N(0, nuisance_sd); log odds ratio β ~ N(m, sd); responder_i ~ Bernoulli(logit⁻¹(θ₀ +
    β·a_i)); the endpoint PANSS is then written so that the floor-adjusted reduction (baseline − end)/(baseline − 30)
    is ≥ the responder threshold exactly for responders (drawn 0.02 or more away from the threshold).

Ranks among thinned draws: the posterior draws of all chains (chain-major) are thinned to ``n_rank_draws``
evenly spaced draws (stride ≈ chains·draws/``n_rank_draws`` ≈ 20 with the defaults), so that they are roughly
independent and the rank histogram is not made lumpy by autocorrelation (Talts et al. §5.1). ``n_rank_draws``
= 99 gives 100 possible ranks, which 10 or 20 equal-width chi-square bins (see
:func:`~trialsim.inference.sbc.uniformity_pvalue`) split into equal integer counts.

Seeds: simulation i uses ``SeedSequence(seed, spawn_key=(i,))``, whose two children seed the data generator
and the nutpie fit; so the data of simulation i do not depend on the analysis prior (a deliberately wrong prior
is analysed on the same data) nor on ``draws``/``tune``.

Runtime (measured, 2-core machine, one process): one compilation per kind (≈ 20 s ancova, 30–50 s
longitudinal, 10–35 s responder; cached per process by :class:`NutsAnalysis`, so an ``analysis_overrides`` run
reuses it), then ≈ 0.055 s (ancova), 0.3 s (random intercept) and 0.05 s (responder) per fit with
:data:`DEFAULT_SAMPLER`. Calibration measured with these settings (chi-square, 10 bins): 200 simulations,
seeds 0–3: p = 0.70/0.33/0.50/0.54 (ancova), 0.55/0.66/0.41/0.74 (responder); longitudinal seeds 0–2:
0.76/0.003/0.20, and 1000 simulations (seed 10): p = 0.95.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from trialsim.inference.data import TrialData
from trialsim.inference.sbc import uniformity_pvalue

KINDS: tuple[str, ...] = ("ancova", "longitudinal", "responder")

#: NutsAnalysis constructor arguments (the priors) of each calibrated model. Scales: PANSS points (ancova,
#: longitudinal), log-odds (responder). ANCOVA: the normal–inverse-gamma form, E σ² = 432/3 = 144 (σ ≈ 12),
#: effect prior sd 4·σ/12. Longitudinal: σ, τ ~ HalfNormal(10). The nuisance (intercept/visit means, baseline
#: slopes, control log-odds) priors are proper N(0, nuisance_sd) — and the generator draws from them too.
SBC_PRIORS: dict[str, dict[str, Any]] = {
    "ancova": dict(
        effect_prior=(2.0, 4.0),
        prior_scaled_by_sigma=True,
        sigma_ref=12.0,
        sigma_prior="inverse_gamma",
        sigma2_shape=4.0,
        sigma2_rate=432.0,
        nuisance_sd=8.0,
    ),
    "longitudinal": dict(
        residual="random_intercept",
        effect_prior=(2.0, 4.0),
        vague_sd=4.0,
        nuisance_sd=8.0,
        sigma_prior="halfnormal",
        sigma_scale=10.0,
    ),
    "responder": dict(effect_prior=(0.3, 0.8), nuisance_sd=1.5),
}

#: nutpie settings per kind: 2 chains × ``draws`` kept draws after ``tune`` warm-up draws. The whitened
#: parameterisation makes these posteriors nearly standard normal, so short runs mix well. Measured fraction of
#: fits with ``diagnostics_ok`` (R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergence): ≈ 99.5 % ancova and
#: responder, ≈ 93 % longitudinal (tail ESS of log τ when τ ≈ 0; 500 draws/300 tune gave only ≈ 63 %); no
#: divergences in any of ≈ 3 000 fits.
DEFAULT_SAMPLER: dict[str, dict[str, int]] = {
    "ancova": dict(draws=1000, tune=300, chains=2),
    "longitudinal": dict(draws=1000, tune=500, chains=2),
    "responder": dict(draws=1000, tune=300, chains=2),
}

BASELINE_MEAN, BASELINE_SD = 95.0, 15.0
ENDPOINT_WEEK = 6.0


@dataclass
class NutsSbcResult:
    """SBC output of one model kind.

    Attributes:
        kind: model kind.
        ranks: rank of the true effect among ``max_rank`` thinned posterior draws, per successful simulation.
        max_rank: number of thinned draws L (ranks take values 0 … L).
        truth: true effect per successful simulation.
        posterior_mean: posterior mean of the effect (all draws) per successful simulation.
        diagnostics_ok: the fit's ``diagnostics_ok`` flag per successful simulation (R-hat, ESS, divergences).
        divergences: post-warmup divergent transitions per successful simulation.
        failed: indices of simulations whose fit raised (excluded from ``ranks``; should be empty).
        seconds: wall time of the simulations (fits + data generation), excluding compilation.
        build_seconds: time to construct the analysis (compilation, unless cached).
    """

    kind: str
    ranks: np.ndarray
    max_rank: int
    truth: np.ndarray
    posterior_mean: np.ndarray
    diagnostics_ok: np.ndarray
    divergences: np.ndarray
    failed: list[int]
    seconds: float
    build_seconds: float

    def pvalue(self, bins: int = 10) -> float:
        """Chi-square p-value of the ranks against the discrete uniform (``bins`` equal-width bins)."""
        return uniformity_pvalue(self.ranks, self.max_rank, bins=bins)


# --------------------------------------------------------------------------------------------------
# prior-predictive trials
# --------------------------------------------------------------------------------------------------


def _check_proper(prior) -> None:
    if prior.nuisance_sd is None:
        raise ValueError("SBC needs a proper nuisance prior (nuisance_sd is None)")
    if prior.sigma == "jeffreys":
        raise ValueError("SBC needs a proper σ prior (sigma_prior='jeffreys' is improper)")
    if prior.sigma == "inverse_gamma" and not (prior.sigma2_shape > 0 and prior.sigma2_rate > 0):
        raise ValueError("SBC needs sigma2_shape > 0 and sigma2_rate > 0")
    for spec in prior.effect:
        if spec is not None and not np.isfinite(spec[1]):
            raise ValueError("SBC needs a proper effect prior (flat effect prior given)")


def _effect_mean_sd(prior) -> tuple[float, float]:
    spec = prior.effect[0]
    return (0.0, prior.vague_sd) if spec is None else (float(spec[0]), float(spec[1]))


def _draw_sigma(prior, rng: np.random.Generator) -> float:
    if prior.sigma == "inverse_gamma":
        return float(np.sqrt(prior.sigma2_rate / rng.gamma(prior.sigma2_shape)))
    return float(abs(rng.normal(0.0, prior.sigma_scale)))


def _trial(weeks: np.ndarray, arm: np.ndarray, baseline: np.ndarray, post: np.ndarray) -> TrialData:
    """Two-arm TrialData with post-baseline PANSS ``post`` (n × visits−1, NaN = missing), endpoint = last visit."""
    n = arm.size
    panss = np.column_stack([baseline, post])
    observed = np.isfinite(panss)
    return TrialData(
        arm_names=("control", "active"),
        control=0,
        visit_weeks=weeks,
        endpoint_visit=weeks.size - 1,
        site=np.zeros(n, dtype=int),
        arm=arm,
        randomised_week=np.zeros(n),
        baseline=baseline,
        panss=panss,
        visit_time=np.where(observed, weeks[None, :], np.nan),
        dropout_week=np.full(n, np.inf),
        dropout_reason=np.full(n, "", dtype=object),
    )


def simulate_trial(
    kind: str,
    prior,
    rng: np.random.Generator,
    *,
    n_per_arm: int = 25,
    n_visits: int = 4,
    missing: float = 0.05,
    responder_threshold: float = 0.20,
) -> tuple[float, TrialData]:
    """Draw all parameters of model ``kind`` from ``prior`` (a :class:`~trialsim.inference.nuts.PriorSpec`, one
    active arm) and one trial from the likelihood; return (true effect, trial). See the module docstring.

    ``n_visits`` (including baseline) applies to ``longitudinal``; ``ancova``/``responder`` trials have a baseline
    and an endpoint visit only. ``missing`` is the MCAR probability of each post-baseline cell.
    """
    _check_proper(prior)
    if len(prior.effect) != 1:
        raise ValueError("the SBC generator covers two-arm trials (one active arm)")
    m, sd = _effect_mean_sd(prior)
    nsd = float(prior.nuisance_sd)
    arm = np.repeat(np.arange(2), n_per_arm)
    n = arm.size
    baseline = rng.normal(BASELINE_MEAN, BASELINE_SD, n)
    if kind == "ancova":
        sigma = _draw_sigma(prior, rng)
        scale = sd * sigma / prior.sigma_ref if prior.scaled_by_sigma else sd
        effect = rng.normal(m, scale)
        intercept, slope = rng.normal(0.0, nsd, 2)
        completer = rng.random(n) >= missing
        base_c = baseline - (baseline[completer].mean() if completer.any() else 0.0)
        change = intercept - effect * arm + slope * base_c + sigma * rng.standard_normal(n)
        post = np.where(completer, baseline + change, np.nan)[:, None]
        return float(effect), _trial(np.array([0.0, ENDPOINT_WEEK]), arm, baseline, post)
    if kind == "longitudinal":
        T = n_visits - 1
        if T < 1:
            raise ValueError("n_visits must include at least one post-baseline visit")
        mean = rng.normal(0.0, nsd, T)
        slope = rng.normal(0.0, nsd, T)
        delta = rng.normal(0.0, prior.vague_sd, T)  # non-endpoint visit effects: the vague effect prior
        delta[T - 1] = rng.normal(m, sd)
        sigma = _draw_sigma(prior, rng)
        tau = float(abs(rng.normal(0.0, prior.sigma_scale)))
        observed = rng.random((n, T)) >= missing
        any_obs = observed.any(axis=1)
        base_c = baseline - (baseline[any_obs].mean() if any_obs.any() else 0.0)
        change = (
            mean[None, :]
            - arm[:, None] * delta[None, :]
            + base_c[:, None] * slope[None, :]
            + tau * rng.standard_normal((n, 1))
            + sigma * rng.standard_normal((n, T))
        )
        post = np.where(observed, baseline[:, None] + change, np.nan)
        weeks = np.linspace(0.0, ENDPOINT_WEEK, n_visits)
        return float(delta[T - 1]), _trial(weeks, arm, baseline, post)
    if kind == "responder":
        control_logit = rng.normal(0.0, nsd)
        log_or = rng.normal(m, sd)
        responder = rng.random(n) < expit(control_logit + log_or * arm)
        completer = rng.random(n) >= missing
        thr = responder_threshold
        frac = np.where(responder, rng.uniform(thr + 0.02, 0.9, n), rng.uniform(-0.2, thr - 0.02, n))
        baseline = np.maximum(baseline, 45.0)
        end = baseline - frac * (baseline - 30.0)
        post = np.where(completer, end, np.nan)[:, None]
        return float(log_or), _trial(np.array([0.0, ENDPOINT_WEEK]), arm, baseline, post)
    raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


# --------------------------------------------------------------------------------------------------
# SBC loops
# --------------------------------------------------------------------------------------------------


def thin_draws(effect: np.ndarray, n_draws: int) -> np.ndarray:
    """``n_draws`` evenly spaced draws of the chain-major concatenation of ``effect`` (chains, draws)."""
    flat = np.asarray(effect, dtype=float).reshape(-1)
    if n_draws > flat.size:
        raise ValueError(f"cannot thin {flat.size} draws to {n_draws}")
    idx = np.round(np.linspace(0, flat.size - 1, n_draws)).astype(int)
    return flat[idx]


def build_analysis(
    kind: str,
    *,
    n_visits: int = 4,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The NutsAnalysis of ``kind`` with the SBC priors (:data:`SBC_PRIORS` updated by ``overrides``)."""
    from trialsim.inference.nuts import NutsAnalysis

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    sampler = dict(DEFAULT_SAMPLER[kind])
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if value is not None:
            sampler[name] = int(value)
    kwargs = {**SBC_PRIORS[kind], **(overrides or {}), **sampler}
    if kind == "longitudinal":
        kwargs["n_visits"] = n_visits
    return NutsAnalysis(kind, n_arms=2, **kwargs)


def nuts_sbc(
    kind: str,
    sims: int,
    seed: int = 0,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    n_rank_draws: int = 99,
    n_per_arm: int = 25,
    n_visits: int = 4,
    missing: float = 0.05,
    analysis_overrides: dict[str, Any] | None = None,
) -> NutsSbcResult:
    """SBC of one NUTS model: ``sims`` prior-predictive trials, ranks of the true effect among thinned draws.

    Data are always generated from :data:`SBC_PRIORS` ``[kind]``; ``analysis_overrides`` (NutsAnalysis keyword
    arguments, e.g. ``{"effect_prior": (2.0, 4.0 / 3)}``) changes only the prior the data are ANALYSED with — a
    deliberately miscalibrated check whose ranks must not be uniform.
    """
    start = time.perf_counter()
    truth_analysis = build_analysis(kind, n_visits=n_visits, draws=draws, tune=tune, chains=chains)
    analysis = (
        truth_analysis
        if not analysis_overrides
        else build_analysis(
            kind, n_visits=n_visits, draws=draws, tune=tune, chains=chains, overrides=analysis_overrides
        )
    )
    build_seconds = time.perf_counter() - start
    if n_rank_draws > analysis.draws * analysis.chains:
        raise ValueError(f"n_rank_draws={n_rank_draws} exceeds the {analysis.draws * analysis.chains} draws per fit")
    prior = truth_analysis.prior
    ranks, truth, post_mean, ok, div, failed = [], [], [], [], [], []
    start = time.perf_counter()
    for i in range(sims):
        data_ss, fit_ss = np.random.SeedSequence(seed, spawn_key=(i,)).spawn(2)
        true_effect, data = simulate_trial(
            kind,
            prior,
            np.random.default_rng(data_ss),
            n_per_arm=n_per_arm,
            n_visits=n_visits,
            missing=missing,
            responder_threshold=analysis.responder_threshold,
        )
        result = analysis.fit(data, seed=fit_ss, keep_idata=True)
        if result.failed or result.idata is None:
            failed.append(i)
            continue
        effect = np.asarray(result.idata.posterior["effect"].values)[..., 0]  # (chains, draws)
        thinned = thin_draws(effect, n_rank_draws)
        rec = result["active"]
        ranks.append(int(np.sum(thinned < true_effect)))
        truth.append(true_effect)
        post_mean.append(float(effect.mean()))
        ok.append(bool(rec["diagnostics_ok"]))
        div.append(int(rec["divergences"]))
    return NutsSbcResult(
        kind=kind,
        ranks=np.asarray(ranks, dtype=int),
        max_rank=int(n_rank_draws),
        truth=np.asarray(truth),
        posterior_mean=np.asarray(post_mean),
        diagnostics_ok=np.asarray(ok, dtype=bool),
        divergences=np.asarray(div, dtype=int),
        failed=failed,
        seconds=time.perf_counter() - start,
        build_seconds=build_seconds,
    )


def run_nuts_sbc(
    sims: int,
    seed: int = 0,
    kinds: tuple[str, ...] | list[str] = KINDS,
    draws: int | None = None,
    tune: int | None = None,
    **kwargs: Any,
) -> dict[str, tuple[np.ndarray, int]]:
    """SBC of every kind in ``kinds``: ``{kind: (ranks, max_rank)}`` (ranks in 0 … max_rank).

    ``draws``/``tune`` override :data:`DEFAULT_SAMPLER`; further keyword arguments go to :func:`nuts_sbc`.
    """
    out: dict[str, tuple[np.ndarray, int]] = {}
    for kind in kinds:
        res = nuts_sbc(kind, sims, seed=seed, draws=draws, tune=tune, **kwargs)
        out[kind] = (res.ranks, res.max_rank)
    return out
