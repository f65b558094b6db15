"""The HTML report in a real browser: headless Chromium (the system's, through Playwright) loads each report with
no console error and no request but the file itself, shows every figure and table the summary (and a size search's
size.json) implies, fits a laptop screen and an A4 page, and leaves screenshots next to the run: RUN_DIR/report.png
(screen) and RUN_DIR/report-print.png (print layout), RUN_DIR being under pytest's temporary directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from trialsim.cli import app
from trialsim.sizing import Target, find_size
from trialsim.spec.loading import load_design

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

#: Never a browser download: the system Chromium, headless, sandbox off (root), nothing fetched in the background.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
#: A4 less the report's print margins (190 mm) in CSS pixels.
A4_PRINT_WIDTH = 718
#: A fixed design (power curve), an assurance run, a scenario with a treatment resource, a group-sequential design
#: and a three-arm design with response-adaptive randomisation: (scenario, trials).
RUNS = {
    "fixed": ("clozapine_augmentation", 40),
    "assurance": ("aripiprazole_augmentation", 40),
    "resources": ("rtms_vs_sham_limited_chairs", 30),
    "group_sequential": ("two_arm_group_sequential", 60),
    "response_adaptive": ("three_arm_adaptive", 30),
}


def expected_figures(summary: dict, columns: list[str], size: dict | None) -> set[str]:
    """The figures a report of this summary (with its manifest, the trials table's ``columns`` and a size search's
    ``size``) must show."""
    points = summary["design_points"]
    figures = {"power-curve", "estimates", "bias-coverage", "recruitment", "duration"}
    figures |= {f"gallery-{k}" for k in range(min(3, summary["trials"]))}
    if any(share for point in points for arm in point["dropout_by_reason"].values() for share in arm.values()):
        figures.add("dropout")
    if summary["assurance"]:
        figures.add("assurance-effects")
    if any(arm["adverse_event_incidence"] for arm in summary["arms"]):
        figures.add("adverse-events")
    if any("resources" in point for point in points):
        figures.add("resources")
    if any("adaptive" in point for point in points):
        figures |= {"interim-stopping", "interim-n-duration", "interim-estimates"}
    if any(column.endswith(".share") for column in columns):
        figures.add("interim-shares")
    if size is not None:
        figures.add("size-curve")
    return {f"figure-{name}" for name in figures}


def expected_tables(summary: dict, size: dict | None) -> dict[str, int]:
    """The tables a report of this summary (and of a size search's ``size``) must show, with their number of rows."""
    points = summary["design_points"]
    comparisons = sum(len(point["comparisons"]) for point in points)
    tables = {
        "arms": len(summary["arms"]),
        "operating-characteristics": comparisons,
        "design-points": len(points),
        "dropout": sum(len(next(iter(point["dropout_by_reason"].values()))) for point in points),
        "provenance": 7 + len(summary["provenance"]["versions"]),
    }
    sources = sum(len(arm["sources"]) + bool(arm.get("evidence_adjustments")) for arm in summary["arms"])
    if sources:
        tables["sources"] = sources
    if summary["assurance"]:
        tables["assurance"] = comparisons
    events = {event for arm in summary["arms"] for event in arm["adverse_event_incidence"]}
    if events:
        tables["adverse-events"] = sum(len(next(iter(point["adverse_events"].values()))) for point in points)
        tables["assumed-adverse-events"] = len(events)
    if any("resources" in point for point in points):
        tables["resources"] = sum(len(point.get("resources", {})) for point in points)
    adaptive = [point for point in points if "adaptive" in point]
    if adaptive:
        tables["interim-looks"] = sum(len(point["adaptive"]["looks"]) for point in adaptive)
        tables["interim-n-duration"] = 3 * len(adaptive)  # N of all trials, of trials stopped early; duration
        tables["interim-allocation"] = len(adaptive)
        tables["interim-estimates"] = sum(
            len(comparison["estimate_by_stopping_look"]) for point in adaptive for comparison in point["comparisons"]
        )
    if any("thresholds" in point for point in points):
        tables["interim-thresholds"] = sum("thresholds" in point for point in points)
    if size is not None:
        # target, answer, metric, MCSE, verification trials, E[N], completers, duration median and p90, trials
        # spent, grid trials, curve a and b, seed; and the target duration for a duration target
        tables["size-search"] = 15 + (size["target"]["weeks"] is not None)
        tables["size-points"] = len(size["points"])
    return {f"table-{name}": rows for name, rows in tables.items()}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield launched
        launched.close()


def run_with_report(name: str, trials: int, out: Path) -> dict:
    """``trialsim run NAME --report`` into ``out``; returns the summary."""
    arguments = ["run", name, "--trials", str(trials), "--seed", "1", "--workers", "1", "--quiet", "--report"]
    result = CliRunner().invoke(app, arguments + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("key", list(RUNS))
def test_report_renders_in_chromium(browser, tmp_path, key):
    name, trials = RUNS[key]
    out = tmp_path / name
    check_page(browser, out, run_with_report(name, trials, out))


def test_size_search_report_renders_in_chromium(browser, tmp_path):
    """A size search's directory (its verification run and size.json, as `trialsim size --out` writes them),
    reported by `trialsim report`."""
    scenario, plan = load_design("textbook_two_arm")
    result = find_size(
        scenario, plan, Target("power", 0.8, "active"), seed=1, workers=1,
        spread_trials=40, refine_trials=60, verify_trials=200, max_verify_trials=400,
    )  # fmt: skip
    out = tmp_path / "size_search"
    result.verification.save(out)
    size = result.to_dict()
    (out / "size.json").write_text(json.dumps(size), encoding="utf-8")
    done = CliRunner().invoke(app, ["report", str(out)])
    assert done.exit_code == 0, done.output
    check_page(browser, out, json.loads((out / "summary.json").read_text(encoding="utf-8")), size)


def check_page(browser, out: Path, summary: dict, size: dict | None = None) -> None:
    """Load OUT/report.html: no console error, no request but the file, the figures and tables the run implies,
    nothing wider than a laptop screen or an A4 page; leave the screenshots in OUT."""
    page = browser.new_page(viewport=LAPTOP)
    errors, requests, failed = [], [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    url = (out / "report.html").as_uri()
    page.goto(url, wait_until="load")

    assert errors == [] and failed == []
    assert requests == [url]  # nothing fetched but the file itself: no CDN, font, script or image

    columns = list(pd.read_parquet(out / "trials.parquet").columns)
    figures = page.eval_on_selector_all(
        "figure", "els => els.map(f => [f.id, f.querySelector('svg').getBoundingClientRect().toJSON()])"
    )
    assert {figure_id for figure_id, _ in figures} == expected_figures(summary, columns, size)
    assert len(figures) == len(expected_figures(summary, columns, size))
    for figure_id, box in figures:
        assert box["width"] > 300 and box["height"] > 100, figure_id
    tables = page.eval_on_selector_all(
        "table", "els => els.map(t => [t.id, t.tBodies[0].rows.length, t.parentElement.scrollWidth])"
    )
    assert {table_id: rows for table_id, rows, _ in tables} == expected_tables(summary, size)
    assert len(tables) == len(expected_tables(summary, size))
    content_width = page.evaluate("document.querySelector('main').clientWidth")
    for table_id, _, width in tables:
        assert width <= content_width, f"{table_id} scrolls sideways on a laptop screen"
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    page.screenshot(path=str(out / "report.png"), full_page=True)

    page.emulate_media(media="print")
    page.set_viewport_size({"width": A4_PRINT_WIDTH, "height": 1000})
    assert page.eval_on_selector("nav", "nav => getComputedStyle(nav).display") == "none"
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_PRINT_WIDTH
    page.screenshot(path=str(out / "report-print.png"), full_page=True)
    page.close()
    assert (out / "report.png").stat().st_size > 10_000
