"""Load scenario and analysis-plan files: safe YAML, pydantic validation, every problem reported at once."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.base import ConsistencyError
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

Model = TypeVar("Model", bound=BaseModel)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Where bundled files live: the repository checkout (editable install) or inside the wheel.
BUNDLED_DIRS = {
    "scenarios": [PACKAGE_DIR.parent / "scenarios", PACKAGE_DIR / "bundled" / "scenarios"],
    "analysis": [PACKAGE_DIR.parent / "analysis", PACKAGE_DIR / "bundled" / "analysis"],
}


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; any problem becomes a :class:`ScenarioError` naming the file."""
    name = str(path)
    if not path.exists():
        raise ScenarioError(Problem(name, "", "file not found"))
    if path.is_dir():
        raise ScenarioError(Problem(name, "", "is a directory, expected a YAML file"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(Problem(name, "", f"cannot be read: {err}")) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err)
        raise ScenarioError(Problem(name, "", f"invalid YAML{where}: {reason}")) from err
    if data is None:
        raise ScenarioError(Problem(name, "", "file is empty; expected a YAML mapping of fields"))
    if not isinstance(data, dict):
        raise ScenarioError(Problem(name, "", f"expected a YAML mapping of fields, got {type(data).__name__}"))
    return data


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or "[" in str(item):
            continue  # pydantic's internal union/validator tags
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


def validate_model(model: type[Model], data: dict[str, Any], file: str) -> Model:
    """Validate ``data`` against ``model``; raise one :class:`ScenarioError` listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(problems_from(err, file, model)) from None


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
    return validate_model(AnalysisPlan, read_yaml(resolved), str(resolved))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (a path, or the name of a bundled scenario)."""
    resolved = resolve_input(path, "scenarios")
    return validate_model(Scenario, read_yaml(resolved), str(resolved))


def plan_path_for(scenario: Scenario, scenario_file: str | Path) -> Path:
    """Where the scenario's ``analysis_plan`` lives: relative to the scenario file, else a bundled plan name."""
    scenario_file = resolve_input(scenario_file, "scenarios")
    given = Path(scenario.analysis_plan)
    candidate = given if given.is_absolute() else Path(scenario_file).parent / given
    if candidate.is_file():
        return candidate
    bundled = find_bundled(scenario.analysis_plan, "analysis")
    if bundled is not None:
        return bundled
    raise ScenarioError(
        Problem(
            str(scenario_file),
            "analysis_plan",
            f"no analysis-plan file at {candidate}; give a path relative to the scenario file or a bundled plan name",
            scenario.analysis_plan,
            True,
        )
    )


def load_design(scenario_file: str | Path, plan_file: str | Path | None = None) -> tuple[Scenario, AnalysisPlan]:
    """Load a scenario and its analysis plan (``plan_file`` overrides the scenario's ``analysis_plan``)."""
    scenario = load_scenario(scenario_file)
    plan = load_plan(plan_file) if plan_file is not None else load_plan(plan_path_for(scenario, scenario_file))
    return scenario, plan
