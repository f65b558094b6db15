"""Load scenario and analysis-plan files: bounded reading, limited safe YAML, pydantic validation and physical
sanity checks, every problem of a scenario and its analysis plan reported at once."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from trialsim.exceptions import PLACE_CHARS, Problem, ScenarioError, shorten
from trialsim.spec.base import ConsistencyError
from trialsim.spec.input_file import read_text
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.safe_yaml import parse_yaml
from trialsim.spec.sanity import scenario_sanity
from trialsim.spec.scenario import Scenario

Model = TypeVar("Model", bound=BaseModel)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Where bundled files live: the repository checkout (editable install) or inside the wheel.
BUNDLED_DIRS = {
    "scenarios": [PACKAGE_DIR.parent / "scenarios", PACKAGE_DIR / "bundled" / "scenarios"],
    "analysis": [PACKAGE_DIR.parent / "analysis", PACKAGE_DIR / "bundled" / "analysis"],
}

_PYDANTIC_TAG = re.compile(r"[\w-]+\[.*\]")
SCENARIO, PLAN = "scenario", "analysis plan"
_ARTICLE = {SCENARIO: "a scenario", PLAN: "an analysis plan"}
_SHARED_FIELDS = set(Scenario.model_fields) & set(AnalysisPlan.model_fields)  # name, description
_OWN_FIELDS = {
    SCENARIO: set(Scenario.model_fields) - _SHARED_FIELDS,
    PLAN: set(AnalysisPlan.model_fields) - _SHARED_FIELDS,
}


def read_document(path: Path) -> Any:
    """The YAML document of a file: bounded reading, the limited safe loader; problems raise ScenarioError."""
    return parse_yaml(read_text(path), str(path))


def _other(kind: str) -> str:
    return PLAN if kind == SCENARIO else SCENARIO


def _keys(data: dict[Any, Any]) -> set[str]:
    return {key for key in data if isinstance(key, str)}


def _looks_like(data: Any, kind: str) -> bool:
    """A mapping with at least as many of ``kind``'s own fields as of the other kind's, and some field of it."""
    if not isinstance(data, dict):
        return False
    keys = _keys(data)
    own, other = len(keys & _OWN_FIELDS[kind]), len(keys & _OWN_FIELDS[_other(kind)])
    return own >= other and (own > 0 or bool(keys & _SHARED_FIELDS))


def _refusal(data: Any, kind: str | None) -> str:
    """Why ``data`` is not a file of ``kind`` (None: of either kind), naming only our field names, never the
    file's contents."""
    wanted = _ARTICLE[kind] if kind else "a scenario or an analysis plan"
    subject = f"is not {wanted}" if kind else "is neither a scenario nor an analysis plan"
    if data is None:
        return f"file is empty; expected a YAML mapping of the fields of {wanted}"
    if not isinstance(data, dict):
        return f"{subject}: expected a YAML mapping of fields, got {type(data).__name__}"
    other = sorted(_keys(data) & _OWN_FIELDS[_other(kind)]) if kind else []
    if other:
        return f"{subject}: it looks like {_ARTICLE[_other(kind)]} (fields {', '.join(other[:4])})"
    return f"{subject}: none of its {len(data)} keys is a field of {wanted}"


def read_mapping(path: Path, kind: str) -> dict[Any, Any]:
    """The mapping of a file that must be a ``kind`` (SCENARIO or PLAN); anything else is refused unechoed."""
    data = read_document(path)
    if not _looks_like(data, kind):
        raise ScenarioError(Problem(str(path), "", _refusal(data, kind)))
    return data


