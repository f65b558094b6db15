"""Property test: any mutation of a valid scenario either loads (and then simulates) or raises ScenarioError."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import scenario_dict
from trialsim.engine.trial import simulate_trial
from trialsim.exceptions import ScenarioError
from trialsim.spec.loading import validate_model
from trialsim.spec.scenario import Scenario

PATHS = [
    ("sample_size",),
    ("visits_weeks",),
    ("allocation",),
    ("visit_window_days",),
    ("primary_endpoint", "week"),
    ("recruitment", "sites"),
    ("recruitment", "rate_per_site_per_week"),
    ("recruitment", "rate_cv"),
    ("recruitment", "screen_failure"),
    ("recruitment", "block_size"),
    ("recruitment", "activation_weeks"),
    ("dropout", "fraction"),
    ("outcome", "sd_change"),
    ("outcome", "visit_correlation"),
    ("population", "inclusion_min_panss"),
    ("arms", 1, "effect", "smd"),
    ("arms", 0, "control"),
]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 300),
    st.floats(-5, 300, allow_nan=False),
    st.text(max_size=5),
    st.lists(st.floats(0, 30, allow_nan=False), max_size=5),
    st.lists(st.integers(0, 4), max_size=4),
)


def mutate(data, path, value):
    data = copy.deepcopy(data)
    data.setdefault("dropout", {})
    data.setdefault("outcome", {})
    data.setdefault("population", {})
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_mutated_scenarios_load_or_raise_scenario_error(mutations):
    data = scenario_dict(sample_size=24)
    for path, value in mutations:
        data = mutate(data, path, value)
    try:
        scenario = validate_model(Scenario, data, "<hypothesis>")
    except ScenarioError as error:
        assert error.problems and all(p.message for p in error.problems)
        return
    for size in scenario.sample_sizes[:1]:
        trial, _ = simulate_trial(scenario, min(size, 400), np.random.SeedSequence(0))
        assert trial.n == min(size, 400)
        assert np.all(np.isfinite(trial.baseline))
