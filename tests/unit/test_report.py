"""The HTML report without a browser: the manifest round trip, table numbers equal to summary.json, sections that
follow the data, the gallery reproducing the run's trials, a self-contained page, and the command line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_scenario
from trialsim.cli import app
from trialsim.report import render_report, write_report
from trialsim.report.gallery import matches_run, resimulate_trials
from trialsim.report.numbers import resolve
from trialsim.results import MANIFEST, SimulationResults
from trialsim.runner import simulate
from trialsim.spec.loading import load_design

runner = CliRunner()

#: Bundled scenarios covering the data-driven sections: (scenario, plan, sample sizes, trials).
RUNS = {
    "fixed": ("clozapine_augmentation", None, None, 30),  # a power curve over 7 design points
    "assurance_resources": ("three_mechanisms", None, [40, 80], 12),  # assurance, 3 comparisons, AEs, a resource
    "monitoring": ("clozapine_initiation_monitoring", None, [60], 12),  # monitoring visits, neutropenia dropout
    "diagnostics": ("textbook_two_arm_null", "ancova_ttest", [60], 12),  # per-trial engine, null scenario
}


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory) -> dict[str, Path]:
    """Each run saved to its own directory, with its report written there."""
    dirs = {}
    for key, (name, plan_name, sizes, trials) in RUNS.items():
        scenario, plan = load_design(name, plan_name)
        if sizes is not None:
            scenario = scenario.model_copy(update={"sample_size": sizes})
        out = tmp_path_factory.mktemp(key)
        simulate(scenario, plan, trials, seed=7, workers=1).save(out)
        write_report(out)
        dirs[key] = out
    return dirs


class Cells(HTMLParser):
    """Table cells that carry a summary pointer: (pointer, stored value as JSON, shown text); also element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        for name in ("src", "href", "xlink:href"):
            if name in attributes:
                self.links.append(attributes[name])
        if tag == "td" and "data-pointer" in attributes:
            self._open, self._text = attributes, []

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            self.cells.append((self._open["data-pointer"], self._open["data-value"], "".join(self._text)))
            self._open = None


