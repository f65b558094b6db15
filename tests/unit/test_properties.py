"""Property tests: any mutation of a valid scenario or plan, and any random document, either loads (and then
simulates with finite results) or raises a clean ScenarioError — nothing else.

The fuzz tests mutate the bundled scenarios and plans (written out with every default, so every field can be hit)
and generate random documents; each is written to a file and loaded as a user would (bounded reading, limited
YAML, schema, physical sanity), 1,000 documents per run in all, derandomized (fixed examples, no database) so CI
is reproducible. Every loaded scenario and conjugate plan is then simulated tiny (2 trials, N ≤ 40).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ANALYSIS, SCENARIOS, scenario_dict
from trialsim.engine.trial import simulate_trial
from trialsim.exceptions import ScenarioError
from trialsim.runner import simulate
from trialsim.spec.loading import check_scenario, load_design, load_plan, validate_model
from trialsim.spec.plan import AnalysisPlan
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


# Fuzzing whole documents ---------------------------------------------------------------------------------------

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def complete_document(model: Scenario | AnalysisPlan) -> dict[str, Any]:
    """A validated file as a complete document (every default written out, so every field can be mutated)."""
    document = model.model_dump(mode="json")
    if isinstance(model, Scenario):
        document["analysis_plan"] = Path(model.analysis_plan).stem  # the bundled plan, found from any folder
    return document


BUNDLED_SCENARIO_DOCUMENTS = [complete_document(load_design(path)[0]) for path in sorted(SCENARIOS.glob("*.yaml"))]
BUNDLED_PLAN_DOCUMENTS = [complete_document(load_plan(path)) for path in sorted(ANALYSIS.glob("*.yaml"))]
SMALL_N = 40
#: Longest rendered problem: values, file names and field paths are shortened, so nothing floods the terminal.
MAX_PROBLEM_CHARS = 1000
ESTIMATE_COLUMNS = (".estimate", ".sd", ".ci_low", ".ci_high", ".prob_effect_gt_margin")


def field_names(model: type) -> list[str]:
    """Every field name of a schema, nested models included."""
    schema = model.model_json_schema()
    names = set(schema["properties"])
    for definition in schema.get("$defs", {}).values():
        names |= set(definition.get("properties", {}))
    return sorted(names)


SCENARIO_KEYS, PLAN_KEYS = field_names(Scenario), field_names(AnalysisPlan)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
hostile_scalars = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        1e308,
        -1e308,
        1e300,
        1e-300,
        -1e-300,
        0,
        0.0,
        -1,
        -1e9,
        1e9,
        1e-9,
        2,
        4,
        0.5,
        0.999999,
        10**30,
        True,
        False,
        None,
        "",
        "[/oops]",
        "[bold red]x",
        "x" * 20_000,
        "/dev/zero",
        "/etc/passwd",
        "scenario.yaml",
        ".",
        "responder",
        "nuts",
        "mnar",
        "cap_enrolment",
        "placebo",
        "ect_augmentation",
    ]
)
scalars = st.one_of(hostile_scalars, st.floats(), st.integers(-(10**6), 10**6), text)
junk = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


hostile_values = st.one_of(scalars, scalars, junk, st.integers(1, 60).map(nested))


def node_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths of every node of a document (the root is ``()``)."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += node_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += node_paths(value, prefix + (index,))
    return paths


#: Scale factors for numbers: half of them plausible, the rest absurd.
FACTORS = [0.5, 0.8, 0.9, 0.99, 1.01, 1.1, 1.5, 2.0, 0.0, 1e-12, 1e-3, 0.1, 10.0, 1e3, 1e12, -1.0]
#: Numbers of the right type that sit at or beyond the edges of what a field means.
EXTREMES = [0, 1e-300, 0.999999, 1.0, 210, 100_000, 1e300, -1e300, math.nan, math.inf, -math.inf]


def mutate_document(data: st.DataObject, document: Any, keys: list[str]) -> Any:
    """One to three random edits: scale a number (mostly plausible, sometimes absurd), set a number to an extreme,
    replace a value by a hostile one, delete a key or item, or add a known or unknown key.

    Places and actions are chosen with a hypothesis-controlled ``Random`` (uniform over the document's nodes;
    ``sampled_from`` would favour the first fields), values with the strategies above."""
    rnd = data.draw(st.randoms(use_true_random=False))
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        paths = node_paths(document)
        numbers = [p for p in paths if type(get(document, p)) in (int, float)]
        action = rnd.choice(["scale"] * 3 + ["extreme"] * 3 + ["replace", "delete", "add"])
        if action in ("scale", "extreme") and numbers:
            path = rnd.choice(numbers)
            old = get(document, path)
            value = old * rnd.choice(FACTORS) if action == "scale" else rnd.choice(EXTREMES)
            document = put(document, path, round(value) if type(old) is int and math.isfinite(value) else value)
        elif action == "add":
            mappings = [p for p in paths if isinstance(get(document, p), dict)]
            if mappings:
                key = rnd.choice(keys) if rnd.random() < 0.7 else data.draw(text)
                get(document, rnd.choice(mappings))[key] = data.draw(hostile_values)
        elif action == "delete":
            path = rnd.choice(paths)
            if path:
                del get(document, path[:-1])[path[-1]]
        else:
            document = put(document, rnd.choice(paths), data.draw(hostile_values))
    return document


def put(document: Any, path: tuple, value: Any) -> Any:
    """The document with the node at ``path`` replaced by ``value`` (the whole document when ``path`` is empty)."""
    if not path:
        return value
    get(document, path[:-1])[path[-1]] = value
    return document


def get(document: Any, path: tuple) -> Any:
    for key in path:
        document = document[key]
    return document


def mutate_text(data: st.DataObject, content: str) -> str:
    """One time in ten, break the YAML text itself: cut it, repeat a line (duplicate keys), or insert a token."""
    if data.draw(st.integers(0, 9)) or not content:  # nine documents in ten stay valid YAML
        return content
    action = data.draw(st.sampled_from(["cut", "repeat", "insert"]))
    at = data.draw(st.integers(0, len(content) - 1))
    if action == "cut":
        return content[:at]
    if action == "repeat":
        lines = content.splitlines(keepends=True)
        line = data.draw(st.integers(0, len(lines) - 1))
        return "".join(lines[: line + 1] + lines[line:])
    return content[:at] + data.draw(st.sampled_from(["&a ", "*a", "<<: *a\n", "{", "- ", "\t", "!!python/none "]))


def write_document(data: st.DataObject, path: Path, document: Any) -> Path:
    path.write_text(mutate_text(data, yaml.safe_dump(document, allow_unicode=True)), encoding="utf-8")
    return path


def load_or_refuse(load):
    """What ``load`` returns, or None after checking it raised a clean ScenarioError (anything else propagates)."""
    try:
        return load()
    except ScenarioError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.message
            assert len(str(problem)) <= MAX_PROBLEM_CHARS, str(problem)[:2000]
        return None


def small(scenario: Scenario) -> Scenario | None:
    """The scenario with every sample size clamped to at most SMALL_N, if it still passes every check."""
    sizes = sorted({min(size, SMALL_N) for size in scenario.sample_sizes})
    document = scenario.model_dump()
    document["sample_size"] = sizes if len(sizes) > 1 else sizes[0]
    clamped, problems = check_scenario(document, "<clamped>")
    return None if problems else clamped


def conjugate_plan_for(scenario: Scenario) -> AnalysisPlan:
    responder = scenario.primary_endpoint.measure == "responder"
    return load_plan("responder_beta_binomial" if responder else "ancova_vague")


def assert_simulates_finite(scenario: Scenario, plan: AnalysisPlan) -> None:
    """Two tiny trials: every per-trial number finite (estimates wherever the analysis was possible; a posterior SD
    may be +inf, as for a Student-t posterior with ≤ 2 degrees of freedom), every patient without a dropout reason
    observed at the endpoint (a NaN outcome would pass as missing data), power finite; a design the evidence
    library cannot resolve is a clean ScenarioError."""
    results = load_or_refuse(lambda: simulate(scenario, plan, trials=2, seed=1, workers=1))
    if results is None:
        return
    trials = results.trials
    numeric = trials.select_dtypes("number")
    estimates = [column for column in numeric if column.endswith(ESTIMATE_COLUMNS)]
    assert np.isfinite(numeric.drop(columns=estimates).to_numpy(float)).all()
    valid = trials["analysis_valid"].to_numpy(bool)
    sds = [column for column in estimates if column.endswith(".sd")]  # +inf: a t posterior with ≤ 2 df
    assert np.isfinite(numeric[estimates].drop(columns=sds).to_numpy(float)[valid]).all()
    assert (numeric[sds].to_numpy(float)[valid] > 0).all()
    dropped = numeric[[column for column in numeric if ".dropout_" in column]].sum(axis=1)
    assert (trials["n_randomised"] - trials["n_completed"] <= dropped).all()
    assert np.isfinite(results.performance()[["power", "power_mcse"]].to_numpy(float)).all()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(FUZZ, max_examples=550)
@given(data=st.data())
def test_fuzzed_scenarios_load_and_simulate_or_refuse(data, workdir):
    document = copy.deepcopy(data.draw(st.sampled_from(BUNDLED_SCENARIO_DOCUMENTS)))
    path = write_document(data, workdir / "scenario.yaml", mutate_document(data, document, SCENARIO_KEYS))
    design = load_or_refuse(lambda: load_design(path))
    if design is not None:
        scenario = small(design[0])
        if scenario is not None:
            assert_simulates_finite(scenario, conjugate_plan_for(scenario))


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzzed_plans_load_and_simulate_or_refuse(data, workdir):
    document = mutate_document(data, copy.deepcopy(data.draw(st.sampled_from(BUNDLED_PLAN_DOCUMENTS))), PLAN_KEYS)
    plan = load_or_refuse(lambda: load_plan(write_document(data, workdir / "plan.yaml", document)))
    if plan is not None and plan.engine == "conjugate":
        name = "ect_augmentation_vs_tau" if plan.model == "responder" else "textbook_two_arm"
        scenario = small(load_design(SCENARIOS / f"{name}.yaml")[0])
        assert_simulates_finite(scenario, plan)


random_documents = st.one_of(
    junk,
    st.dictionaries(st.sampled_from(SCENARIO_KEYS + PLAN_KEYS) | text, hostile_values, max_size=10),
)


@settings(FUZZ, max_examples=150)
@given(data=st.data(), document=random_documents)
def test_random_documents_load_or_refuse(data, document, workdir):
    path = write_document(data, workdir / "random.yaml", document)
    load_or_refuse(lambda: load_design(path))
    load_or_refuse(lambda: load_plan(path))