def file_kind(path: str | Path) -> str:
    """SCENARIO or PLAN for a file or bundled name, decided by which fields it has (contents never echoed)."""
    resolved = resolve_input(path, "scenarios")
    if not resolved.exists():
        resolved = resolve_input(path, "analysis")
    data = read_document(resolved)
    if _looks_like(data, SCENARIO) and _keys(data) & _OWN_FIELDS[SCENARIO]:
        return SCENARIO
    if _looks_like(data, PLAN):
        return PLAN
    raise ScenarioError(Problem(str(resolved), "", _refusal(data, None)))


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or _PYDANTIC_TAG.fullmatch(str(item)):
            continue  # pydantic's internal union/validator tags such as 'list[int]' (a user's '[/x]' is kept)
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _dotted_to_path(dotted: str) -> str:
    return _field_path(tuple(int(p) if p.isdigit() else p for p in dotted.split(".")))


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (the location of an unknown key's parent) inside ``model``."""
    current: Any = model
    for item in loc:
        if isinstance(item, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(item))
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``Effect | None`` or ``list[Arm]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_field_message(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    allowed = _allowed_fields(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown field; {hint}allowed here: {', '.join(allowed)}" if allowed else "unknown field"


def problems_from(
    error: ValidationError, file: str, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    """Turn a pydantic ValidationError into one :class:`Problem` per field (cross-field problems expanded)."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ConsistencyError):
            base = _field_path(loc)
            for dotted, value, message in cause.problems:
                path = _dotted_to_path(dotted)
                full = f"{base}.{path}" if base else path
                problems.append(Problem(file, full, message, value, value is not None))
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_field_message(model, tuple(item["loc"]))
        elif item["type"] == "missing":
            message = "required field is missing"
        has_value = item["type"] not in ("missing",) and not isinstance(item.get("input"), dict)
        problems.append(Problem(file, _field_path(loc), message, item.get("input"), has_value))
    return problems


def _validated(model: type[Model], data: dict[Any, Any], file: str) -> tuple[Model | None, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as err:
        return None, problems_from(err, file, model)


def validate_model(model: type[Model], data: dict[Any, Any], file: str) -> Model:
    """Validate ``data`` against ``model``; raise one :class:`ScenarioError` listing every problem."""
    validated, problems = _validated(model, data, file)
    if problems:
        raise ScenarioError(problems)
    return validated


def check_scenario(data: dict[Any, Any], file: str) -> tuple[Scenario | None, list[Problem]]:
    """The scenario in ``data`` and every problem with it: the schema's, then (if it passes) the physical sanity
    rules of :mod:`trialsim.spec.sanity`."""
    scenario, problems = _validated(Scenario, data, file)
    if scenario is None:
        return None, problems
    return scenario, [replace(p, file=file) for p in scenario_sanity(scenario)]


def find_bundled(name: str, kind: str) -> Path | None:
    """Find a bundled file by bare name (``clozapine_augmentation``) in ``scenarios`` or ``analysis``."""
    stem = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    for folder in BUNDLED_DIRS[kind]:
        candidate = folder / stem
        if candidate.is_file():
            return candidate
    return None


def resolve_input(path: str | Path, kind: str) -> Path:
    """A user-given path, or a bundled file's name when no such path exists."""
    given = Path(path)
    if given.exists():
        return given
    bundled = find_bundled(str(path), kind) if given.parent == Path(".") else None
    return bundled if bundled is not None else given


def load_plan(path: str | Path) -> AnalysisPlan:
    """Load and validate an analysis-plan file (a path, or the name of a bundled plan)."""
    resolved = resolve_input(path, "analysis")
    return validate_model(AnalysisPlan, read_mapping(resolved, PLAN), str(resolved))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (a path, or the name of a bundled scenario), physical sanity included."""
    resolved = resolve_input(path, "scenarios")
    scenario, problems = check_scenario(read_mapping(resolved, SCENARIO), str(resolved))
    if problems:
        raise ScenarioError(problems)
    return scenario


def plan_path_for(analysis_plan: str, scenario_file: Path) -> Path:
    """Where a scenario's ``analysis_plan`` lives: relative to the scenario file, else a bundled plan name."""
    given = Path(analysis_plan)
    candidate = given if given.is_absolute() else scenario_file.parent / given
    if candidate.is_file():
        return candidate
    bundled = find_bundled(analysis_plan, "analysis")
    if bundled is not None:
        return bundled
    raise ScenarioError(
        Problem(
            str(scenario_file),
            "analysis_plan",
            f"no analysis-plan file at {shorten(str(candidate), PLACE_CHARS)}; give a path relative to the "
            "scenario file or a bundled plan name",
            analysis_plan,
            True,
        )
    )


def load_design(scenario_file: str | Path, plan_file: str | Path | None = None) -> tuple[Scenario, AnalysisPlan]:
    """Load a scenario and its analysis plan (``plan_file`` overrides the scenario's ``analysis_plan``).

    One :class:`ScenarioError` lists the problems of both files: the plan is checked whenever it is known — given
    as ``plan_file``, or named by a text ``analysis_plan`` even in an otherwise invalid scenario.
    """
    resolved = resolve_input(scenario_file, "scenarios")
    data = read_mapping(resolved, SCENARIO)
    scenario, problems = check_scenario(data, str(resolved))
    reference = data.get("analysis_plan")
    plan = None
    if plan_file is not None or (isinstance(reference, str) and reference):
        try:
            plan = load_plan(plan_file if plan_file is not None else plan_path_for(reference, resolved))
        except ScenarioError as error:
            problems = problems + error.problems
    if problems:
        raise ScenarioError(problems)
    return scenario, plan
