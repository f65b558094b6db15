"""Build the HTML report of a run: read the run, build its sections, render the template, write one file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from trialsim.exceptions import ScenarioError
from trialsim.report.content import SIZE_FILE
from trialsim.report.gallery import RESIMULATED_TRIALS, resimulate_trials
from trialsim.report.run import Run
from trialsim.report.sections import SECTIONS
from trialsim.results import SimulationResults

DEFAULT_TARGET = 0.8
REPORT_FILE = "report.html"


def render_report(
    results: SimulationResults, *, target: float = DEFAULT_TARGET, size_search: dict[str, Any] | None = None
) -> str:
    """The report of ``results`` as one self-contained HTML page (figures inline, no external resources);
    ``size_search``: the dict of a size search's ``size.json`` when ``results`` is its verification run."""
    if not 0 < target < 1:
        raise ValueError(f"target must be a probability between 0 and 1, got {target}")
    summary = results.summary
    resimulated = []
    if results.scenario is not None:
        largest = max(point["sample_size"] for point in summary["design_points"])
        indices = range(min(RESIMULATED_TRIALS, summary["trials"]))
        resimulated = resimulate_trials(results.scenario, results.plan, summary["seed"], largest, indices)
    run = Run(summary, results.trials, results.scenario, results.plan, target, resimulated, size_search)
    sections = [section for build in SECTIONS if (section := build(run)) is not None]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("trialsim.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2").render(
        summary=summary, sections=sections, size_search=size_search
    )


def write_report(run_dir: str | Path, out: str | Path | None = None, *, target: float = DEFAULT_TARGET) -> Path:
    """Write the report of the run saved in ``run_dir`` to ``out`` (default ``run_dir/report.html``), with the
    sample-size search when ``run_dir`` holds a ``size.json``.

    Raises :class:`~trialsim.exceptions.ScenarioError` when ``run_dir`` holds no run, its size.json is not JSON,
    or ``out`` cannot be written.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file() or not (run_dir / "trials.parquet").is_file():
        raise ScenarioError(f"{run_dir}: not a run directory (needs summary.json and trials.parquet)")
    html = render_report(SimulationResults.load(run_dir), target=target, size_search=read_size_search(run_dir))
    path = Path(out) if out is not None else run_dir / REPORT_FILE
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot write the report ({error.strerror or error})") from None
    return path


def read_size_search(run_dir: Path) -> dict[str, Any] | None:
    """The dict of ``run_dir/size.json``, or ``None`` when the run is not a size search's."""
    path = run_dir / SIZE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ScenarioError(f"{path}: cannot read the size search ({error})") from None
