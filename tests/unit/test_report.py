"""The HTML report without a browser: the manifest round trip, table numbers equal to summary.json (and size.json),
sections that follow the data, the gallery reproducing the run's trials, a self-contained page, and the command
line."""

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
from trialsim.report.interim_tables import NO_EFFICACY_STOP
from trialsim.report.numbers import NOT_RECORDED, UNDEFINED, resolve
from trialsim.results import MANIFEST, SimulationResults
from trialsim.runner import simulate
from trialsim.sizing import Target, find_size
from trialsim.spec.loading import load_design

runner = CliRunner()

#: Bundled scenarios covering the data-driven sections: (scenario, plan, sample sizes, trials).
RUNS = {
    "fixed": ("clozapine_augmentation", None, None, 30),  # a power curve over 7 design points
    "assurance_resources": ("three_mechanisms", None, [40, 80], 12),  # assurance, 3 comparisons, AEs, a resource
    "monitoring": ("clozapine_initiation_monitoring", None, [60], 12),  # monitoring visits, neutropenia dropout
    "diagnostics": ("textbook_two_arm_null", "ancova_ttest", [60], 12),  # per-trial engine, null scenario
    "adaptive": ("two_arm_group_sequential", None, [200, 240], 30),  # two looks, spending thresholds per N
    "response_adaptive": ("three_arm_adaptive", None, None, 16),  # arm dropping, response-adaptive shares
}
#: Cell texts standing for a missing number.
MISSING_TEXTS = (UNDEFINED, NOT_RECORDED, NO_EFFICACY_STOP)


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


