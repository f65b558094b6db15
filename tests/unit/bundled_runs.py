"""Small runs of bundled designs that between them produce every optional part of summary.json and every kind
of trials.parquet column (interim looks, adaptive allocation, assurance, resources, responders, monitoring, a
per-trial engine), shared by the schema, README and console tests (simulated once per test session)."""

from __future__ import annotations

import warnings
from functools import lru_cache

from trialsim.results import SimulationResults

#: (scenario, plan or None for the scenario's own): what each run adds.
DESIGNS = (
    ("two_arm_group_sequential", None),  # interim looks, efficacy and futility stops, thresholds
    ("three_arm_adaptive", None),  # several arms, arm dropping, response-adaptive shares
    ("aripiprazole_augmentation", None),  # assurance
    ("rtms_vs_sham_limited_chairs", None),  # treatment resources
    ("ect_augmentation_vs_tau", None),  # responder endpoint
    ("clozapine_initiation_monitoring", None),  # monitoring, neutropenia and myocarditis
    ("textbook_two_arm", "ancova_ttest"),  # a per-trial engine: p-values, diagnostics, failed fits
)
TRIALS = 8


@lru_cache(maxsize=1)
def bundled_runs() -> tuple[SimulationResults, ...]:
    """The runs of :data:`DESIGNS`, :data:`TRIALS` trials per design point, seed 1, in process."""
    from trialsim.runner import simulate
    from trialsim.spec.loading import load_design

    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for scenario, plan in DESIGNS:
            runs.append(simulate(*load_design(scenario, plan), TRIALS, 1, workers=1))
    return tuple(runs)
