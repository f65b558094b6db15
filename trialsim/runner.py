"""Run many simulated trials: seeds, chunks, worker processes, progress.

Seed discipline: one master seed → trial k of every design point gets the child
``SeedSequence(seed, spawn_key=(k,))`` (identical to ``SeedSequence(seed).spawn(trials)[k]``), assigned by trial
index and never by worker, so results do not depend on chunk size or worker count. The same trial index uses the
same seed at every design point (common random numbers), which smooths power curves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context

import numpy as np
import pandas as pd

from trialsim.engine.trial import simulate_trials
from trialsim.inference.conjugate import analyse_ancova
from trialsim.results import SimulationResults
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Called after each finished chunk with the number of trials it held.
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class Chunk:
    """A contiguous block of trial indices of one design point."""

    design_point: int
    sample_size: int
    start: int
    stop: int


def master_seed(seed: int | None) -> int:
    """The run's master seed: the given one, or fresh OS entropy (recorded in every output)."""
    if seed is not None:
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        return int(seed)
    return int(np.random.SeedSequence().entropy)


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """The child seed of trial ``trial``: ``SeedSequence(seed).spawn(...)[trial]`` without spawning the others."""
    return np.random.SeedSequence(seed, spawn_key=(trial,))


def simulate_chunk(scenario: Scenario, plan: AnalysisPlan, chunk: Chunk, seed: int) -> pd.DataFrame:
    """Simulate and analyse the trials of one chunk; one row per trial."""
    seeds = [trial_seed(seed, index) for index in range(chunk.start, chunk.stop)]
    batch, _ = simulate_trials(scenario, chunk.sample_size, seeds)
    completed = batch.endpoint_observed
    frame = pd.DataFrame(
        {
            "design_point": chunk.design_point,
            "sample_size": chunk.sample_size,
            "trial": np.arange(chunk.start, chunk.stop),
            "n_screened": batch.screened,
            "n_randomised": batch.arm.shape[1],
            "n_completed": completed.sum(axis=1),
            "dropout_fraction": 1.0 - completed.mean(axis=1),
            "recruitment_weeks": batch.randomised_week.max(axis=1),
            "duration_weeks": batch.end_week,
        }
    )
    for a, name in enumerate(batch.arm_names):
        in_arm = batch.arm == a
        frame[f"{name}.n_randomised"] = in_arm.sum(axis=1)
        frame[f"{name}.n_completed"] = (in_arm & completed).sum(axis=1)
    posterior = analyse_ancova(batch, plan)
    truth = scenario.effects_points()
    arm_index = {arm.name: i for i, arm in enumerate(scenario.arms)}
    for j, arm in enumerate(posterior.arms):
        frame[f"{arm}.true_effect"] = truth[arm_index[arm]]
        frame[f"{arm}.estimate"] = posterior.mean[:, j]
        frame[f"{arm}.sd"] = posterior.sd[:, j]
        frame[f"{arm}.ci_low"] = posterior.ci_low[:, j]
        frame[f"{arm}.ci_high"] = posterior.ci_high[:, j]
        frame[f"{arm}.prob_effect_gt_margin"] = posterior.prob_gt_margin[:, j]
        frame[f"{arm}.success"] = posterior.prob_gt_margin[:, j] >= plan.decision.threshold
    frame["analysis_valid"] = posterior.valid
    return frame


def plan_chunks(sample_sizes: list[int], trials: int, chunk_size: int) -> list[Chunk]:
    """Split every design point's trials into chunks of at most ``chunk_size``."""
    chunks = []
    for point, size in enumerate(sample_sizes):
        for start in range(0, trials, chunk_size):
            chunks.append(Chunk(point, size, start, min(start + chunk_size, trials)))
    return chunks


def _worker_init() -> None:
    # One thread per worker process: the parallelism is across trials.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def _run_chunks(
    scenario: Scenario,
    plan: AnalysisPlan,
    chunks: list[Chunk],
    seed: int,
    workers: int,
    progress: ProgressCallback | None,
) -> Iterator[pd.DataFrame]:
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            frame = simulate_chunk(scenario, plan, chunk, seed)
            if progress:
                progress(chunk.stop - chunk.start)
            yield frame
        return
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=get_context(method), initializer=_worker_init) as pool:
        futures = {pool.submit(simulate_chunk, scenario, plan, chunk, seed): chunk for chunk in chunks}
        for future in as_completed(futures):
            chunk = futures[future]
            if progress:
                progress(chunk.stop - chunk.start)
            yield future.result()


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
) -> tuple[pd.DataFrame, int]:
    """Simulate ``trials`` trials at each design point; returns (one row per trial, the master seed used).

    Rows are sorted by design point and trial index, so the table is identical for any ``workers`` and
    ``chunk_size``.
    """
    if trials < 1:
        raise ValueError("trials must be at least 1")
    seed = master_seed(seed)
    workers = default_workers() if workers is None else max(1, workers)
    if chunk_size is None:
        # Enough chunks to balance the pool and show progress, large enough to amortise batching.
        chunk_size = max(25, min(500, -(-trials // (4 * workers))))
    chunks = plan_chunks(scenario.sample_sizes, trials, chunk_size)
    frames = list(_run_chunks(scenario, plan, chunks, seed, workers, progress))
    table = pd.concat(frames, ignore_index=True).sort_values(["design_point", "trial"], kind="stable")
    return table.reset_index(drop=True), seed


def simulate(
    scenario: Scenario,
    plan: AnalysisPlan,
    trials: int,
    seed: int | None = None,
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> SimulationResults:
    """Simulate, analyse and summarise: the main entry point (see :func:`run_trials` for the arguments)."""
    table, used_seed = run_trials(
        scenario, plan, trials, seed, workers=workers, chunk_size=chunk_size, progress=progress
    )
    return SimulationResults.build(scenario, plan, table, used_seed, trials)
