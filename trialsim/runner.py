"""Run many simulated trials in memory: seeds, chunks, backends, progress; one trial again by its index.

Seed discipline: one master seed → trial k of every design point gets the child
``SeedSequence(seed, spawn_key=(k,))`` (identical to ``SeedSequence(seed).spawn(trials)[k]``), assigned by trial
index and never by worker, so results do not depend on chunk size or worker count. The same trial index uses the
same seed at every design point (common random numbers), which smooths power curves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from trialsim.analyst import PlanAnalyst
from trialsim.backends import open_backend
from trialsim.budget import DEFAULT_BUDGET_MB, check_budget
from trialsim.budget import chunk_size as budget_chunk_size
from trialsim.chunk import Chunk, Job, effect_prior_points, simulate_chunk, trial_seed
from trialsim.decisions import interim_problems
from trialsim.engine.cohort import World
from trialsim.engine.trial import Timeline, interacts, simulate_trial
from trialsim.exceptions import Problem, ScenarioError
from trialsim.inference.data import TrialData
from trialsim.performance import ROW_ORDER
from trialsim.results import SimulationResults
from trialsim.rundir import EXECUTION_COLUMNS
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario
from trialsim.world.truth import responder_rates

#: Called after each finished chunk with the number of trials it held.
ProgressCallback = Callable[[int], None]


def master_seed(seed: int | None) -> int:
    """The run's master seed: the given one, or fresh OS entropy (recorded in every output)."""
    if seed is not None:
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        return int(seed)
    return int(np.random.SeedSequence().entropy)


def plan_chunks(
    sample_sizes: list[int], trials: int, chunk_size: int | list[int], assurance: bool = False
) -> list[Chunk]:
    """Split every design point's trials (and their assurance twins) into chunks of at most ``chunk_size`` (one
    size, or one per design point)."""
    sizes = chunk_size if isinstance(chunk_size, list) else [chunk_size] * len(sample_sizes)
    chunks = []
    for point, size in enumerate(sample_sizes):
        for mode in (True, False) if assurance else (False,):
            for start in range(0, trials, sizes[point]):
                chunks.append(Chunk(point, size, start, min(start + sizes[point], trials), mode))
    return chunks


def check_design(scenario: Scenario, plan: AnalysisPlan) -> World:
    """Problems that need the evidence library or both files: raise one ScenarioError listing them all."""
    problems: list[Problem] = []
    try:
        world = World.of(scenario)
    except ScenarioError as error:
        raise ScenarioError(error.problems) from None
    responder = scenario.primary_endpoint.measure == "responder"
    if responder != (plan.model == "responder"):
        problems.append(
            Problem(
                "",
                "model",
                f"plan '{plan.name}' ({plan.model}) cannot analyse a "
                f"{scenario.primary_endpoint.measure} endpoint; use "
                f"{'a responder' if responder else 'an ancova'} plan",
                plan.model,
                True,
            )
        )
    if plan.engine != "conjugate" and scenario.primary_endpoint.measure in (
        "panss_positive_change",
        "panss_negative_change",
    ):
        problems.append(
            Problem(
                "",
                "primary_endpoint.measure",
                f"the {plan.engine} engine analyses PANSS total change or "
                "responders; use a conjugate plan for subscale endpoints",
                scenario.primary_endpoint.measure,
                True,
            )
        )
    problems += interim_problems(scenario, plan)
    if plan.priors.effect.from_library is not None:
        try:
            effect_prior_points(plan, scenario.population.background)
        except ScenarioError as error:
            problems += [
                replace(
                    p,
                    file=f"analysis plan '{plan.name}'",
                    field="priors.effect.from_library." + (p.field or "intervention"),
                )
                for p in error.problems
            ]
    if scenario.assurance:
        for i, (arm, resolved) in enumerate(zip(scenario.arms, world.arms)):
            if not arm.control and resolved.prior_mean is None:
                problems.append(
                    Problem(
                        "",
                        f"arms[{i}].design_prior",
                        "assurance needs a design prior: give design_prior "
                        "{mean_smd, sd_smd} or an intervention from the evidence library",
                    )
                )
    if problems:
        raise ScenarioError(problems)
    return world


