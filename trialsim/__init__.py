"""trialsim: simulate clinical trials in treatment-resistant schizophrenia before anyone enrols a patient.

Public API (see README):

    scenario, plan = load_design("scenarios/clozapine_augmentation.yaml")
    results = simulate(scenario, plan, trials=1000, seed=1)
    results.performance()          # one row per design point and comparison
    results.save("out/")           # summary.json + trials.parquet

The names below are imported on first use, so ``trialsim --version`` and ``trialsim list`` do not pay for numpy,
scipy and pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_EXPORTS = {
    "simulate_trial": "trialsim.engine.trial",
    "simulate_trials": "trialsim.engine.trial",
    "ScenarioError": "trialsim.exceptions",
    "SimulationError": "trialsim.exceptions",
    "StatisticalWarning": "trialsim.exceptions",
    "TrialSimError": "trialsim.exceptions",
    "TrialBatch": "trialsim.inference.data",
    "TrialData": "trialsim.inference.data",
    "check_performance": "trialsim.performance",
    "SimulationResults": "trialsim.results",
    "run_trials": "trialsim.runner",
    "simulate": "trialsim.runner",
    "AnalysisPlan": "trialsim.spec",
    "Scenario": "trialsim.spec",
    "load_design": "trialsim.spec",
    "load_plan": "trialsim.spec",
    "load_scenario": "trialsim.spec",
}

__all__ = [
    "AnalysisPlan",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "SimulationResults",
    "StatisticalWarning",
    "TrialBatch",
    "TrialData",
    "TrialSimError",
    "check_performance",
    "load_design",
    "load_plan",
    "load_scenario",
    "run_trials",
    "simulate",
    "simulate_trial",
    "simulate_trials",
]

if TYPE_CHECKING:
    from trialsim.engine.trial import simulate_trial, simulate_trials
    from trialsim.exceptions import ScenarioError, SimulationError, StatisticalWarning, TrialSimError
    from trialsim.inference.data import TrialBatch, TrialData
    from trialsim.performance import check_performance
    from trialsim.results import SimulationResults
    from trialsim.runner import run_trials, simulate
    from trialsim.spec import AnalysisPlan, Scenario, load_design, load_plan, load_scenario


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trialsim' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
