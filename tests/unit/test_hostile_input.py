"""Hostile and absurd files are refused before any simulation: a ScenarioError in process; exit code 2 without a
traceback through the command line; and, for the resource-bound ones, within 2 s and 200 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SCENARIOS
from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.input_file import LIMIT_VARIABLE
from trialsim.spec.loading import load_design, load_scenario
from trialsim.spec.safe_yaml import MAX_ALIASES, parse_yaml

TEXTBOOK = SCENARIOS / "textbook_two_arm.yaml"
PASSWD = Path("/etc/passwd")
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@dataclass(frozen=True)
class Case:
    """A hostile input: the path given as the scenario, what the message must say and must not say."""

    path: Path
    says: tuple[str, ...]
    never_says: tuple[str, ...] = ()
    validate: bool = True  # False where `validate` rightly accepts the file (a valid plan given as a scenario)


def textbook(**overrides) -> dict:
    data = yaml.safe_load(TEXTBOOK.read_text())
    data["analysis_plan"] = "ancova_vague"
    data.update(overrides)
    return data


def write(path: Path, content: str | dict) -> Path:
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


def alias_bomb() -> str:
    """A billion-laughs document of ~1 KB: nine levels of nine aliases each (9⁹ strings once expanded)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def build_cases(folder: Path) -> dict[str, Case]:
    """Every hostile case as a file in ``folder`` (the FIFO included)."""
    fifo = folder / "pipe.yaml"
    os.mkfifo(fifo)
    big = write(folder / "big.yaml", TEXTBOOK.read_text() + "description: " + "x" * (50 * 1024 * 1024) + "\n")
    secret = write(folder / "secrets.yaml", "alice: hunter2\nbob: swordfish\n")
    cases = {
        "alias bomb": Case(write(folder / "bomb.yaml", alias_bomb()), ("invalid YAML", "aliases expanded")),
        "50 MB file": Case(big, ("larger than 1,048,576 bytes", LIMIT_VARIABLE)),
        "/dev/zero": Case(Path("/dev/zero"), ("/dev/zero", "is a character device")),
        "FIFO": Case(fifo, ("is a named pipe (FIFO)",)),
        "directory": Case(folder, ("is a directory",)),
        "markup in names, notes and keys": Case(
            write(folder / "markup.yaml", {**textbook(name="[/oops]"), "note": "[/oops]", "[bold]x[/]": 1}),
            ("name = '[/oops]'", "note = '[/oops]'", "[bold]x[/]", "unknown field"),
        ),
        "500 nested brackets": Case(
            write(folder / "deep.yaml", "name: " + "[" * 500 + "]" * 500 + "\n"), ("nested deeper than 40 levels",)
        ),
        "duplicate keys": Case(
            write(folder / "duplicate.yaml", TEXTBOOK.read_text() + "sample_size: 100\n"),
            ("duplicate key 'sample_size'", "first at line"),
        ),
        "NaN and infinities": Case(
            write(
                folder / "nonfinite.yaml",
                textbook(
                    visit_window_days=float("nan"),
                    outcome={"control_improvement": float("nan"), "sd_change": float("inf")},
                    arms=[
                        {"name": "control", "control": True},
                        {"name": "active", "effect": {"points": -float("inf")}},
                    ],
                    recruitment={"sites": 10, "rate_per_site_per_week": float("inf"), "activation_weeks": [0, 1e400]},
                ),
            ),
            (
                "visit_window_days = nan",
                "outcome.control_improvement = nan",
                "outcome.sd_change = inf",
                "arms[1].effect.points = -inf",
                "recruitment.rate_per_site_per_week = inf",
                "recruitment.activation_weeks[1] = inf",
                "finite number",
            ),
        ),
        "inclusion threshold at the scale maximum": Case(
            write(folder / "inclusion.yaml", textbook(population={"inclusion_min_panss": 210})),
            ("population.inclusion_min_panss = 210", "between the inclusion threshold and the scale maximum 210"),
        ),
        "recruitment that never ends": Case(
            write(
                folder / "slow.yaml",
                textbook(recruitment={"sites": 10, "activation_weeks": [0, 4], "rate_per_site_per_week": 1e-9}),
            ),
            ("recruitment:", "would take about 2.02e+10 weeks", "years", "recruitment.horizon_weeks = 1040"),
        ),
        "a scenario as the plan": Case(
            write(folder / "scenario_plan.yaml", textbook(analysis_plan=str(TEXTBOOK))),
            (str(TEXTBOOK), "is not an analysis plan", "it looks like a scenario"),
            ("Two-arm parallel trial",),
        ),
        "a mapping of secrets as the plan": Case(
            write(folder / "secret_plan.yaml", textbook(analysis_plan=str(secret))),
            ("is not an analysis plan", "none of its 2 keys"),
            ("alice", "hunter2", "swordfish"),
        ),
        "a plan as the scenario": Case(
            ROOT / "analysis" / "ancova_vague.yaml", ("is not a scenario", "it looks like an analysis plan"), (), False
        ),
    }
    if PASSWD.is_file():
        lines = tuple(line for line in PASSWD.read_text().splitlines() if len(line) > 8)
        cases["/etc/passwd as the plan"] = Case(
            write(folder / "passwd_plan.yaml", textbook(analysis_plan=str(PASSWD))),
            ("/etc/passwd", "is not an analysis plan", "expected a YAML mapping"),
            lines,
        )
    return cases


