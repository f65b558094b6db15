"""A self-contained HTML report of a run: the design in words, operating characteristics with Monte Carlo bands,
distributions over the simulated trials, a gallery of trials simulated again from their seeds, and the summary's
tables. Figures are inline SVG; the page loads nothing from anywhere.

Importing this package imports matplotlib and jinja2: the command line does so only when it writes a report.
"""

from trialsim.report.builder import render_report, write_report

__all__ = ["render_report", "write_report"]
