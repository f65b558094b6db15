"""Analyses with a record per trial (NUTS, frequentist, laplace), stacked into the same arrays as the batched engines.

NUTS models are compiled once per (plan, design) and process: :func:`nuts_analysis` keeps them in a process-level
cache, so a worker compiles on its first chunk and reuses the model for every later trial. The laplace engine fits
a chunk's trials together (vectorised). Each fit is seeded from the trial's own analysis stream, so results do not
depend on workers or chunking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from trialsim.inference.conjugate import ComparisonPosterior, endpoint_change
from trialsim.inference.data import TrialBatch, TrialData
from trialsim.spec.plan import AnalysisPlan

_ANALYSES: dict[tuple, Any] = {}

#: Per-arm columns of trials.parquet beside diagnostics_ok and fit_failed, by engine: only those the engine fills
#: (a Bayesian fit has no p-value, a frequentist one no MCMC diagnostics).
ENGINE_COLUMNS = {
    "nuts": ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences"),
    "frequentist": ("p_value",),
    "laplace": (),  # only diagnostics_ok (Newton converged, importance-sampling error within tolerance)
}


@dataclass(frozen=True)
class PerTrialResult:
    """Posterior summaries (as for batched engines) plus per-trial diagnostic columns."""

    posterior: ComparisonPosterior
    columns: dict[str, np.ndarray]


def nuts_analysis(
    plan: AnalysisPlan,
    n_arms: int,
    n_visits: int,
    n_max: int,
    responder_threshold: float,
    effect_prior: tuple[float, float | None],
):
    """The compiled NUTS model of this plan and design, built once per process."""
    from trialsim.inference.diagnostics import DiagnosticThresholds
    from trialsim.inference.nuts import NutsAnalysis

    mean, sd = effect_prior
    key = (plan.model_dump_json(), n_arms, n_visits, n_max, responder_threshold, effect_prior)
    if key not in _ANALYSES:
        sampler, residual = plan.sampler, plan.priors.residual
        options: dict[str, Any] = dict(
            n_max=n_max,
            n_visits=n_visits,
            n_arms=n_arms,
            margin=plan.decision.margin,
            margin2=plan.decision.clinical_margin,
            ci_level=plan.ci_prob,
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            responder_threshold=responder_threshold,
            thresholds=DiagnosticThresholds(sampler.rhat_max, sampler.ess_min, sampler.ess_min),
        )
        if plan.model == "ancova":
            # The conjugate model's own prior (normal–inverse-gamma, flat nuisance), so both engines agree.
            options.update(
                effect_prior=(mean, sd),  # (mean, None) = flat, exactly as the conjugate engine
                prior_scaled_by_sigma=sd is not None,
                sigma_ref=plan.priors.effect.sd_reference,
                nuisance_sd=None,
                sigma_prior="jeffreys" if residual.kind == "jeffreys" else "inverse_gamma",
                sigma2_shape=None if residual.kind == "jeffreys" else residual.shape,
                sigma2_rate=None if residual.kind == "jeffreys" else residual.scale,
            )
        elif plan.model == "longitudinal":
            options.update(residual=plan.covariance, effect_prior=None if sd is None else (mean, sd))
        _ANALYSES[key] = NutsAnalysis(plan.model, **options)
    return _ANALYSES[key]


def laplace_analysis(plan: AnalysisPlan, effect_prior: tuple[float, float | None]):
    """The plan's approximate Bayesian MMRM (same priors as the NUTS longitudinal model)."""
    from trialsim.inference.laplace import LaplaceAnalysis

    mean, sd = effect_prior
    return LaplaceAnalysis(
        plan.covariance,
        effect_prior=None if sd is None else (mean, sd),
        margin=plan.decision.margin,
        margin2=plan.decision.clinical_margin,
        ci_level=plan.ci_prob,
    )


def impute(data: TrialData, missing: str) -> TrialData:
    """The trial with its endpoint filled by LOCF/BOCF (completers: unchanged), for per-trial ANCOVA engines."""
    if missing not in ("locf", "bocf"):
        return data
    batch_like = _OneTrial(data)
    _, change = endpoint_change(batch_like, "total", missing)
    panss = data.panss.copy()
    panss[:, data.endpoint_visit] = data.baseline + change
    return replace(data, panss=panss)


class _OneTrial:
    """A one-trial view with the interface :func:`endpoint_change` needs."""

    def __init__(self, data: TrialData):
        self.panss, self.endpoint_visit, self._baseline = data.panss, data.endpoint_visit, data.baseline
        self.dropout_week = data.dropout_week

    def score(self, measure: str) -> tuple[np.ndarray, np.ndarray]:
        return self._baseline, self.panss