CASE_NAMES = [
    "alias bomb",
    "50 MB file",
    "/dev/zero",
    "FIFO",
    "directory",
    "markup in names, notes and keys",
    "500 nested brackets",
    "duplicate keys",
    "NaN and infinities",
    "inclusion threshold at the scale maximum",
    "recruitment that never ends",
    "a scenario as the plan",
    "a mapping of secrets as the plan",
    "a plan as the scenario",
    "/etc/passwd as the plan",
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Case]:
    return build_cases(tmp_path_factory.mktemp("hostile"))


def unblock_fifo_later(fifo: Path, after_seconds: float = 5.0) -> None:
    """If a regression opened the FIFO for reading, open its other end after a while so the test fails, not hangs."""

    def writer() -> None:
        time.sleep(after_seconds)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader: nothing is blocked
            pass

    threading.Thread(target=writer, daemon=True).start()


def assert_message(text: str, case: Case) -> None:
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    for secret in case.never_says:
        assert secret not in text, f"{secret!r} echoed in {text!r}"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_refused_in_process(name, cases):
    if name not in cases:
        pytest.skip(f"{PASSWD} does not exist here")
    case = cases[name]
    if name == "FIFO":
        unblock_fifo_later(case.path)
    with pytest.raises(ScenarioError) as info:
        load_design(case.path)
    assert info.value.problems
    assert_message(str(info.value), case)


