"""The README's field tables against the models and the outputs: a field in a model but not in its table (or the
other way round), or a trials.parquet column nobody documents, fails here."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from tests.conftest import ROOT
from tests.unit.bundled_runs import bundled_runs
from trialsim.spec.field_docs import field_paths, summary_table
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Arm, Scenario

README = (ROOT / "README.md").read_text(encoding="utf-8")


def table_after(marker: str) -> list[list[str]]:
    """The cells of each body row of the first markdown table after the line starting with ``marker``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    first = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def named(cell: str) -> list[str]:
    """Names in backticks of a first cell; ``.x`` continues the previous name's parent (``a.b``, ``.c`` → a.c)."""
    names: list[str] = []
    for token in re.findall(r"`([^`]+)`", cell):
        if token.startswith(".") and names:
            token = names[-1].rsplit(".", 1)[0] + token
        names.append(token)
    return names


def backticked_words(text: str) -> set[str]:
    """Identifiers written inside backticks anywhere in a row."""
    return {word for code in re.findall(r"`([^`]+)`", text) for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)}


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def field_tree(model: type[BaseModel], prefix: str = "", stop: frozenset[str] = frozenset()) -> dict[str, bool]:
    """Every field path of ``model`` (nested models, list items and dict values entered) → whether it is a leaf;
    paths in ``stop`` are not entered."""
    tree: dict[str, bool] = {}
    for name, field in model.model_fields.items():
        path = prefix + name
        inner = [] if path in stop else _models_in(field.annotation)
        tree[path] = not inner
        for nested in inner:
            tree.update(field_tree(nested, path + ".", stop))
    return tree


def check_table(rows: list[list[str]], model: type[BaseModel], stop: frozenset[str] = frozenset()) -> list[str]:
    """Disagreements between a README field table and a model, both ways."""
    tree = field_tree(model, stop=stop)
    documented = {name: " ".join(row) for row in rows for name in named(row[0])}
    problems = [f"README names {name}, not a field of {model.__name__}" for name in documented if name not in tree]
    for path, leaf in tree.items():
        if not leaf or path in documented:
            continue
        parts = path.split(".")
        ancestors = [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
        row = next((documented[a] for a in ancestors if a in documented), None)
        depth = next((len(a.split(".")) for a in ancestors if a in documented), 0)
        if row is None or not set(parts[depth:]) <= backticked_words(row):
            problems.append(f"{model.__name__} field {path} is not in the README table")
    return problems


def test_scenario_table_matches_the_model():
    rows = table_after("## Scenario files")
    assert check_table(rows, Scenario, stop=frozenset({"arms"})) == []


def test_arm_table_matches_the_model():
    assert check_table(table_after("Arm fields:"), Arm) == []


def test_plan_table_matches_the_model():
    assert check_table(table_after("## Analysis-plan files"), AnalysisPlan) == []


def test_a_table_check_fails_on_either_side():
    rows = [["`name`, `description`", "", ""], ["`model`", "", ""], ["`bogus`", "", ""]]
    problems = check_table(rows, AnalysisPlan)
    assert "README names bogus, not a field of AnalysisPlan" in problems
    assert "AnalysisPlan field engine is not in the README table" in problems


def test_summary_table_is_generated_from_the_model():
    assert summary_table() in README, "run: python -m trialsim.spec.field_docs README.md"


def _observed_paths(value: typing.Any, prefix: str, out: set[str], model: type[BaseModel]) -> None:
    """Paths of summary.json in the notation of :func:`field_paths` (``[]`` for list items, ``<name>`` for keys
    of a mapping whose values are documented records)."""
    if isinstance(value, list):
        for item in value:
            _observed_paths(item, prefix + "[]", out, model)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        if path not in schema_paths(model):
            path = f"{prefix}.<name>"
            if path not in schema_paths(model):
                continue  # keys of an open mapping ({arm: {event: ...}})
        out.add(path)
        _observed_paths(item, path, out, model)


def schema_paths(model: type[BaseModel]) -> set[str]:
    """The documented paths and their ``.<name>`` prefixes (the keys of mappings of records)."""
    paths = set(field_paths(model))
    for path in list(paths):
        start = 0
        while (found := path.find(".<name>", start)) >= 0:
            start = found + len(".<name>")
            paths.add(path[:start])
    return paths


#: Parts of summary.json written only by NUTS plans (checked in tests/mcmc/test_console_nuts.py).
NUTS_ONLY = {"nuts", "nuts.worker_processes", "nuts.compilations"}


def test_every_summary_field_is_output_by_some_run():
    """A field documented (and modelled) but never written, like the old ``analysis.population``, fails."""
    from trialsim.spec.summary import Summary

    seen: set[str] = set()
    for run in bundled_runs():
        _observed_paths(run.summary, "", seen, Summary)
    _observed_paths(precision_run_with_assurance().summary, "", seen, Summary)
    assert set(field_paths(Summary)) - NUTS_ONLY - seen == set()


def precision_run_with_assurance():
    """A precision-sized run (``precision``) of a three-arm design with assurance (P(any arm) under the priors)."""
    import tempfile
    import warnings

    from trialsim.overrides import with_overrides
    from trialsim.session import open_run, run_session
    from trialsim.spec.loading import load_design

    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as directory:
        warnings.simplefilter("ignore")
        scenario, plan = load_design("three_arm_adaptive")
        scenario = with_overrides(scenario, ["assurance=true"], "three_arm_adaptive")
        opening = open_run(directory, scenario, plan, trials=8, seed=1, mcse=0.2)
        return run_session(opening, scenario, plan)


# --- trials.parquet -----------------------------------------------------------------------------------------------

PLACEHOLDERS = {"<reason>": r"[A-Za-z0-9_]+", "<event>": r"[A-Za-z0-9_]+", "<k>": r"\d+"}
#: trials.parquet columns only NUTS plans write (checked in tests/mcmc/test_console_nuts.py).
NUTS_COLUMNS = {"<arm>.rhat_max", "<arm>.ess_bulk_min", "<arm>.ess_tail_min", "<arm>.divergences"}


def column_patterns() -> list[str]:
    return [name for row in table_after("`trials.parquet`") for name in named(row[0])]


def pattern_regex(pattern: str, arms: list[str], resources: list[str]) -> re.Pattern[str]:
    text = re.escape(pattern)
    for placeholder, regex in PLACEHOLDERS.items():
        text = text.replace(re.escape(placeholder), regex)
    text = text.replace(re.escape("<arm>"), "(?:" + "|".join(map(re.escape, arms)) + ")")
    text = text.replace(re.escape("<resource>"), "(?:" + "|".join(map(re.escape, resources or ["$^"])) + ")")
    return re.compile(text)


def test_trials_columns_are_documented_both_ways():
    patterns = column_patterns()
    assert patterns, "the README has a table of trials.parquet columns"
    used: set[str] = set()
    undocumented = []
    for run in bundled_runs():
        arms = [arm["name"] for arm in run.summary["arms"]]
        resources = sorted(run.scenario.resources)
        for column in run.trials.columns:
            matches = [p for p in patterns if pattern_regex(p, arms, resources).fullmatch(column)]
            used.update(matches)
            if not matches:
                undocumented.append(f"{run.summary['scenario']}: {column}")
    assert undocumented == []
    assert set(patterns) - NUTS_COLUMNS - used == set()
