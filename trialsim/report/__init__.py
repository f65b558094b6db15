"""A self-contained HTML report of a run: the design in words, operating characteristics with Monte Carlo bands,
distributions over the simulated trials, a gallery of trials simulated again from their seeds, and the summary's
tables. Figures are inline SVG; the page loads nothing from anywhere.

Importing ``render_report`` or ``write_report`` imports matplotlib and jinja2: the command line does so only when
it writes a report (``trialsim validate --explain`` reads the design text of :mod:`trialsim.report.design`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["render_report", "write_report"]

if TYPE_CHECKING:
    from trialsim.report.builder import render_report, write_report


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'trialsim.report' has no attribute {name!r}")
    from trialsim.report import builder

    return getattr(builder, name)