def test_validate_command_refuses_every_file(cases):
    """One real process (``python -m trialsim validate``) checks every hostile file, the FIFO included (it would
    block forever if opened): exit code 2, no traceback, each file's own message."""
    files = [case for case in cases.values() if case.validate]
    proc = subprocess.run(
        [sys.executable, "-m", "trialsim", "validate", *[str(case.path) for case in files]],
        capture_output=True,
        text=True,
        timeout=120,
        env=SUBPROCESS_ENV,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    blocks = proc.stderr.split("error: ")[1:]
    assert len(blocks) == len(files), proc.stderr
    for case, block in zip(files, blocks):
        assert_message(block, case)


RUN_DRIVER = """
import contextlib, io, json, sys
from trialsim.cli import main

outcomes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["trialsim", *argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code
    outcomes.append([code, stderr.getvalue()])
print(json.dumps(outcomes))
"""


def test_run_command_refuses_every_file(cases, tmp_path):
    """``trialsim run FILE`` for every hostile file, through the console entry point in one fresh process."""
    out = tmp_path / "out"
    commands = [["run", str(case.path), "--trials", "2", "--out", str(out), "--quiet"] for case in cases.values()]
    proc = subprocess.run(
        [sys.executable, "-c", RUN_DRIVER, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
        env=SUBPROCESS_ENV,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    for case, (code, stderr) in zip(cases.values(), json.loads(proc.stdout)):
        assert code == 2, (case.path, stderr)
        assert "Traceback" not in stderr
        assert_message(stderr, case)
    assert not out.exists()  # refused before any simulation


MEASURE_LOADING = """
import json, sys, time, tracemalloc
from trialsim.exceptions import ScenarioError
from trialsim.spec.loading import load_design, load_scenario

def load(path):
    try:
        load_design(path)
    except ScenarioError:
        return "ScenarioError"
    return "loaded"

report = {}
for path in sys.argv[1:]:
    start = time.perf_counter()
    outcome = load(path)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    load(path)
    peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    report[path] = [outcome, seconds, peak_bytes]
print(json.dumps(report))
"""


def test_resource_bound_inputs_fail_fast_and_small(cases):
    """Each resource-bound input is refused within 2 s and 200 MB, measured in a fresh process around the loading
    call only: wall time by ``time.perf_counter`` around one ``load_design`` call, memory as tracemalloc's peak of
    Python allocations during a second identical call (interpreter start-up and imports excluded)."""
    names = ["alias bomb", "50 MB file", "/dev/zero", "FIFO", "500 nested brackets"]
    paths = [str(cases[name].path) for name in names]
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE_LOADING, *paths], capture_output=True, text=True, timeout=120, env=SUBPROCESS_ENV
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for name, path in zip(names, paths):
        outcome, seconds, peak_bytes = report[path]
        assert outcome == "ScenarioError", name
        assert seconds < 2.0, f"{name}: {seconds:.2f} s"
        assert peak_bytes < 200 * 2**20, f"{name}: {peak_bytes / 2**20:.0f} MB"


def test_size_limit_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path / "scenario.yaml", textbook())
    size = path.stat().st_size
    monkeypatch.setenv(LIMIT_VARIABLE, str(size - 1))
    with pytest.raises(ScenarioError, match=f"larger than {size - 1:,} bytes"):
        load_scenario(path)
    monkeypatch.setenv(LIMIT_VARIABLE, str(size))
    load_scenario(path)
    monkeypatch.setenv(LIMIT_VARIABLE, "lots")
    with pytest.raises(ScenarioError, match=f"{LIMIT_VARIABLE} = 'lots': must be a positive whole number"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(MAX_ALIASES + 1)), f"more than {MAX_ALIASES} aliases"),
        ("a: &x [1, *x]\n", "recursive alias"),
        ("a: 2001-13-45\n", "at line 1, column 4: cannot read this value (month must be in 1..12)"),
        ("a: " + "9" * 5000 + "\n", "an integer of 5,000 characters"),
        ("a: 1\x00\n", "character 5 (#x0000) is not allowed"),
        ("a:\n  b: 1\n  b: 2\n", "at line 3, column 3: duplicate key 'b' (first at line 2, column 3)"),
        ("a: 1\n---\nb: 2\n", "invalid YAML at line 2"),
    ],
)
def test_yaml_limits(text, message):
    with pytest.raises(ScenarioError) as info:
        parse_yaml(text, "f.yaml")
    assert message in str(info.value)


def test_yaml_merge_keys_are_not_duplicates():
    assert parse_yaml("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\n", "f.yaml")["use"] == {"x": 1, "y": 3}


def test_long_values_are_shortened():
    text = str(Problem("f.yaml", "description", "too long", "x" * 50_000_000, True))
    assert len(text) < 200
    assert "… (50,000,000 characters)" in text
    assert str(Problem("f.yaml", "k" * 10_000, "unknown field", [1] * 10_000, True)).count("…") == 2
    assert len(str(Problem("f.yaml", "resource", "defined: " + "r, " * 10_000))) < 700  # a rule listing names


def test_thousands_of_unknown_keys_are_counted_not_listed(tmp_path):
    path = write(tmp_path / "keys.yaml", {**textbook(), **{f"key{i}": i for i in range(3000)}})
    with pytest.raises(ScenarioError) as info:
        load_design(path)
    assert len(info.value.problems) == 3000
    assert str(info.value).endswith("  ... and 2,950 more")
    assert len(str(info.value).splitlines()) == 52
