"""The plan's analysis of data snapshots and the decisions it makes: what the engine's interim monitor asks for.

:func:`analyse` runs the analysis plan on a batch of trials (conjugate maths batched over trials, per-trial engines
one by one). :class:`PlanAnalyst` answers the engine's analysis rounds (:class:`~trialsim.engine.events.Round`):
at the final analysis it applies the decision rule; at an interim look it adds the efficacy and futility rules,
the predictive probability of success, conditional power, arm dropping and response-adaptive shares
(:mod:`trialsim.decisions`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri

from trialsim import decisions
from trialsim.engine.cohort import World
from trialsim.engine.events import CONTINUE, FINAL, Round
from trialsim.exceptions import AnalysisError
from trialsim.inference.conjugate import ComparisonPosterior, analyse_ancova
from trialsim.inference.data import TrialBatch
from trialsim.inference.per_trial import analyse_per_trial
from trialsim.inference.responder import analyse_responders
from trialsim.spec.adaptive import per_look
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Primary-endpoint measure → column of ``TrialBatch.true_effect`` and the score analysed.
MEASURES = {
    "panss_total_change": (0, "total"),
    "panss_positive_change": (1, "positive"),
    "panss_negative_change": (2, "negative"),
}
#: Analysis streams are children of the trial's seed with this second spawn-key element (and 1 + look index as a
#: third at interim looks).
ANALYSIS_STREAM = 1


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the chunk (pickled once per chunk)."""

    scenario: Scenario
    plan: AnalysisPlan
    seed: int
    world: World
    effect_prior: tuple[float, float | None]  # the plan's effect prior in PANSS points (library prior resolved)
    responder_truth: tuple[float, ...] | None = None
    n_max: int = 0
    keep_idata: int = 0
    idata_dir: str | None = None


def analysis_seeds(seed: int, trials: np.ndarray, look: np.ndarray) -> list[np.random.SeedSequence]:
    """The analysis stream of each trial at each analysis (final: (trial, 1); interim look j: (trial, 1, 1 + j))."""
    return [
        np.random.SeedSequence(seed, spawn_key=(int(k), ANALYSIS_STREAM) + (() if j == FINAL else (1 + int(j),)))
        for k, j in zip(trials, look)
    ]


def analyse(
    batch: TrialBatch, job: Job, trials: np.ndarray, look: np.ndarray, *, keep_idata: bool = False
) -> tuple[ComparisonPosterior, dict]:
    """The plan's analysis of every trial in the batch (global trial indices ``trials``, analyses ``look``), and
    extra per-trial columns (diagnostics of per-trial engines)."""
    scenario, plan = job.scenario, job.plan
    measure = scenario.primary_endpoint.measure
    if plan.engine == "conjugate" and measure != "responder":  # exact, no random numbers
        return analyse_ancova(batch, plan, MEASURES[measure][1], job.effect_prior), {}
    seeds = analysis_seeds(job.seed, trials, look)
    if plan.engine == "conjugate":
        return analyse_responders(batch, plan, scenario.primary_endpoint.responder_threshold, seeds), {}
    if measure not in ("panss_total_change", "responder"):
        raise AnalysisError(f"the {plan.engine} engine analyses PANSS total (or responders), not {measure}")
    result = analyse_per_trial(
        batch,
        plan,
        seeds,
        n_max=job.n_max,
        responder_threshold=scenario.primary_endpoint.responder_threshold,
        effect_prior=job.effect_prior,
        trials=trials,
        keep_idata=job.keep_idata if keep_idata else 0,
        idata_dir=job.idata_dir,
    )
    posterior = result.posterior
    if plan.decision.multiplicity != "none":
        completers = np.stack(
            [(batch.in_arm(a) & batch.endpoint_observed).sum(axis=1) for a in range(len(batch.arm_names))], axis=1
        ).astype(float)
        ordered = np.concatenate([completers[:, [batch.control]], np.delete(completers, batch.control, axis=1)], 1)
        posterior = decisions.adjust_for_multiplicity(posterior, plan.decision.multiplicity, ordered)
    return posterior, result.columns


