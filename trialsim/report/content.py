"""What a report is made of: sections holding text, figures and tables. The template renders these and nothing else.

A number in a table is a :class:`Cell` that remembers where it came from: the file (``summary.json``, or
``size.json`` for a size search), the JSON pointer into it and the value stored there, so the HTML carries both what
it shows and what it shows it from.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

SUMMARY_FILE = "summary.json"
SIZE_FILE = "size.json"


@dataclass(frozen=True)
class Cell:
    """One table cell: its text and, for a number from a run file, the JSON pointer and value it was read from."""

    text: str
    pointer: str | None = None
    value: Any = None
    muted: bool = False  # the text stands for a missing number ("not recorded", "—")
    source: str = SUMMARY_FILE  # the file the pointer points into

    @property
    def value_json(self) -> str:
        """The source value as JSON (``null`` for a missing, undefined or non-finite value)."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return json.dumps(value)


@dataclass(frozen=True)
class Table:
    """A captioned table; ``key`` becomes its HTML id."""

    key: str
    caption: str
    header: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class Figure:
    """A captioned figure as inline SVG markup; ``key`` becomes its HTML id."""

    key: str
    caption: str
    svg: str


@dataclass(frozen=True)
class Section:
    """One part of the report, shown in this order: paragraphs, facts (label: text), figures, tables, notes."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
