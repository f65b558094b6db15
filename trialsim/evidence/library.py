"""Load and query the TRS evidence library (``interventions.yaml``, shipped inside this package)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError, model_validator

from trialsim.evidence.models import Intervention, StrictModel
from trialsim.exceptions import Problem, ScenarioError

DEFAULT_LIBRARY_PATH = Path(__file__).with_name("interventions.yaml")


class UnknownInterventionError(ScenarioError, KeyError):
    """An intervention name that is not in the library; ``suggestions`` holds the close matches."""

    def __init__(self, name: str, available: list[str]):
        self.suggestions: list[str] = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, self.suggestions))}? " if self.suggestions else ""
        super().__init__(
            Problem(
                file="evidence library",
                field="intervention",
                value=name,
                has_value=True,
                message=f"unknown intervention; {hint}available: {', '.join(available)}",
            )
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.render()


class _LibraryFile(StrictModel):
    schema_version: Literal[1]
    interventions: dict[str, Intervention]

    @model_validator(mode="before")
    @classmethod
    def _name_from_key(cls, data: Any) -> Any:
        entries = data.get("interventions") if isinstance(data, dict) else None
        if isinstance(entries, dict):
            named = {k: {"name": k, **v} if isinstance(v, dict) and "name" not in v else v for k, v in entries.items()}
            data = {**data, "interventions": named}
        return data

    @model_validator(mode="after")
    def _check_names(self) -> _LibraryFile:
        wrong = [f"{key} (name: {entry.name})" for key, entry in self.interventions.items() if entry.name != key]
        if wrong:
            raise ValueError(f"an entry's name must equal its key: {', '.join(wrong)}")
        return self


@dataclass(frozen=True)
class EvidenceLibrary:
    """The interventions of one library file, by name. ``path`` is the file it was read from."""

    interventions: Mapping[str, Intervention]
    path: str

    def get(self, name: str) -> Intervention:
        """The entry called ``name``; else :class:`UnknownInterventionError` (a KeyError) with close matches."""
        try:
            return self.interventions[name]
        except KeyError:
            raise UnknownInterventionError(name, list(self.names)) from None

    @property
    def names(self) -> tuple[str, ...]:
        """All intervention names, sorted."""
        return tuple(sorted(self.interventions))

    def by_family(self, family: str) -> tuple[Intervention, ...]:
        """The entries of one mechanism family (see ``MECHANISM_FAMILIES``), sorted by name."""
        return tuple(self.interventions[n] for n in self.names if self.interventions[n].mechanism_family == family)

    def __contains__(self, name: object) -> bool:
        return name in self.interventions

    def __iter__(self) -> Iterator[Intervention]:
        return (self.interventions[n] for n in self.names)

    def __len__(self) -> int:
        return len(self.interventions)


def load_library(path: str | Path | None = None) -> EvidenceLibrary:
    """Read and validate an evidence library file (default: the bundled ``interventions.yaml``).

    Raises :class:`~trialsim.exceptions.ScenarioError` listing every problem at once, each naming the entry and
    field (e.g. ``interventions.rtms.effects.panss_positive.status``), the value and the rule.
    """
    file = Path(path) if path is not None else DEFAULT_LIBRARY_PATH
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(Problem(file=str(file), field="", message=f"cannot read: {err.strerror}")) from None
    except yaml.YAMLError as err:
        raise ScenarioError(Problem(file=str(file), field="", message=f"not valid YAML: {err}")) from None
    try:
        parsed = _LibraryFile.model_validate(raw)
    except ValidationError as err:
        raise ScenarioError([_problem(str(file), e) for e in err.errors()]) from None
    return EvidenceLibrary(interventions=dict(parsed.interventions), path=str(file))


def _problem(file: str, error: Any) -> Problem:
    """One pydantic error as a :class:`Problem` with a dotted field path (entry and field)."""
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        message = "unknown key (not part of the evidence schema; check the spelling)"
    else:
        message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    has_value = error["type"] != "missing" and not isinstance(value, (dict, list))
    return Problem(file=file, field=field, message=message, value=value if has_value else None, has_value=has_value)