def true_effects(batch: TrialBatch, job: Job) -> np.ndarray:
    """The true effect of each comparison (trials, comparisons) on the analysis scale: PANSS points, a risk
    difference (conjugate responder) or a log odds ratio (other responder engines)."""
    active = [a for a in range(len(batch.arm_names)) if a != batch.control]
    measure = job.scenario.primary_endpoint.measure
    if measure == "responder":
        rates = np.asarray(job.responder_truth)
        if job.plan.engine == "conjugate":
            truth = rates[active] - rates[batch.control]
        else:
            logit = np.log(rates) - np.log1p(-rates)
            truth = logit[active] - logit[batch.control]
        return np.broadcast_to(truth, (batch.trials, len(active)))
    column, _ = MEASURES[measure]
    return batch.true_effect[:, active, column] - batch.true_effect[:, [batch.control], column]


def effect_prior_points(plan: AnalysisPlan, background: str | None = None) -> tuple[float, float | None]:
    """The plan's effect prior (mean, sd) in PANSS points, resolving a library-based prior (widened for
    indirectness when the trial's ``background`` treatment differs from the evidence's population)."""
    effect = plan.priors.effect
    if effect.from_library is None:
        return effect.mean, effect.sd
    import warnings

    from trialsim.evidence import design_prior, load_library

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported once when the plan is checked
        prior = design_prior(
            load_library().get(effect.from_library.intervention), "panss_total", effect.from_library.versus,
            background,
        )
    return prior.mean_smd * effect.sd_reference, prior.sd_smd * effect.sd_reference


@dataclass(frozen=True)
class RoundResult:
    """One analysis round: posteriors and decisions, arrays over the round's trials ((trials, comparisons) unless
    stated). What the engine reads: ``stop``, ``drop``, ``shares``, ``block_size``."""

    posterior: ComparisonPosterior
    extra: dict
    success: np.ndarray  # comparisons declared successful by this analysis
    stop: np.ndarray  # (trials,)
    drop: np.ndarray | None = None  # (trials, arms)
    shares: np.ndarray | None = None  # (trials, arms)
    block_size: int = 0
    futile: np.ndarray | None = None
    prob_futility: np.ndarray | None = None
    predictive: np.ndarray | None = None
    conditional_power: np.ndarray | None = None


