"""Simulate and analyse one chunk of trials and tabulate them: one row per trial.

Columns are documented in the README (``trials.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trialsim.engine.trial import World, simulate_trials
from trialsim.exceptions import AnalysisError
from trialsim.inference.conjugate import ComparisonPosterior, analyse_ancova
from trialsim.inference.data import TrialBatch
from trialsim.inference.per_trial import analyse_per_trial
from trialsim.inference.responder import analyse_responders
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Primary-endpoint measure → column of ``TrialBatch.true_effect`` and the score analysed.
MEASURES = {
    "panss_total_change": (0, "total"),
    "panss_positive_change": (1, "positive"),
    "panss_negative_change": (2, "negative"),
}
#: Analysis streams are children of the trial's seed with this second spawn-key element.
ANALYSIS_STREAM = 1


@dataclass(frozen=True)
class Chunk:
    """A contiguous block of trial indices of one design point, with true effects at their point values or
    drawn from the design priors (``assurance``)."""

    design_point: int
    sample_size: int
    start: int
    stop: int
    assurance: bool = False


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the chunk (pickled once per chunk)."""

    scenario: Scenario
    plan: AnalysisPlan
    seed: int
    responder_truth: tuple[float, ...] | None = None
    n_max: int = 0
    keep_idata: int = 0
    idata_dir: str | None = None


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """The child seed of trial ``trial``: ``SeedSequence(seed).spawn(...)[trial]`` without spawning the others."""
    return np.random.SeedSequence(seed, spawn_key=(trial,))


def analyse(batch: TrialBatch, job: Job, first_trial: int) -> tuple[ComparisonPosterior, np.ndarray, dict]:
    """The plan's analysis of every trial in the batch, the true effect of each comparison (K, comparisons) on the
    analysis scale, and extra per-trial columns (diagnostics of per-trial engines)."""
    scenario, plan = job.scenario, job.plan
    active = [a for a in range(len(batch.arm_names)) if a != batch.control]
    measure = scenario.primary_endpoint.measure
    seeds = [
        np.random.SeedSequence(job.seed, spawn_key=(first_trial + k, ANALYSIS_STREAM)) for k in range(batch.trials)
    ]
    if measure == "responder":
        rates = np.asarray(job.responder_truth)
        if plan.engine == "conjugate":
            truth = rates[active] - rates[batch.control]  # risk difference
        else:
            logit = np.log(rates) - np.log1p(-rates)
            truth = logit[active] - logit[batch.control]  # log odds ratio
        truth = np.broadcast_to(truth, (batch.trials, len(active)))
    else:
        column, _ = MEASURES[measure]
        truth = batch.true_effect[:, active, column] - batch.true_effect[:, [batch.control], column]
    if plan.engine == "conjugate":
        if measure == "responder":
            return analyse_responders(batch, plan, scenario.primary_endpoint.responder_threshold, seeds), truth, {}
        return analyse_ancova(batch, plan, MEASURES[measure][1], effect_prior_points(plan)), truth, {}
    if measure not in ("panss_total_change", "responder"):
        raise AnalysisError(f"the {plan.engine} engine analyses PANSS total (or responders), not {measure}")
    result = analyse_per_trial(
        batch,
        plan,
        seeds,
        n_max=job.n_max,
        responder_threshold=scenario.primary_endpoint.responder_threshold,
        effect_prior=effect_prior_points(plan),
        first_trial=first_trial,
        keep_idata=job.keep_idata,
        idata_dir=job.idata_dir,
    )
    return result.posterior, truth, result.columns


def effect_prior_points(plan: AnalysisPlan) -> tuple[float, float | None]:
    """The plan's effect prior (mean, sd) in PANSS points, resolving a library-based prior."""
    effect = plan.priors.effect
    if effect.from_library is None:
        return effect.mean, effect.sd
    import warnings

    from trialsim.evidence import design_prior, load_library

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported once when the plan is checked
        prior = design_prior(
            load_library().get(effect.from_library.intervention), "panss_total", effect.from_library.versus
        )
    return prior.mean_smd * effect.sd_reference, prior.sd_smd * effect.sd_reference


