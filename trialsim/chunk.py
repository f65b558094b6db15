"""Simulate and analyse one chunk of trials and tabulate them: one row per trial.

Columns are documented in the README (``trials.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from trialsim import decisions
from trialsim.analyst import Job, PlanAnalyst, RoundResult, analyse, effect_prior_points, true_effects
from trialsim.engine.events import FINAL, STOP_REASONS, EventTrials
from trialsim.engine.trial import interacts, simulate_trials
from trialsim.inference.data import TrialBatch

__all__ = ["Chunk", "Job", "effect_prior_points", "idata_directory", "simulate_chunk", "trial_seed"]


@dataclass(frozen=True)
class Chunk:
    """A contiguous block of trial indices of one design point, with true effects at their point values or
    drawn from the design priors (``assurance``)."""

    design_point: int
    sample_size: int
    start: int
    stop: int
    assurance: bool = False


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """The child seed of trial ``trial``: ``SeedSequence(seed).spawn(...)[trial]`` without spawning the others."""
    return np.random.SeedSequence(seed, spawn_key=(trial,))


def idata_directory(base: str | Path, chunk: Chunk) -> Path:
    """Where the InferenceData of a chunk's trials go: one folder per design point and effect mode, so files of
    different design points never collide (``trial_<index>.nc`` inside)."""
    mode = "assurance" if chunk.assurance else "point"
    return Path(base) / f"design_point_{chunk.design_point}-n{chunk.sample_size}-{mode}"


def simulate_chunk(job: Job, chunk: Chunk) -> pd.DataFrame:
    """Simulate and analyse the trials of one chunk; one row per trial."""
    if job.idata_dir is not None:
        job = replace(job, idata_dir=str(idata_directory(job.idata_dir, chunk)))
    scenario = job.scenario
    world = job.world
    indices = np.arange(chunk.start, chunk.stop)
    seeds = [trial_seed(job.seed, int(index)) for index in indices]
    subscales = scenario.primary_endpoint.measure in ("panss_positive_change", "panss_negative_change")
    analyst = PlanAnalyst(job, chunk.sample_size, chunk.start) if interacts(scenario) else None
    batch, trials = simulate_trials(
        scenario, chunk.sample_size, seeds, world=world, assurance=chunk.assurance, subscales=subscales,
        covariates=False, analyst=analyst,
    )
    columns = _trial_columns(job, chunk, batch)
    if trials is None:
        looks = np.full(indices.size, FINAL)
        posterior, extra = analyse(batch, job, indices, looks, keep_idata=True)
        success = decisions.final_success(posterior, job.plan, job.plan.decision.threshold)
        trusted = decisions.trusted_fits(extra, posterior.arms, job.plan)
        if trusted is not None:
            success &= trusted
        outcome = RoundResult(posterior, extra, success, np.zeros(indices.size, int))
        columns.update(_comparison_columns(outcome, np.arange(indices.size), true_effects(batch, job)))
    else:
        columns.update(_event_columns(job, trials, true_effects(batch, job)))
    return pd.DataFrame(columns)


def _trial_columns(job: Job, chunk: Chunk, batch: TrialBatch) -> dict[str, object]:
    """Per-trial design, enrolment, dropout, AE, monitoring and resource columns."""
    scenario = job.scenario
    randomised = np.ones(batch.arm.shape, bool) if batch.randomised is None else batch.randomised
    n_randomised = randomised.sum(axis=1)
    completed = batch.endpoint_observed & randomised
    dropped = randomised & np.isfinite(batch.dropout_week)
    columns: dict[str, object] = {
        "design_point": chunk.design_point,
        "sample_size": chunk.sample_size,
        "effect_mode": "assurance" if chunk.assurance else "point",
        "trial": np.arange(chunk.start, chunk.stop),
        "n_screened": batch.screened,
        "n_turned_away": np.zeros(batch.trials, int) if batch.turned_away is None else batch.turned_away,
        "n_randomised": n_randomised,
        "n_completed": completed.sum(axis=1),
        "dropout_fraction": dropped.sum(axis=1) / np.maximum(n_randomised, 1),
        "recruitment_weeks": np.max(np.where(randomised, batch.randomised_week, -np.inf), axis=1),
        "duration_weeks": batch.end_week,
    }
    reasons = batch.reasons()
    responder = scenario.primary_endpoint.measure == "responder"
    if responder:
        from trialsim.inference.responder import responders

        status = responders(batch.baseline, batch.panss[..., batch.endpoint_visit],
                            scenario.primary_endpoint.responder_threshold)
    for a, name in enumerate(batch.arm_names):
        in_arm = batch.in_arm(a)
        columns[f"{name}.n_randomised"] = in_arm.sum(axis=1)
        columns[f"{name}.n_completed"] = (in_arm & completed).sum(axis=1)
        for reason in sorted(set(batch.dropout_reasons) - {""}):
            columns[f"{name}.dropout_{reason}"] = (in_arm & (reasons == reason)).sum(axis=1)
        recorded = job.world.arms[a].adverse_events_recorded
        for event, flags in batch.adverse_events.items():
            if event in recorded:  # an incidence the evidence does not record is unknown, not 0
                columns[f"{name}.ae_{event}"] = (in_arm & flags).sum(axis=1)
        if responder:  # per-arm rates, not only their difference: responders among completers, and the truth
            columns[f"{name}.responders"] = np.where(in_arm & completed, status, 0.0).sum(axis=1).astype(int)
            columns[f"{name}.true_responder_rate"] = job.responder_truth[a]
        monitoring = scenario.arms[a].monitoring
        if monitoring is not None:
            from trialsim.world.monitoring import tests_by

            visits = tests_by(monitoring, batch.on_study_weeks)
            columns[f"{name}.monitoring_visits"] = (in_arm * visits).sum(axis=1)
    if batch.start_delay is not None:
        from trialsim.engine.delivery import resource_use

        arm = np.where(randomised, batch.arm, -1)
        columns.update(resource_use(scenario, arm, batch.start_delay, batch.on_study_weeks))
    return columns


def _comparison_columns(result: RoundResult, rows: np.ndarray, truth: np.ndarray) -> dict:
    """Per-comparison columns of the analysis that decided each trial (rows of ``result``)."""
    posterior = result.posterior
    columns: dict[str, object] = {name: values[rows] for name, values in result.extra.items()}
    for j, arm in enumerate(posterior.arms):
        columns[f"{arm}.true_effect"] = truth[:, j]
        columns[f"{arm}.estimate"] = posterior.mean[rows, j]
        columns[f"{arm}.sd"] = posterior.sd[rows, j]
        columns[f"{arm}.ci_low"] = posterior.ci_low[rows, j]
        columns[f"{arm}.ci_high"] = posterior.ci_high[rows, j]
        columns[f"{arm}.prob_effect_gt_margin"] = posterior.prob_gt_margin[rows, j]
        if posterior.prob_gt_clinical is not None:
            columns[f"{arm}.prob_effect_gt_clinical"] = posterior.prob_gt_clinical[rows, j]
        columns[f"{arm}.success"] = result.success[rows, j]
    columns["analysis_valid"] = posterior.valid[rows]
    return columns


def _gather(records: list, attribute: str, width: int, posterior: bool = False) -> np.ndarray:
    """(trials, width) values of an attribute of each trial's record (of its posterior with ``posterior``); NaN
    where a trial has no record or the result no such value."""
    out = np.full((len(records), width), np.nan)
    for k, record in enumerate(records):
        if record is None:
            continue
        holder = record.result.posterior if posterior else record.result
        values = getattr(holder, attribute)
        if values is not None:
            out[k] = values[record.row]
    return out


#: Per-look columns: name → (attribute of the round result, of its posterior?, boolean?).
_LOOK_COLUMNS = {
    "estimate": ("mean", True, False),
    "sd": ("sd", True, False),
    "prob_effect_gt_margin": ("prob_gt_margin", True, False),
    "crossed": ("success", False, True),
    "futile": ("futile", False, True),
    "prob_effect_gt_futility_margin": ("prob_futility", False, False),
    "predictive_probability": ("predictive", False, False),
    "conditional_power": ("conditional_power", False, False),
}


def _look_columns(plan) -> dict[str, tuple[str, bool, bool]]:
    """The per-look columns of the plan's rules: decided by the plan, never by the data of a chunk, so every chunk
    of a run has the same columns."""
    futility = plan.interim.futility
    unused = set()
    if futility is None:
        unused.add("prob_effect_gt_futility_margin")
    if futility is None or futility.predictive is None:
        unused.add("predictive_probability")
    return {name: spec for name, spec in _LOOK_COLUMNS.items() if name not in unused}


def _event_columns(job: Job, trials: EventTrials, truth: np.ndarray) -> dict[str, object]:
    """Columns of the event-driven path: the deciding analysis (the stopping look, or the final analysis), each
    interim look, the stop, the final (overrun) analysis of stopped trials and the look at which arms closed."""
    states = trials.states
    scenario = job.scenario
    finals = [next(r for r in s.records if r.look == FINAL) for s in states]
    deciding = [next(r for r in s.records if r.look == s.stop_look) if s.stop_code else f
                for s, f in zip(states, finals)]
    arms = deciding[0].result.posterior.arms
    columns: dict[str, object] = {f"{arm}.true_effect": truth[:, j] for j, arm in enumerate(arms)}
    for name, (attribute, of_posterior, boolean) in (
        ("estimate", ("mean", True, False)), ("sd", ("sd", True, False)), ("ci_low", ("ci_low", True, False)),
        ("ci_high", ("ci_high", True, False)), ("prob_effect_gt_margin", ("prob_gt_margin", True, False)),
        ("success", ("success", False, True)),
    ):
        values = _gather(deciding, attribute, len(arms), of_posterior)
        for j, arm in enumerate(arms):
            columns[f"{arm}.{name}"] = values[:, j] == 1 if boolean else values[:, j]
    columns["analysis_valid"] = np.array([r.result.posterior.valid[r.row] for r in deciding])
    for name in deciding[0].result.extra:
        columns[name] = np.array([r.result.extra[name][r.row] for r in deciding])
    if scenario.interim is None:
        return columns
    codes = np.array([s.stop_code for s in states])
    columns["stop_look"] = np.array([s.stop_look + 1 if s.stop_code else 0 for s in states])
    columns["stop_reason"] = np.asarray(STOP_REASONS, dtype=object)[codes]
    columns["stop_week"] = np.array([s.stop_week if s.stop_code else np.nan for s in states])
    final_estimate = _gather(finals, "mean", len(arms), True)
    final_success = _gather(finals, "success", len(arms)) == 1
    for j, arm in enumerate(arms):
        columns[f"{arm}.final_estimate"] = final_estimate[:, j]
        columns[f"{arm}.final_success"] = final_success[:, j]
    n_arms = len(scenario.arms)
    dropped_at = np.zeros((len(states), n_arms), int)
    for i in range(len(scenario.interim.looks)):
        records = [next((r for r in s.records if r.look == i), None) for s in states]
        tag = f"look{i + 1}"
        columns[f"{tag}.cutoff_week"] = np.array([np.nan if r is None else r.cutoff_week for r in records])
        columns[f"{tag}.decision_week"] = np.array([np.nan if r is None else r.decision_week for r in records])
        columns[f"{tag}.n_randomised"] = np.array([-1 if r is None else r.n_randomised for r in records])
        columns[f"{tag}.n_completed"] = np.array([-1 if r is None else r.n_completed for r in records])
        stop = _gather(records, "stop", 1)[:, 0]
        columns[f"{tag}.stop"] = np.asarray(STOP_REASONS, dtype=object)[np.nan_to_num(stop).astype(int)]
        for name, (attribute, of_posterior, boolean) in _look_columns(job.plan).items():
            values = _gather(records, attribute, len(arms), of_posterior)
            for j, arm in enumerate(arms):
                columns[f"{arm}.{tag}.{name}"] = values[:, j] == 1 if boolean else values[:, j]
        drops = _gather(records, "drop", n_arms) == 1
        dropped_at = np.where((dropped_at == 0) & drops, i + 1, dropped_at)
        if job.plan.interim.response_adaptive is not None:
            shares = _gather(records, "shares", n_arms)
            for a, arm in enumerate(scenario.arms):
                columns[f"{arm.name}.{tag}.share"] = shares[:, a]
    for a, arm in enumerate(scenario.arms):
        if a != scenario.control_index:
            columns[f"{arm.name}.dropped_look"] = dropped_at[:, a]
    return columns