def analyse_per_trial(
    batch: TrialBatch,
    plan: AnalysisPlan,
    seeds: list[np.random.SeedSequence],
    *,
    n_max: int,
    responder_threshold: float,
    effect_prior: tuple[float, float | None],
    trials: np.ndarray,
    keep_idata: int = 0,
    idata_dir: str | None = None,
) -> PerTrialResult:
    """Fit every trial of the batch with the plan's NUTS, frequentist or laplace engine."""
    from trialsim.inference.diagnostics import RECORD_KEYS

    active = [a for a in range(len(batch.arm_names)) if a != batch.control]
    names = [batch.arm_names[a] for a in active]
    # Every numeric field of a per-arm record (the record layout is defined once, in diagnostics.RECORD_KEYS).
    fields = tuple(key for key in RECORD_KEYS if key not in ("arm", "df", "mcse", "n_analysed", "error"))
    out = {field: np.full((batch.trials, len(active)), np.nan) for field in fields}
    analysis = None
    if plan.engine == "nuts":
        analysis = nuts_analysis(
            plan, len(batch.arm_names), batch.panss.shape[-1], n_max, responder_threshold, effect_prior
        )
    datasets = [
        impute(batch.trial(k), plan.missing) if plan.model == "ancova" else batch.trial(k) for k in range(batch.trials)
    ]
    # The fits make many LAPACK calls on matrices of at most a few dozen rows: BLAS threads only spin, and in a
    # worker pool they oversubscribe the cores (measured 5× slower REML fits with 2 workers × 2 OpenBLAS threads).
    # Environment variables cannot change this once numpy is loaded; threadpoolctl can.
    with threadpool_limits(limits=1):
        if plan.engine == "laplace":
            results = laplace_analysis(plan, effect_prior).fit_many(datasets, seeds)
        else:
            results = [
                _fit_one(plan, analysis, data, seeds[k], int(trials[k]), keep_idata, idata_dir)
                for k, data in enumerate(datasets)
            ]
    for k, result in enumerate(results):
        for j, name in enumerate(names):
            record = result[name]
            for field in fields:
                out[field][k, j] = float(record[field])
    columns: dict[str, np.ndarray] = {}
    if analysis is not None:
        from trialsim.inference.nuts import compile_count

        columns["worker_pid"] = np.full(batch.trials, os.getpid())
        columns["compiles_in_worker"] = np.full(batch.trials, compile_count())
    valid = ~np.any(out["fit_failed"] == 1, axis=1)
    if plan.engine == "frequentist":
        prob = 1.0 - out["p_value"]  # success when p ≤ 1 − threshold
        second = None
    else:
        prob = out["prob_effect_gt_margin"]
        second = out["prob_effect_gt_margin2"] if plan.decision.clinical_margin is not None else None
    for j, name in enumerate(names):
        for field in ENGINE_COLUMNS.get(plan.engine, ()):
            columns[f"{name}.{field}"] = out[field][:, j]
        columns[f"{name}.diagnostics_ok"] = out["diagnostics_ok"][:, j] == 1
        columns[f"{name}.fit_failed"] = out["fit_failed"][:, j] == 1
    posterior = ComparisonPosterior(
        arms=tuple(names),
        mean=out["estimate"],
        sd=out["sd"],
        ci_low=out["ci_low"],
        ci_high=out["ci_high"],
        prob_gt_margin=np.nan_to_num(prob, nan=0.0),
        df=np.full(batch.trials, np.nan),
        valid=valid,
        prob_gt_clinical=None if second is None else np.nan_to_num(second, nan=0.0),
    )
    return PerTrialResult(posterior, columns)


def _fit_one(plan: AnalysisPlan, analysis, data: TrialData, seed, index: int, keep_idata: int, idata_dir: str | None):
    """One trial with the NUTS model (saving its InferenceData if asked) or the frequentist comparator."""
    from trialsim.inference import frequentist

    if analysis is not None:
        keep = index < keep_idata
        result = analysis.fit(data, seed=seed, keep_idata=keep)
        if keep and result.idata is not None and idata_dir is not None:
            Path(idata_dir).mkdir(parents=True, exist_ok=True)
            result.idata.to_netcdf(str(Path(idata_dir) / f"trial_{index:06d}.nc"))
        return result
    if plan.model == "ancova":
        return frequentist.ancova_ttest(data, plan.decision.margin, ci_level=plan.ci_prob)
    return frequentist.mmrm(data, plan.covariance, plan.decision.margin, ci_level=plan.ci_prob)
