"""trialsim: simulate clinical trials in treatment-resistant schizophrenia before anyone enrols a patient.

Public API (see README):

    scenario, plan = load_design("scenarios/clozapine_augmentation.yaml")
    results = simulate(scenario, plan, trials=1000, seed=1)
    results.performance()          # one row per design point and comparison
    results.save("out/")           # summary.json + trials.parquet
"""

from trialsim.engine.trial import simulate_trial, simulate_trials
from trialsim.exceptions import ScenarioError, SimulationError, StatisticalWarning, TrialSimError
from trialsim.inference.data import TrialBatch, TrialData
from trialsim.performance import check_performance
from trialsim.results import SimulationResults
from trialsim.runner import run_trials, simulate
from trialsim.spec import AnalysisPlan, Scenario, load_design, load_plan, load_scenario

__version__ = "0.1.0"

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