@pytest.fixture(scope="module")
def size_dir(tmp_path_factory) -> Path:
    """A small size search saved as `trialsim size --out` saves it (verification run and size.json), reported."""
    scenario, plan = load_design("textbook_two_arm")
    result = find_size(
        scenario, plan, Target("power", 0.8, "active"), seed=1, workers=1,
        spread_trials=40, refine_trials=60, verify_trials=200, max_verify_trials=400,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("size")
    result.verification.save(out)
    (out / "size.json").write_text(json.dumps(result.to_dict()), encoding="utf-8")
    write_report(out)
    return out


class Cells(HTMLParser):
    """Table cells that carry a pointer into a run file: (file, pointer, stored value as JSON, shown text); also
    element ids and links."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str, str]] = []
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
            cell = (
                self._open["data-source"],
                self._open["data-pointer"],
                self._open["data-value"],
                "".join(self._text),
            )
            self.cells.append(cell)
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


def check_cells(cells: list[tuple[str, str, str]], document: dict) -> None:
    """Every (pointer, stored value, text) cell shows the document's value at its pointer, to its shown precision."""
    for pointer, stored, text in cells:
        value = resolve(document, pointer)
        assert json.loads(stored) == value, pointer
        if text in MISSING_TEXTS:
            assert value is None or text == NOT_RECORDED, (pointer, text)
            continue
        number, half_unit = shown_value(text)
        assert math.isclose(number, value, abs_tol=half_unit + 1e-12), (pointer, text, value)


def cells_of(out: Path, source: str) -> list[tuple[str, str, str]]:
    return [
        (pointer, stored, text) for file, pointer, stored, text in parse(out / "report.html").cells if file == source
    ]


@pytest.mark.parametrize("key", list(RUNS))
def test_table_numbers_equal_summary_json(run_dirs, key):
    """Every number in a table is the summary.json value at its pointer, written to its shown precision; every
    number of the design points and the arms is in some table."""
    summary = json.loads((run_dirs[key] / "summary.json").read_text())
    assert {file for file, *_ in parse(run_dirs[key] / "report.html").cells} == {"summary.json"}
    cells = cells_of(run_dirs[key], "summary.json")
    assert cells
    check_cells(cells, summary)
    shown = {pointer for pointer, _, _ in cells}
    for part in ("design_points", "arms"):
        for i, item in enumerate(summary[part]):
            missing = set(numeric_leaves(item, f"/{part}/{i}")) - shown
            assert not missing, missing
    assert {"/seed", "/trials"} <= shown


def test_size_search_numbers_equal_size_json(size_dir):
    """The search's tables show every number of size.json but the fitted curve's plotting grid, each equal to its
    value; the rest of the page is the verification run, read from its summary.json."""
    size = json.loads((size_dir / "size.json").read_text())
    cells = cells_of(size_dir, "size.json")
    check_cells(cells, size)
    leaves = {p for p in numeric_leaves(size) if not p.startswith(("/curve/x/", "/curve/fitted/"))}
    assert leaves == {pointer for pointer, _, _ in cells}
    summary = json.loads((size_dir / "summary.json").read_text())
    check_cells(cells_of(size_dir, "summary.json"), summary)
    assert summary["design_points"][0]["sample_size"] == size["value"]


def test_size_search_section(size_dir, run_dirs):
    """A run directory with size.json gets the search's section and answer; a run without it does not."""
    ids = ids_of(size_dir)
    assert {"size-search", "figure-size-curve", "table-size-search", "table-size-points"} <= ids
    html = (size_dir / "report.html").read_text()
    size = json.loads((size_dir / "size.json").read_text())
    assert f"total sample size N = {size['value']:.0f} for power of active ≥ 0.8" in html  # at a glance
    for key in RUNS:
        assert not {"size-search", "figure-size-curve"} & ids_of(run_dirs[key])
    (size_dir / "broken").mkdir()
    for name in ("summary.json", "trials.parquet"):
        (size_dir / "broken" / name).write_bytes((size_dir / name).read_bytes())
    (size_dir / "broken" / "size.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(size_dir / "broken")])
    assert result.exit_code == 2 and "size.json" in result.output


def test_not_recorded_rather_than_zero(run_dirs):
    """An AE without an incidence for an arm (or a null/missing value) reads 'not recorded', never 0.0%."""
    out = run_dirs["assurance_resources"]
    summary = json.loads((out / "summary.json").read_text())
    last = len(summary["design_points"]) - 1
    aripiprazole = {p: t for p, _, t in cells_of(out, "summary.json") if "/adverse_events/aripiprazole/" in p}
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
    interim = {"interim-looks", "figure-interim-stopping", "figure-interim-n-duration", "figure-interim-estimates"}
    interim |= {f"table-interim-{name}" for name in ("looks", "n-duration", "allocation", "estimates", "thresholds")}
    for key in ("fixed", "assurance_resources", "monitoring", "diagnostics"):
        assert not (interim | {"figure-interim-shares"}) & ids_of(run_dirs[key])
    assert interim <= ids_of(run_dirs["adaptive"])
    assert "figure-interim-shares" not in ids_of(run_dirs["adaptive"])  # no response-adaptive randomisation
    assert interim | {"figure-interim-shares"} <= ids_of(run_dirs["response_adaptive"])


def text_of(html: str, element_id: str, tag: str) -> str:
    """The text of the first ``tag`` inside the element with ``element_id`` (markup removed)."""
    inside = html[html.index(f'id="{element_id}"') :]
    return re.sub(r"<[^>]+>", "", re.search(rf"<{tag}>(.*?)</{tag}>", inside, re.DOTALL).group(1))


def test_adaptive_answer_and_gallery(run_dirs):
    """An adaptive design's answer gives E[N] and the duration beside the power; the gallery's captions give each
    trial's looks and its stop as the run recorded them."""
    out = run_dirs["adaptive"]
    html = (out / "report.html").read_text()
    answer = text_of(html, "at-a-glance", "dd")
    assert re.search(r"expected N \d+\.\d ± \d+\.\d with \d+\.\d% of trials stopped at an interim look", answer)
    assert "mean duration" in answer
    results = SimulationResults.load(out)
    trials = results.trials[results.trials["sample_size"] == 240].set_index("trial")
    for k in range(3):
        caption = text_of(html, f"figure-gallery-{k}", "figcaption")
        assert caption.count("completers)") == int(
            (trials.loc[k, ["look1.n_completed", "look2.n_completed"]] > 0).sum()
        )
        if trials.loc[k, "stop_look"] > 0:
            stop = f"stopped for {trials.loc[k, 'stop_reason']} at week {trials.loc[k, 'stop_week']:.1f}"
            assert stop in caption, caption
        else:
            assert "ran to the final analysis" in caption, caption


def test_adaptive_report_without_manifest(run_dirs):
    """The interim looks need only summary.json and trials.parquet; an interim look without an efficacy threshold
    (null in summary.json) reads 'no efficacy stop'."""
    results = SimulationResults.load(run_dirs["adaptive"])
    summary = json.loads(json.dumps(results.summary))
    summary["design_points"][0]["thresholds"]["looks"][0] = None
    html = render_report(SimulationResults(results.trials, summary))
    assert 'id="interim-looks"' in html and 'id="gallery"' not in html
    cell = re.search(r'data-pointer="/design_points/0/thresholds/looks/0" data-value="null">([^<]*)<', html)
    assert cell and cell.group(1) == NO_EFFICACY_STOP


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
