"""``--set FIELD=VALUE``: change fields of a scenario on the command line, so a design can be swept without copying
files.

FIELD is a dotted path into the scenario file (``recruitment.sites``, ``outcome.sd_change``); list items are
chosen by index or, for arms, by name (``arms.1.effect.points``, ``arms.drug.dropout``). VALUE is read as YAML with
the project's limited safe loader (``40``, ``0.25``, ``true``, ``null``, ``[100, 200]``). The scenario is
validated again with every change, like the file (physical sanity rules included); a path that is not a field of
the scenario is refused with the fields allowed there.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.loading import check_scenario
from trialsim.spec.safe_yaml import parse_yaml
from trialsim.spec.scenario import Scenario

#: Fields --set does not change, and what to use instead.
REFUSED = {"analysis_plan": "use --plan to analyse with another plan"}


def _problem(text: str, message: str) -> ScenarioError:
    return ScenarioError(Problem(f"--set {text}", "", message))


def _parse(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a", "b", "c"], the YAML value)."""
    path, equals, value = text.partition("=")
    if not equals or not path.strip():
        raise _problem(text, "give FIELD=VALUE, e.g. recruitment.sites=40")
    parts = path.strip().split(".")
    if any(not part for part in parts):
        raise _problem(text, "the field path has an empty part")
    return parts, parse_yaml(value, f"--set {text}")


def _kinds(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly optional or union) annotation."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return [annotation]


def _container(annotation: Any) -> tuple[str, Any] | None:
    """What a path can step into at this annotation: ("model", cls), ("list", item) or ("dict", value)."""
    for kind in _kinds(annotation):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return "model", kind
    for kind in _kinds(annotation):
        origin = typing.get_origin(kind)
        if origin is list:
            return "list", typing.get_args(kind)[0]
        if origin is dict:
            return "dict", typing.get_args(kind)[1]
    return None


def _item_index(items: list[Any], part: str, where: str, text: str) -> int:
    """The list position a path part names: an index, or the ``name`` of an item."""
    if part.lstrip("-").isdigit():
        index = int(part)
        if not 0 <= index < len(items):
            raise _problem(text, f"{where} has {len(items)} items (0 to {len(items) - 1})")
        return index
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    hint = f"; names: {', '.join(map(str, names))}" if any(names) else ""
    raise _problem(text, f"{where} is a list: give an index (0 to {len(items) - 1}){hint}")


def set_field(data: dict[str, Any], text: str, model: type[BaseModel] = Scenario) -> None:
    """Apply one ``FIELD=VALUE`` to ``data`` (the scenario as a mapping), checking the path against ``model``."""
    parts, value = _parse(text)
    if parts[0] in REFUSED:
        raise _problem(text, REFUSED[parts[0]])
    node: Any = data
    annotation: Any = model
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the scenario"
        step = _container(annotation)
        last = depth == len(parts) - 1
        if step is None:
            raise _problem(text, f"{where} is a value, not a section with fields")
        kind, inner = step
        if kind == "model":
            if part not in inner.model_fields:
                close = difflib.get_close_matches(part, list(inner.model_fields), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise _problem(text, f"no field '{part}' in {where}; {hint}fields: {', '.join(inner.model_fields)}")
            annotation = inner.model_fields[part].annotation
            key: Any = part
        elif kind == "list":
            if not isinstance(node, list):
                raise _problem(text, f"{where} is not in the file: set the whole list, e.g. {where}=[...]")
            key, annotation = _item_index(node, part, where, text), inner
        else:
            key, annotation = part, inner
        if last:
            node[key] = value
            return
        current = node[key] if kind == "list" else node.get(key)
        if current is None:
            current = node[key] = {}
        elif not isinstance(current, dict | list):
            raise _problem(text, f"{'.'.join(parts[: depth + 1])} is a value, not a section with fields")
        node = current


def with_overrides(scenario: Scenario, sets: Sequence[str], file: str) -> Scenario:
    """The scenario with every ``FIELD=VALUE`` applied, validated again (problems name ``file`` and --set)."""
    if not sets:
        return scenario
    data = scenario.model_dump(mode="json", exclude_unset=True)
    for text in sets:
        set_field(data, text)
    changed, problems = check_scenario(data, f"{file} with --set {' '.join(sets)}")
    if problems:
        raise ScenarioError(problems)
    return changed