def simulate_chunk(job: Job, chunk: Chunk) -> pd.DataFrame:
    """Simulate and analyse the trials of one chunk; one row per trial."""
    scenario = job.scenario
    world = World.of(scenario)
    seeds = [trial_seed(job.seed, index) for index in range(chunk.start, chunk.stop)]
    subscales = scenario.primary_endpoint.measure in ("panss_positive_change", "panss_negative_change")
    batch, enrolments = simulate_trials(
        scenario, chunk.sample_size, seeds, world=world, assurance=chunk.assurance, subscales=subscales
    )
    completed = batch.endpoint_observed
    columns: dict[str, object] = {
        "design_point": chunk.design_point,
        "sample_size": chunk.sample_size,
        "effect_mode": "assurance" if chunk.assurance else "point",
        "trial": np.arange(chunk.start, chunk.stop),
        "n_screened": batch.screened,
        "n_turned_away": np.array([e.turned_away for e in enrolments]),
        "n_randomised": batch.arm.shape[1],
        "n_completed": completed.sum(axis=1),
        "dropout_fraction": 1.0 - completed.mean(axis=1),
        "recruitment_weeks": batch.randomised_week.max(axis=1),
        "duration_weeks": batch.end_week,
    }
    reasons = batch.reasons()
    for a, name in enumerate(batch.arm_names):
        in_arm = batch.arm == a
        columns[f"{name}.n_randomised"] = in_arm.sum(axis=1)
        columns[f"{name}.n_completed"] = (in_arm & completed).sum(axis=1)
        for reason in sorted(set(batch.dropout_reasons) - {""}):
            columns[f"{name}.dropout_{reason}"] = (in_arm & (reasons == reason)).sum(axis=1)
        for event, flags in batch.adverse_events.items():
            columns[f"{name}.ae_{event}"] = (in_arm & flags).sum(axis=1)
        monitoring = scenario.arms[a].monitoring
        if monitoring is not None:
            columns[f"{name}.monitoring_visits"] = (in_arm * monitoring_visits(monitoring, batch.on_study_weeks)).sum(
                axis=1
            )
    if batch.start_delay is not None:
        from trialsim.engine.delivery import resource_use

        columns.update(resource_use(scenario, batch.arm, batch.start_delay, batch.on_study_weeks))
    frame = pd.DataFrame(columns)
    posterior, truth, extra = analyse(batch, job, chunk.start)
    comparison: dict[str, object] = dict(extra)
    for j, arm in enumerate(posterior.arms):
        comparison[f"{arm}.true_effect"] = truth[:, j]
        comparison[f"{arm}.estimate"] = posterior.mean[:, j]
        comparison[f"{arm}.sd"] = posterior.sd[:, j]
        comparison[f"{arm}.ci_low"] = posterior.ci_low[:, j]
        comparison[f"{arm}.ci_high"] = posterior.ci_high[:, j]
        comparison[f"{arm}.prob_effect_gt_margin"] = posterior.prob_gt_margin[:, j]
        success = posterior.prob_gt_margin[:, j] >= job.plan.decision.threshold
        if posterior.prob_gt_clinical is not None:
            comparison[f"{arm}.prob_effect_gt_clinical"] = posterior.prob_gt_clinical[:, j]
            success &= posterior.prob_gt_clinical[:, j] >= job.plan.decision.clinical_threshold
        comparison[f"{arm}.success"] = success
    comparison["analysis_valid"] = posterior.valid
    return pd.concat([frame, pd.DataFrame(comparison)], axis=1)


def monitoring_visits(monitoring, on_study_weeks: np.ndarray) -> np.ndarray:
    """Blood-monitoring visits while on study: weekly up to ``weekly_weeks``, then every ``then_every_weeks``."""
    weekly = np.floor(np.minimum(on_study_weeks, monitoring.weekly_weeks))
    later = np.floor(np.maximum(on_study_weeks - monitoring.weekly_weeks, 0.0) / monitoring.then_every_weeks)
    return weekly + later
