"""What ``trialsim list`` shows: the bundled scenarios and analysis plans and the evidence library's interventions,
each with a one-line description."""

from __future__ import annotations

from pathlib import Path

import yaml

from trialsim.exceptions import ScenarioError
from trialsim.spec.loading import BUNDLED_DIRS

KINDS = {"scenarios": "scenarios", "plans": "analysis", "interventions": None}


def _bundled_files(folder: str) -> list[Path]:
    """The YAML files of the first bundled folder that exists (the checkout's, else the wheel's)."""
    for directory in BUNDLED_DIRS[folder]:
        if directory.is_dir():
            return sorted(directory.glob("*.yaml"))
    return []


def _first_line(text: str) -> str:
    return " ".join(str(text).split())


def _role(entry) -> str:
    return "control" if entry.is_control else "versus " + " or ".join(entry.contexts)


def catalogue(kind: str) -> list[tuple[str, str]]:
    """(name, description) of every bundled scenario or plan, or every intervention of the evidence library."""
    if kind not in KINDS:
        raise ScenarioError(f"trialsim list {kind}: choose one of {', '.join(KINDS)}")
    if kind == "interventions":
        from trialsim.evidence import load_library

        return [(entry.name, f"{entry.label}; {_role(entry)}") for entry in load_library()]
    rows = []
    for path in _bundled_files(KINDS[kind]):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rows.append((path.stem, _first_line(data.get("description", "")) if isinstance(data, dict) else ""))
    return rows