class PlanAnalyst:
    """Answers the engine's analysis rounds for the trials of one chunk (one design point)."""

    def __init__(self, job: Job, sample_size: int, first_trial: int) -> None:
        self.job, self.first_trial = job, first_trial
        scenario, plan = job.scenario, job.plan
        self.thresholds = decisions.Thresholds.of(scenario, plan, sample_size)
        self.rules = plan.interim
        self.control = scenario.control_index
        self.planned = decisions.expected_completers(scenario, sample_size)
        looks = len(scenario.interim.looks) if scenario.interim else 0
        futility = self.rules.futility if self.rules else None
        self.limits = {
            name: np.asarray(per_look(getattr(futility, name), looks))
            for name in ("thresholds", "predictive", "conditional_power")
            if futility is not None and getattr(futility, name) is not None
        }
        ratio = np.asarray(scenario.ratio, dtype=float)
        self.initial_shares = ratio / ratio.sum()

    def analyse(self, snapshot: TrialBatch, request: Round) -> RoundResult:
        job, plan = self.job, self.job.plan
        request = replace(request, trials=request.trials + self.first_trial)  # the chunk's trials → run indices
        final = request.look == FINAL
        posterior, extra = analyse(snapshot, job, request.trials, request.look, keep_idata=bool(final.all()))
        success = decisions.final_success(posterior, plan, self.thresholds.final)
        trusted = decisions.trusted_fits(extra, posterior.arms, plan)
        prob_efficacy = posterior.prob_gt_margin
        if trusted is not None:  # a fit that failed its diagnostics neither succeeds nor crosses efficacy
            success &= trusted
            prob_efficacy = np.where(trusted, prob_efficacy, 0.0)
        stop = np.full(request.trials.size, CONTINUE)
        if final.all() or self.rules is None:
            return RoundResult(posterior, extra, success & ~_closed(request, self.control), stop)
        look = np.where(final, 0, request.look)
        prob_futility = predictive = cp = None
        statistics, limits = [], []
        futility = self.rules.futility
        completers = np.stack(
            [(snapshot.in_arm(a) & snapshot.endpoint_observed).sum(axis=1) for a in range(len(snapshot.arm_names))],
            axis=1,
        ).astype(float)
        # Completers per arm in comparison order: control first, then the active arms.
        ordered = np.concatenate([completers[:, [self.control]], np.delete(completers, self.control, axis=1)], 1)
        if futility is not None:
            prob_futility = decisions.prob_greater(posterior, futility.margin, plan.decision.margin)
            if "thresholds" in self.limits:
                statistics.append(prob_futility)
                limits.append(self.limits["thresholds"][look])
            if "predictive" in self.limits:
                predictive = self._predictive(posterior, ordered, request)
                statistics.append(predictive)
                limits.append(self.limits["predictive"][look])
        fraction = completers.sum(axis=1) / self.planned.sum()
        cp = decisions.conditional_power_now(posterior, plan.decision.margin, fraction, self.thresholds.final)
        if futility is not None and "conditional_power" in self.limits:
            statistics.append(cp)
            limits.append(self.limits["conditional_power"][look])
        best = None
        if self.rules.keep_best_only or self.rules.response_adaptive is not None:
            seeds = [np.random.SeedSequence(s.entropy, spawn_key=s.spawn_key + (0,))
                     for s in analysis_seeds(job.seed, request.trials, request.look)]
            best = decisions.p_best(posterior, ordered, np.delete(request.active, self.control, axis=1), seeds)
        first = np.array([j == 0 for j in look])
        actions = decisions.look_actions(
            self.rules, prob_efficacy, self.thresholds.looks[look], statistics, limits,
            request.active, best, first, self.control,
        )
        shares = None
        rar = self.rules.response_adaptive
        if rar is not None:
            open_active = np.delete(request.active & ~actions.drop, self.control, axis=1)
            fixed = self.initial_shares[self.control] / np.delete(self.initial_shares, self.control).sum()
            ordered_shares = decisions.response_adaptive_shares(best, open_active, rar, fixed)
            shares = np.insert(ordered_shares[:, 1:], self.control, ordered_shares[:, 0], axis=1)
        block = rar.block_size if rar is not None else job.scenario.recruitment.block_size or 2 * sum(
            job.scenario.ratio
        )
        # A round can mix trials at a look with trials at their final analysis: the latter are judged by the final
        # rule (never by a look's efficacy threshold) and take no action.
        success = np.where(final[:, None], success & ~_closed(request, self.control), actions.crossed)
        stop = np.where(final, CONTINUE, actions.stop)
        return RoundResult(
            posterior, extra, success, stop, actions.drop, shares, block,
            futile=actions.futile, prob_futility=prob_futility, predictive=predictive, conditional_power=cp,
        )

    def _predictive(self, posterior: ComparisonPosterior, completers: np.ndarray, request: Round) -> np.ndarray:
        """Predictive probability of success at the final analysis, per comparison: the patients still to come
        are the planned completers per arm minus those observed (open arms only)."""
        from trialsim.inference.sequential import predictive_probability_draws, predictive_probability_nig

        plan = self.job.plan
        planned = np.concatenate([self.planned[[self.control]], np.delete(self.planned, self.control)])
        future = np.maximum(planned[None, :] - completers, 0.0)
        future[:, 1:] *= np.delete(request.active, self.control, axis=1)
        threshold, margin = self.thresholds.final, plan.decision.margin
        if posterior.residual_sd is not None:  # the conjugate ANCOVA: exact
            df = posterior.df[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = posterior.sd * np.sqrt(np.where(df > 2, (df - 2) / df, 1.0))
                out = predictive_probability_nig(
                    posterior.mean, scale, df, posterior.residual_sd[:, None], future[:, 1:], future[:, [0]], margin,
                    threshold,
                )
            return np.where(posterior.valid[:, None], np.nan_to_num(out), 0.0)
        # Per-trial engines: posterior draws of the effect from its normal approximation (deterministic quantiles)
        # with the residual SD their posterior SD implies; the future estimate is integrated in closed form.
        draws = plan.posterior_draws
        quantiles = ndtri((np.arange(draws) + 0.5) / draws)
        n_now = np.maximum(completers, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = posterior.sd / np.sqrt(1.0 / n_now[:, 1:] + 1.0 / n_now[:, [0]])
            effect = posterior.mean[..., None] + posterior.sd[..., None] * quantiles
            out = predictive_probability_draws(
                effect, np.broadcast_to(sigma[..., None], effect.shape), future[:, 1:], future[:, [0]],
                posterior.mean, posterior.sd, margin, threshold,
            )
        return np.where(posterior.valid[:, None], np.nan_to_num(out), 0.0)


def _closed(request: Round, control: int) -> np.ndarray:
    """(trials, comparisons) arms closed (dropped) before this analysis."""
    return ~np.delete(request.active, control, axis=1)