def make_job(
    scenario: Scenario, plan: AnalysisPlan, seed: int, keep_idata: int = 0, idata_dir: str | None = None
) -> Job:
    """Resolve what all chunks share once: the arms against the evidence library (warnings shown here, once), the
    plan's effect prior and the complete-data truth of a responder endpoint."""
    truth = None
    world = check_design(scenario, plan)
    if scenario.primary_endpoint.measure == "responder":
        effects = np.array([arm.effect_total for arm in world.arms])
        dependent = np.array([arm.clozapine_dependent for arm in scenario.arms])
        truth = tuple(responder_rates(scenario, effects, dependent, seed).tolist())
    return Job(
        scenario,
        plan,
        seed,
        world,
        effect_prior_points(plan, scenario.population.background),
        truth,
        n_max=max(scenario.sample_sizes),
        keep_idata=keep_idata,
        idata_dir=idata_dir,
    )


def default_workers() -> int:
    """All cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def run_trials(
    scenario: Scenario,
    plan: AnalysisPlan,
    trials: int,
    seed: int | None = None,
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: ProgressCallback | None = None,
    keep_idata: int = 0,
    idata_dir: str | None = None,
    backend: str = "process",
    scheduler: str | None = None,
    memory_mb: float = DEFAULT_BUDGET_MB,
) -> tuple[pd.DataFrame, int]:
    """Simulate ``trials`` trials at each design point in memory; returns (one row per trial, the master seed).

    Rows are sorted by design point, effect mode and trial index, so the table is identical for any ``workers``,
    ``chunk_size`` and ``backend`` (``process``: a process pool, or this process for one worker; ``dask``: a
    dask.distributed cluster, see :mod:`trialsim.backends`). Chunks are sized to the memory budget
    (:mod:`trialsim.budget`). With a NUTS plan, the InferenceData of trials 0 … ``keep_idata`` − 1 are written
    under ``idata_dir`` (one folder per design point and effect mode) as ArviZ netCDF files. For runs too large
    for memory, or that must survive interruption, use a run directory (:mod:`trialsim.session`).
    """
    if trials < 1:
        raise ValueError("trials must be at least 1")
    check_budget(scenario, memory_mb)
    seed = master_seed(seed)
    workers = default_workers() if workers is None else max(1, workers)
    sizes = [
        chunk_size or budget_chunk_size(scenario, plan, size, trials, workers, memory_mb)
        for size in scenario.sample_sizes
    ]
    chunks = plan_chunks(scenario.sample_sizes, trials, sizes, scenario.assurance)
    job = make_job(scenario, plan, seed, keep_idata, idata_dir)
    frames = []
    pool_workers = workers if len(chunks) > 1 or backend == "dask" else 1
    with open_backend(backend, pool_workers, plan, scheduler) as runner:
        for chunk, frame in runner.run(job, chunks):
            frames.append(frame)
            if progress:
                progress(chunk.stop - chunk.start)
    table = pd.concat(frames, ignore_index=True).sort_values(ROW_ORDER, kind="stable")
    return table.reset_index(drop=True), seed


def rerun_trial(
    scenario: Scenario,
    plan: AnalysisPlan,
    seed: int,
    index: int,
    sample_size: int | None = None,
    *,
    assurance: bool = False,
) -> tuple[TrialData, Timeline, pd.DataFrame]:
    """Trial ``index`` of a run with master ``seed`` simulated again exactly: its per-patient data (randomised
    patients), its timeline of events (with interim looks and a stop) and its row of ``trials.parquet`` (the
    analysis). ``sample_size``: the design point (default the largest); ``assurance``: its assurance twin."""
    sizes = scenario.sample_sizes
    size = sample_size if sample_size is not None else max(sizes)
    if size not in sizes:
        raise ScenarioError(f"sample size {size} is not a design point of the scenario ({sizes})")
    job = make_job(scenario, plan, seed)
    analyst = PlanAnalyst(job, size, index) if interacts(scenario) else None
    data, timeline = simulate_trial(scenario, size, trial_seed(seed, index), analyst=analyst, assurance=assurance)
    row = simulate_chunk(job, Chunk(sizes.index(size), size, index, index + 1, assurance))
    return data, timeline, row.drop(columns=[c for c in EXECUTION_COLUMNS if c in row])


def simulate(
    scenario: Scenario,
    plan: AnalysisPlan,
    trials: int,
    seed: int | None = None,
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: ProgressCallback | None = None,
    keep_idata: int = 0,
    idata_dir: str | None = None,
    backend: str = "process",
    scheduler: str | None = None,
) -> SimulationResults:
    """Simulate, analyse and summarise in memory: the main entry point (see :func:`run_trials` for the
    arguments, and :func:`trialsim.session.open_run` for runs on disk)."""
    table, used_seed = run_trials(
        scenario,
        plan,
        trials,
        seed,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
        keep_idata=keep_idata,
        idata_dir=idata_dir,
        backend=backend,
        scheduler=scheduler,
    )
    return SimulationResults.build(scenario, plan, table, used_seed, trials)
