"""Scenario and analysis-plan schemas; all validation of user input lives here."""

from trialsim.spec.loading import load_design, load_plan, load_scenario
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

__all__ = ["AnalysisPlan", "Scenario", "load_design", "load_plan", "load_scenario"]