def parse(path: Path) -> Cells:
    parser = Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def numeric_leaves(value, path: str = "") -> list[str]:
    """JSON pointers of every number below ``value``."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in numeric_leaves(item, f"{path}/{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in numeric_leaves(item, f"{path}/{i}")]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [path]
    return []


def shown_value(text: str) -> tuple[float, float]:
    """A number as written in a cell and half a unit of its last digit."""
    percent = text.endswith("%")
    digits = text.rstrip("%").replace("+", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale = 0.01 if percent else 1.0
    return float(digits) * scale, 0.5 * 10.0**-decimals * scale


@pytest.mark.parametrize("key", list(RUNS))
def test_table_numbers_equal_summary_json(run_dirs, key):
    """Every number in a table is the summary.json value at its pointer, written to its shown precision; every
    number of the design points and the arms is in some table."""
    summary = json.loads((run_dirs[key] / "summary.json").read_text())
    cells = parse(run_dirs[key] / "report.html").cells
    assert cells
    for pointer, stored, text in cells:
        value = resolve(summary, pointer)
        assert json.loads(stored) == value, pointer
        if text in ("—", "not recorded"):
            assert value is None or text == "not recorded", (pointer, text)
            continue
        number, half_unit = shown_value(text)
        assert math.isclose(number, value, abs_tol=half_unit + 1e-12), (pointer, text, value)
    shown = {pointer for pointer, _, _ in cells}
    for part in ("design_points", "arms"):
        for i, item in enumerate(summary[part]):
            missing = set(numeric_leaves(item, f"/{part}/{i}")) - shown
            assert not missing, missing
    assert {"/seed", "/trials"} <= shown


def test_not_recorded_rather_than_zero(run_dirs):
    """An AE without an incidence for an arm (or a null/missing value) reads 'not recorded', never 0.0%."""
    out = run_dirs["assurance_resources"]
    summary = json.loads((out / "summary.json").read_text())
    last = len(summary["design_points"]) - 1
    aripiprazole = {p: t for p, _, t in parse(out / "report.html").cells if "/adverse_events/aripiprazole/" in p}
    assert aripiprazole and set(aripiprazole.values()) == {"not recorded"}  # no AE data in the library for it
    # A null and a missing value, as a later summary may hold them:
    summary["design_points"][last]["adverse_events"]["placebo"]["nausea"] = None
    del summary["design_points"][last]["adverse_events"]["placebo"]["headache"]
    results = SimulationResults.load(out)
    html = render_report(SimulationResults(results.trials, summary, results.scenario, results.plan))
    for event in ("nausea", "headache"):
        pointer = f"/design_points/{last}/adverse_events/placebo/{event}"
        cell = re.search(rf'data-pointer="{pointer}" data-value="null">([^<]*)<', html)
        assert cell and cell.group(1) == "not recorded", event


def ids_of(out: Path) -> set[str]:
    return set(parse(out / "report.html").ids)


def test_sections_appear_with_their_data(run_dirs):
    fixed = ids_of(run_dirs["fixed"])
    assert {"at-a-glance", "design", "operating-characteristics", "estimates", "recruitment", "dropout"} <= fixed
    assert {"gallery", "provenance", "figure-gallery-0", "figure-gallery-2"} <= fixed
    assert not {"assurance", "adverse-events", "resources", "diagnostics"} & fixed
    rich = ids_of(run_dirs["assurance_resources"])
    assert {"assurance", "figure-assurance-effects", "adverse-events", "resources", "table-resources"} <= rich
    assert "diagnostics" not in rich
    assert {"table-monitoring", "figure-dropout"} <= ids_of(run_dirs["monitoring"])
    assert "figure-resources" not in ids_of(run_dirs["monitoring"])  # monitoring only: a table, no wait figure
    null = ids_of(run_dirs["diagnostics"])
    assert {"diagnostics", "table-diagnostics"} <= null
    assert "figure-dropout" not in null  # no dropout at all: the table only
    assert "type I error" in (run_dirs["diagnostics"] / "report.html").read_text()


def test_report_is_self_contained(run_dirs):
    """No scripts, stylesheets, images or fonts from anywhere: links are in-page anchors only."""
    for out in run_dirs.values():
        html = (out / "report.html").read_text()
        assert all(link.startswith(("#", "data:")) for link in parse(out / "report.html").links)
        assert "<script" not in html and "<link" not in html and "@import" not in html and "@font-face" not in html
        assert not re.search(r"url\((?!['\"]?#)", html)


def test_report_is_deterministic(run_dirs):
    out = run_dirs["diagnostics"]
    assert render_report(SimulationResults.load(out)) == (out / "report.html").read_text(encoding="utf-8")


def test_gallery_trials_reproduce_the_run(run_dirs):
    results = SimulationResults.load(run_dirs["assurance_resources"])
    largest = max(results.scenario.sample_sizes)
    rows = results.trials[(results.trials["sample_size"] == largest) & (results.trials["effect_mode"] == "point")]
    trials = resimulate_trials(results.scenario, results.plan, results.summary["seed"], largest, range(3))
    for index, (data, _) in enumerate(trials):
        row = rows[rows["trial"] == index].iloc[0]
        assert matches_run(data, row)
        assert not matches_run(data, row.replace(row["duration_weeks"], row["duration_weeks"] + 1.0))


def test_manifest_round_trip(tmp_path, vague_plan):
    scenario = make_scenario(sample_size=[20, 30], assurance=False)
    simulate(scenario, vague_plan, 4, seed=3, workers=1).save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["scenario"]["name"] == "unit" and manifest["plan"]["name"] == vague_plan.name
    loaded = SimulationResults.load(tmp_path)
    assert loaded.scenario == scenario and loaded.plan == vague_plan


def test_report_without_manifest(tmp_path, vague_plan):
    """Results saved without their scenario still get a report: no design in words, no gallery, a note."""
    results = simulate(make_scenario(), vague_plan, 6, seed=3, workers=1)
    SimulationResults(results.trials, results.summary).save(tmp_path)
    assert not (tmp_path / MANIFEST).exists()
    ids = set(parse(write_report(tmp_path)).ids)
    html = (tmp_path / "report.html").read_text()
    assert "no manifest.json" in html
    assert "gallery" not in ids and "Population" not in html
    assert {"design", "table-arms", "figure-recruitment", "table-operating-characteristics"} <= ids


def test_invalid_manifest_is_a_user_error(tmp_path, vague_plan):
    simulate(make_scenario(), vague_plan, 4, seed=3, workers=1).save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["scenario"]["recruitment"]["sites"] = 0
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "manifest.json" in result.output and "recruitment.sites" in result.output
    assert "Traceback" not in result.output


def test_cli_report_and_run_report(tmp_path):
    run = ["run", "textbook_two_arm", "--trials", "5", "--seed", "2", "--workers", "1", "--quiet"]
    result = runner.invoke(app, run + ["--out", str(tmp_path / "run"), "--report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "report.html").is_file()
    result = runner.invoke(app, ["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html"), "--target", "0.9"])
    assert result.exit_code == 0, result.output
    assert "target 0.9" in (tmp_path / "r.html").read_text()
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_a_plain_run_imports_neither_matplotlib_nor_jinja2():
    code = (
        "import sys, trialsim, trialsim.cli, trialsim.runner, trialsim.results; "
        "print(sorted(m for m in ('matplotlib', 'jinja2', 'trialsim.report') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "[]"
