"""The memory budget of a chunk: how many trials a worker simulates at once, and designs that cannot fit.

The engine's largest arrays are (trials, patients, visits) float64 — PANSS total and subscales, visit times,
trajectories, their normals — about 13 to 28 of them at once (108–222 bytes per patient-visit measured on the
bundled scenarios, ``benchmarks/bench_memory.py``). A chunk is budgeted at :data:`BYTES_PER_PATIENT_VISIT` per
patient-visit per trial, and its size is capped so that a worker's chunk stays within the budget. A design whose
single trial exceeds the budget is refused before anything is simulated, with the memory it would need.
"""

from __future__ import annotations

from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Budgeted bytes per patient and visit of a simulated trial (32 float64 arrays; measured at most 222).
BYTES_PER_PATIENT_VISIT = 256
#: Default memory budget of one worker's chunk (MB); ``--memory-mb`` changes it.
DEFAULT_BUDGET_MB = 512
MB = 1024 * 1024


def trial_bytes(scenario: Scenario, sample_size: int) -> int:
    """Budgeted bytes of one simulated trial of ``sample_size`` patients."""
    return BYTES_PER_PATIENT_VISIT * sample_size * len(scenario.visits_weeks)


def check_budget(scenario: Scenario, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
    """Refuse a design whose single trial cannot fit the budget (every design point checked, all listed)."""
    problems = []
    for size in scenario.sample_sizes:
        need = trial_bytes(scenario, size)
        if need > budget_mb * MB:
            problems.append(
                Problem(
                    "", "sample_size",
                    f"one trial of {size:,} patients × {len(scenario.visits_weeks)} visits needs about "
                    f"{need / MB:,.0f} MB ({BYTES_PER_PATIENT_VISIT} bytes per patient-visit), more than the memory "
                    f"budget of {budget_mb:,.0f} MB per worker (--memory-mb)",
                    size, True,
                )
            )
    if problems:
        raise ScenarioError(problems)


def chunk_size(
    scenario: Scenario, plan: AnalysisPlan, sample_size: int, trials: int, workers: int,
    budget_mb: float = DEFAULT_BUDGET_MB,
) -> int:
    """Trials per chunk at one design point: enough chunks to balance the workers and show progress, large enough
    to amortise batching (per-trial engines gain nothing from large chunks and want finer progress), and within
    the memory budget."""
    smallest, largest = (25, 500) if plan.engine == "conjugate" else (4, 50)
    size = max(smallest, min(largest, -(-trials // (4 * max(1, workers)))))
    fits = int(budget_mb * MB // trial_bytes(scenario, sample_size))
    return max(1, min(size, fits))
