"""One session of a run directory: open it — a new run, a resumed one, a larger one, or a refusal — simulate the
chunks still missing, and summarise from the parts.

A directory holds one run: its scenario, plan, seed and package versions. A session may continue it
(``resume``: the run was interrupted), grow it (more trials per design point: existing trials are kept, new
indices added) or add rounds to reach a precision target, and refuses anything else before simulating. Because
every trial's seed is its index, the parts of any sequence of sessions hold exactly the rows of one
uninterrupted run of the final size, and trials.parquet and summary.json, computed from them, are identical
(summary.json up to :func:`trialsim.results.comparable`: its creation time and NUTS execution facts).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trialsim.backends import open_backend
from trialsim.budget import DEFAULT_BUDGET_MB, check_budget, chunk_size
from trialsim.chunk import Chunk, Job
from trialsim.exceptions import Problem, ScenarioError, TrialSimError
from trialsim.precision import Precision
from trialsim.results import (
    SimulationResults,
    content_hash,
    make_summary,
    package_versions,
    run_manifest,
    run_record,
)
from trialsim.rundir import FORMAT, FORMAT_VERSION, RunDirectory, segments, write_json
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

DEFAULT_TRIALS = 1000
#: Called with the number of trials a finished chunk held; and with the total a session will simulate.
ProgressCallback = Callable[[int], None]


class RunInterrupted(TrialSimError):
    """A run stopped by Ctrl-C: its finished parts are kept and ``trialsim run ... --resume`` continues it."""

    def __init__(self, directory: Path, done: int, total: int) -> None:
        self.directory, self.done, self.total = directory, done, total
        super().__init__(f"interrupted: {done:,} of {total:,} trials are kept in {directory}")


@dataclass(frozen=True)
class Opening:
    """What a session will do to a run directory (decided before anything is simulated)."""

    directory: RunDirectory
    manifest: dict[str, Any] | None  # None: a new run
    seed: int
    trials: int  # trials per design point to reach (a precision run: the round in progress, or 0)
    precision: Precision | None


def open_run(
    path: str | Path,
    scenario: Scenario,
    plan: AnalysisPlan,
    *,
    trials: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    mcse: float | None = None,
    max_trials: int | None = None,
    memory_mb: float = DEFAULT_BUDGET_MB,
) -> Opening:
    """Check a run directory against the run asked for, without simulating: writable, and empty or holding this
    very run (same scenario, plan, seed and package versions), never shrunk, an unfinished run only with
    ``resume``. ``trials``: per design point (default 1000, or the run's), or with ``mcse`` the trials per round
    of a precision-sized run (``max_trials`` its cap; see :mod:`trialsim.precision`). Every problem is a
    :class:`~trialsim.exceptions.ScenarioError` saying what to do."""
    from trialsim.runner import master_seed

    if max_trials is not None and mcse is None and trials is None:
        raise ScenarioError("--max-trials caps a precision-sized run: give --mcse too")
    check_budget(scenario, memory_mb)
    directory = RunDirectory(path)
    directory.check_writable()
    manifest = directory.read_manifest()
    where = str(directory.path)
    if manifest is None:
        if not directory.is_empty():
            raise ScenarioError(f"--out {where}: not empty and holds no trialsim run (no manifest.json); "
                                "choose a new or empty directory")
        if resume:
            raise ScenarioError(f"--out {where}: nothing to resume (no run here)")
        if mcse is not None:
            precision = Precision.of(mcse, trials or DEFAULT_TRIALS, max_trials)
            return Opening(directory, None, master_seed(seed), 0, precision)
        return Opening(directory, None, master_seed(seed), trials or DEFAULT_TRIALS, None)
    if manifest.get("format") != FORMAT:
        raise ScenarioError(f"--out {where}: holds results of an older trialsim without a run record; choose "
                            "another directory")
    problems = _differences(manifest, scenario, plan, seed, where)
    recorded = Precision(**manifest["precision"]) if manifest.get("precision") else None
    precision = recorded
    if mcse is not None or (recorded is not None and max_trials is not None):
        rounds = trials or (recorded.round_trials if recorded is not None else DEFAULT_TRIALS)
        precision = Precision.of(mcse if mcse is not None else recorded.mcse, rounds, max_trials)
    if recorded is not None and precision.round_trials != recorded.round_trials:
        problems.append(Problem(where, "--trials", f"this precision-sized run adds rounds of "
                                f"{recorded.round_trials} trials per design point", precision.round_trials, True))
    elif recorded is not None and mcse is None and trials is not None and trials != recorded.round_trials:
        problems.append(Problem(where, "--trials", f"this run is sized by precision in rounds of "
                                f"{recorded.round_trials}; give --mcse to change its target", trials, True))
    if problems:
        raise ScenarioError(problems)
    if manifest.get("status") != "complete" and not resume:
        done = directory.trials_done(scenario.sample_sizes, scenario.assurance)
        raise ScenarioError(
            f"--out {where}: holds an unfinished run ({manifest.get('status')}, {done} of {manifest['trials']} "
            "trials per design point done); continue it with --resume, or choose another directory"
        )
    highest = directory.highest_trial()
    target = manifest["trials"] if trials is None or precision is not None else trials
    if target < highest:
        raise ScenarioError(f"--trials {target}: {where} already holds {highest} trials per design point; a run "
                            "grows, it never shrinks")
    return Opening(directory, manifest, manifest["seed"], target, precision)


def _differences(
    manifest: dict[str, Any], scenario: Scenario, plan: AnalysisPlan, seed: int | None, where: str
) -> list[Problem]:
    """Why the run in a directory is not the run asked for (empty when it is)."""
    problems = []
    for kind, model, field in (("scenario", scenario, "scenario_hash"), ("plan", plan, "plan_hash")):
        if manifest.get(field) != content_hash(model):
            name = (manifest.get(kind) or {}).get("name", "?")
            problems.append(Problem(where, kind, f"the directory holds a run of {kind} '{name}' "
                                    f"({manifest.get(field)}), not '{model.name}' ({content_hash(model)}) as given; "
                                    "use another --out"))
    if seed is not None and seed != manifest.get("seed"):
        problems.append(Problem(where, "--seed", f"the directory holds the run of seed {manifest.get('seed')}; "
                                "omit --seed to continue it, or use another --out", seed, True))
    here = package_versions(plan)
    there = manifest.get("versions", {})
    for name in sorted(set(here) | set(there)):
        if here.get(name) != there.get(name):
            problems.append(Problem(where, "versions", f"{name} {here.get(name)} here, {there.get(name)} in the "
                                    "run: its numbers would not be reproduced; install the run's versions or use "
                                    "another --out"))
    return problems


def run_session(
    opening: Opening,
    scenario: Scenario,
    plan: AnalysisPlan,
    *,
    workers: int = 1,
    backend: str = "process",
    scheduler: str | None = None,
    memory_mb: float = DEFAULT_BUDGET_MB,
    keep_idata: int = 0,
    progress: ProgressCallback | None = None,
    total: ProgressCallback | None = None,
    sources: dict[str, Any] | None = None,
    command: list[str] | None = None,
) -> SimulationResults:
    """Simulate what the run still needs and write trials.parquet and summary.json from its parts (see
    :func:`open_run`). Ctrl-C raises :class:`RunInterrupted` once the workers are stopped, the finished parts
    kept and the manifest marked interrupted."""
    from trialsim.runner import make_job

    directory, seed, precision = opening.directory, opening.seed, opening.precision
    job = make_job(scenario, plan, seed, keep_idata, str(directory.idata_dir) if keep_idata else None)
    manifest = opening.manifest or _new_manifest(scenario, plan, seed, sources, command)
    sizes, assurance = scenario.sample_sizes, scenario.assurance
    with directory.lock():
        manifest.update(trials=opening.trials, status="running",
                        precision=precision.as_dict() if precision is not None else None)
        manifest["sessions"].append({
            "started_at": _now(), "command": command, "backend": backend, "workers": workers,
            "scheduler": scheduler, "trials": opening.trials, "pid": os.getpid(),
        })
        directory.write_manifest(manifest)
        directory.remove_temporary()
        _remove_unfinished_idata(directory)
        simulation = _Simulation(directory, job, workers, backend, scheduler, memory_mb, progress, total)
        try:
            with simulation:
                if precision is None:
                    simulation.reach(opening.trials)
                    trials = opening.trials
                else:
                    trials = simulation.reach_precision(precision, manifest, opening.trials)
            results = _finish(directory, scenario, plan, seed, trials, precision)
        except BaseException as error:
            manifest["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            manifest["sessions"][-1]["ended_at"] = _now()
            directory.write_manifest(manifest)
            if isinstance(error, KeyboardInterrupt):
                done = sum(min(stop, manifest["trials"]) - min(start, manifest["trials"])
                           for spans in directory.covered().values() for start, stop in spans)
                planned = manifest["trials"] * len(segments(sizes, assurance))
                raise RunInterrupted(directory.path, done, planned) from None
            raise
        manifest.update(status="complete", trials=trials)
        manifest["sessions"][-1]["ended_at"] = _now()
        directory.write_manifest(manifest)
    return results


class _Simulation:
    """Chunks run on one backend for a session (opened only when there is something to simulate)."""

    def __init__(self, directory: RunDirectory, job: Job, workers: int, backend: str, scheduler: str | None,
                 memory_mb: float, progress: ProgressCallback | None, total: ProgressCallback | None) -> None:
        self.directory, self.job, self.workers, self.backend_name = directory, job, workers, backend
        self.scheduler, self.memory_mb, self.progress, self.total = scheduler, memory_mb, progress, total
        self.backend = None

    def __enter__(self) -> _Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.backend is not None:
            self.backend.__exit__(*exc)

    def reach(self, trials: int) -> None:
        """Simulate the chunks missing for ``trials`` trials per design point, saving each as a part."""
        scenario, plan = self.job.scenario, self.job.plan
        sizes = [chunk_size(scenario, plan, n, trials, self.workers, self.memory_mb) for n in scenario.sample_sizes]
        chunks: list[Chunk] = self.directory.missing_chunks(scenario.sample_sizes, scenario.assurance, trials, sizes)
        if self.total is not None:
            self.total(sum(chunk.stop - chunk.start for chunk in chunks))
        if not chunks:
            return
        if self.backend is None:
            workers = self.workers if len(chunks) > 1 or self.backend_name == "dask" else 1
            self.backend = open_backend(self.backend_name, workers, plan, self.scheduler).__enter__()
        for chunk, rows in self.backend.run(self.job, chunks):
            self.directory.write_part(chunk, rows)
            if self.progress is not None:
                self.progress(chunk.stop - chunk.start)

    def reach_precision(self, precision: Precision, manifest: dict[str, Any], trials: int) -> int:
        """Rounds of trials until the precision target is met or the cap reached; returns the trials per design
        point (the round in progress, if any, is finished first)."""
        scenario = self.job.scenario
        control = scenario.arms[scenario.control_index].name
        self.reach(trials)
        while True:
            if trials > 0:
                points, _ = self.directory.summarise(scenario.sample_sizes, scenario.assurance, control,
                                                     [arm.name for arm in scenario.arms])
                if precision.reached(points) or trials >= precision.max_trials:
                    return trials
            trials = precision.next_round(trials)
            manifest["trials"] = trials
            self.directory.write_manifest(manifest)
            self.reach(trials)


def _finish(
    directory: RunDirectory, scenario: Scenario, plan: AnalysisPlan, seed: int, trials: int,
    precision: Precision | None,
) -> SimulationResults:
    """trials.parquet and then summary.json, computed from the parts in one pass."""
    directory.check_complete(scenario.sample_sizes, scenario.assurance, trials)
    control = scenario.arms[scenario.control_index].name
    points, nuts = directory.summarise(
        scenario.sample_sizes, scenario.assurance, control, [arm.name for arm in scenario.arms],
        metadata=run_record(scenario, plan, seed, trials),
    )
    record = precision.record(points, trials) if precision is not None else None
    summary = make_summary(scenario, plan, points, seed, trials, nuts=nuts, precision=record)
    write_json(directory.summary_path, summary)
    return SimulationResults(None, summary, scenario, plan, directory=directory.path)


def _new_manifest(
    scenario: Scenario, plan: AnalysisPlan, seed: int, sources: dict[str, Any] | None, command: list[str] | None
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **run_manifest(scenario, plan),
        "scenario_hash": content_hash(scenario),
        "plan_hash": content_hash(plan),
        "sources": sources or {},
        "seed": seed,
        "trials": 0,
        "precision": None,
        "versions": package_versions(plan),
        "command": command,
        "started_at": _now(),
        "status": "running",
        "sessions": [],
    }


def _remove_unfinished_idata(directory: RunDirectory) -> None:
    """InferenceData files of trials whose chunk never finished (a kill mid-chunk): they are written again."""
    if not directory.idata_dir.is_dir():
        return
    covered = directory.covered()
    for folder in directory.idata_dir.iterdir():
        point, _, mode = folder.name.removeprefix("design_point_").partition("-n")
        mode = mode.rpartition("-")[2]
        spans = covered.get((int(point), mode), []) if point.isdigit() else []
        for path in folder.glob("trial_*.nc"):
            index = int(path.stem.removeprefix("trial_"))
            if not any(start <= index < stop for start, stop in spans):
                path.unlink()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["DEFAULT_TRIALS", "Opening", "RunInterrupted", "open_run", "run_session"]
