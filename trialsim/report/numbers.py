"""Numbers as the report shows them, read from a run file's dict (summary.json, size.json) by JSON pointer
(RFC 6901)."""

from __future__ import annotations

import math
from typing import Any

from trialsim.report.content import SUMMARY_FILE, Cell

#: How each kind of number is written.
FORMATS = {
    "probability": "{:.3f}",
    "threshold": "{:.4f}",
    "coefficient": "{:.4f}",
    "rate": "{:.3f}",
    "mcse": "{:.3f}",
    "effect": "{:.2f}",
    "signed": "{:+.2f}",
    "percent": "{:.1%}",
    "weeks": "{:.1f}",
    "mean": "{:.1f}",
    "whole": "{:.0f}",
    "integer": "{:d}",
}
UNDEFINED = "—"
NOT_RECORDED = "not recorded"
_ABSENT = object()


def pointer(*parts: str | int) -> str:
    """The JSON pointer of a path of keys and list indices."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(document: Any, path: str) -> Any:
    """The value at a JSON pointer, or ``None`` when the path does not exist."""
    value = document
    for token in path.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list):
            value = value[int(key)] if key.isdigit() and int(key) < len(value) else _ABSENT
        elif isinstance(value, dict):
            value = value.get(key, _ABSENT)
        else:
            value = _ABSENT
        if value is _ABSENT:
            return None
    return value


def defined(value: Any) -> bool:
    """Whether a value is a finite number (not missing, null or NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def show(value: Any, kind: str, missing: str = UNDEFINED) -> str:
    """A number written as ``kind`` (see :data:`FORMATS`); ``missing`` when it is undefined."""
    if not defined(value):
        return missing
    return FORMATS[kind].format(int(value) if kind == "integer" else value)


def number(
    document: dict[str, Any],
    path: tuple[str | int, ...],
    kind: str,
    missing: str = UNDEFINED,
    source: str = SUMMARY_FILE,
) -> Cell:
    """The cell of the number at ``path`` in ``document``, the dict of the run file ``source``."""
    where = pointer(*path)
    value = resolve(document, where)
    return Cell(show(value, kind, missing), where, value, muted=not defined(value), source=source)


def label(text: str) -> Cell:
    """A text cell."""
    return Cell(text)
