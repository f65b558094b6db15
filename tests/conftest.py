"""Shared fixtures: bundled files and small scenario builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trialsim.spec.loading import validate_model
from trialsim.spec.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
ANALYSIS = ROOT / "analysis"


def scenario_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid two-arm scenario as a plain dict; keyword arguments replace top-level fields."""
    base: dict[str, Any] = {
        "name": "unit",
        "arms": [{"name": "placebo", "control": True}, {"name": "drug", "effect": {"points": 6.0}}],
        "visits_weeks": [0, 2, 4, 6],
        "primary_endpoint": {"week": 6},
        "recruitment": {"sites": 5, "rate_per_site_per_week": 1.0},
        "sample_size": 40,
        "analysis_plan": "ancova_vague",
    }
    base.update(overrides)
    return base


def make_scenario(**overrides: Any) -> Scenario:
    """A validated scenario built from :func:`scenario_dict`."""
    return validate_model(Scenario, scenario_dict(**overrides), "<test>")


@pytest.fixture
def vague_plan():
    from trialsim.spec.loading import load_plan

    return load_plan(ANALYSIS / "ancova_vague.yaml")
