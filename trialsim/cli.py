"""Command line: ``trialsim run | compare | stress | trial | report | validate | list | schema | calibrate | size``.

User mistakes (bad files, bad arguments) print a short message and exit with code 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console, Group
from rich.padding import Padding
from rich.text import Text

from trialsim import tables
from trialsim.budget import DEFAULT_BUDGET_MB
from trialsim.exceptions import ScenarioError
from trialsim.layout import Column, FittedTable
from trialsim.progress import TrialProgress, compiles_model
from trialsim.spec import AnalysisPlan, Scenario
from trialsim.spec.loading import (
    SCENARIO,
    file_kind,
    load_design,
    load_plan,
    load_scenario,
    plan_path_for,
    resolve_input,
)

if TYPE_CHECKING:
    from trialsim.results import SimulationResults


def cap_workers(workers: Optional[int]) -> Optional[int]:
    """``--workers``: at most the cores available to this process, with a warning on stderr when capped."""
    from trialsim.runner import default_workers

    cores = default_workers()
    if workers is not None and workers > cores:
        err.print(f"warning: --workers {workers} is more than the {cores} cores available; using {cores}")
        return cores
    return workers


# Options shared by run, compare and stress.
Trials = Annotated[int, typer.Option(min=1, max=10_000_000, help="simulated trials per design point (or cell)")]
Seed = Annotated[Optional[int], typer.Option(min=0, help="master seed (default: fresh entropy, recorded in outputs)")]
Workers = Annotated[
    Optional[int],
    typer.Option(min=1, max=1024, callback=cap_workers, help="worker processes (default and at most: all cores)"),
]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate clinical trials in treatment-resistant schizophrenia and report their operating characteristics.",
    pretty_exceptions_enable=False,
)
# Piped output gets wide tables rather than rich's 80-column default, unless COLUMNS says otherwise.
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 150)
err = Console(stderr=True)


def show_version(value: bool) -> None:
    """``--version``: print the version and exit."""
    if value:
        from trialsim import __version__

        out.print(f"trialsim {__version__}", highlight=False)
        raise typer.Exit()


def warn(text: str) -> None:
    """A warning on stderr, as one plain line."""
    err.print(Text(f"warning: {text}", style="yellow"), highlight=False, soft_wrap=True)


def plain_warnings(previous: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints trialsim's own warnings (evidence, statistics) as plain lines without
    a source location, and hands any other to ``previous``."""

    def show(message, category, *args, **kwargs) -> None:
        if category.__module__.startswith("trialsim."):
            warn(str(message))
        else:
            previous(message, category, *args, **kwargs)

    return show


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", callback=show_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Simulate clinical trials in treatment-resistant schizophrenia and report their operating characteristics."""
    warnings.showwarning = plain_warnings(warnings.showwarning)


Sets = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="change a scenario field, e.g. recruitment.sites=40 or arms.1.effect.points=4 (repeat)",
    ),
]
SampleSize = Annotated[
    Optional[int], typer.Option(min=4, max=100_000, help="the common total N (default: each scenario's largest)")
]


def load_checked(
    scenario: str, plan: str | AnalysisPlan | None = None, sets: Optional[list[str]] = None
) -> tuple[Scenario, AnalysisPlan]:
    """Load a scenario and its plan (or ``plan``), apply ``--set`` overrides and run the checks that need both and
    the evidence library; problems without a file name get the scenario's. Warnings about a plan loaded here are
    shown."""
    from trialsim.overrides import with_overrides
    from trialsim.runner import check_design

    if isinstance(plan, AnalysisPlan):
        scenario_obj, plan_obj = load_scenario(scenario), plan
    else:
        scenario_obj, plan_obj = load_design(scenario, plan)
        show_plan_warnings(plan_obj)
    scenario_obj = with_overrides(scenario_obj, sets or [], str(resolve_input(scenario, "scenarios")))
    try:
        check_design(scenario_obj, plan_obj)
    except ScenarioError as error:
        file = str(resolve_input(scenario, "scenarios"))
        raise ScenarioError([p if p.file else replace(p, file=file) for p in error.problems]) from None
    return scenario_obj, plan_obj


def show_plan_warnings(plan_obj: AnalysisPlan) -> AnalysisPlan:
    """Print what is likely to go wrong with a plan's settings; returns the plan."""
    from trialsim.design_checks import plan_warnings

    for text in plan_warnings(plan_obj):
        warn(text)
    return plan_obj


def fail(error: ScenarioError) -> typer.Exit:
    """Print a user error without a traceback (its text never read as markup) and return the exit to raise (code 2)."""
    err.print(Text.assemble(("error:", "bold red"), " ", error.render()), highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


Resume = Annotated[bool, typer.Option("--resume", help="continue the interrupted run in --out")]
Backend = Annotated[str, typer.Option(help="process (a pool on this machine) | dask (a dask.distributed cluster)")]
Scheduler = Annotated[
    Optional[str], typer.Option(help="dask scheduler address (default: a local cluster of --workers processes)")
]
MemoryMb = Annotated[
    float, typer.Option("--memory-mb", min=1, help="memory budget of one worker's chunk of trials (MB)")
]


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file, or the name of a bundled scenario")],
    plan: Annotated[Optional[str], typer.Option("--plan", help="analysis-plan file overriding the scenario's")] = None,
    trials: Annotated[
        Optional[int],
        typer.Option(min=1, max=10_000_000, help="trials per design point (default 1000; with --mcse: per round)"),
    ] = None,
    seed: Seed = None,
    workers: Workers = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            help="run directory (manifest.json, parts/, trials.parquet, summary.json); default "
            "trialsim-out/SCENARIO-PLAN-seedS (or -TIME without --seed)",
        ),
    ] = None,
    resume: Resume = False,
    mcse: Annotated[
        Optional[float],
        typer.Option(min=0.0005, max=0.25, help="add rounds of trials until every power has at most this MCSE"),
    ] = None,
    max_trials: Annotated[
        Optional[int], typer.Option("--max-trials", min=1, max=10_000_000, help="with --mcse: cap per design point")
    ] = None,
    backend: Backend = "process",
    scheduler: Scheduler = None,
    memory_mb: MemoryMb = DEFAULT_BUDGET_MB,
    quiet: Quiet = False,
    keep_idata: Annotated[
        int,
        typer.Option(
            "--keep-idata",
            min=0,
            max=10_000,
            help="NUTS plans: save the InferenceData of the first K trials to OUT/idata/",
        ),
    ] = 0,
    report: Annotated[bool, typer.Option("--report", help="also write the HTML report OUT/report.html")] = False,
    sets: Sets = None,
) -> None:
    """Simulate TRIALS trials per design point into a run directory, print the operating characteristics.

    The directory holds one run: run again with more --trials to grow it, --resume to continue an interrupted
    one; anything else is refused before simulating.
    """
    from trialsim.session import open_run

    try:
        scenario_obj, plan_obj = load_checked(scenario, plan, sets)
        check_backend(backend, scheduler)
        if out_dir is None:
            out_dir = default_run_directory(scenario_obj, plan_obj, seed, sets)
        opening = open_run(
            out_dir, scenario_obj, plan_obj, trials=trials, seed=seed, resume=resume, mcse=mcse,
            max_trials=max_trials, memory_mb=memory_mb,
        )
        sources = design_sources(scenario, plan, scenario_obj, sets)
    except ScenarioError as error:
        raise fail(error) from None
    resume_hint = " ".join(
        ["trialsim run", scenario, *([f"--plan {plan}"] if plan else []), *(f"--set {item}" for item in sets or []),
         f"--out {out_dir}", "--resume"]
    )
    with _progress(quiet, compiles_model(plan_obj)) as bar:
        results = run_or_exit(
            bar, opening, scenario_obj, plan_obj, resume_hint, workers=cap_workers(workers), backend=backend,
            scheduler=scheduler, memory_mb=memory_mb, keep_idata=keep_idata, sources=sources,
        )
    print_results(results)
    for line in run_lines(results.summary):
        out.print(Text(line), highlight=False)
    out.print(f"wrote {out_dir}: summary.json, trials.parquet (and the run's manifest.json and parts/)",
              markup=False, highlight=False)
    if report:
        write_report_or_fail(out_dir)


def default_run_directory(
    scenario_obj: Scenario, plan_obj: AnalysisPlan, seed: Optional[int], sets: Optional[list[str]]
) -> Path:
    """``trialsim-out/<scenario>-<plan>-seed<S>`` (``-<UTC time>`` without a seed; ``-<scenario hash>`` added with
    --set): running the same design and seed again reuses (grows, resumes) its directory, another design or seed
    gets its own, so a default directory never holds a different run."""
    import time

    from trialsim.results import content_hash

    name = f"{scenario_obj.name}-{plan_obj.name}"
    name += f"-seed{seed}" if seed is not None else time.strftime("-%Y%m%d-%H%M%S", time.gmtime())
    if sets:
        name += f"-{content_hash(scenario_obj)[:8]}"
    return Path("trialsim-out") / name


def _progress(quiet: bool, compiling: bool = False) -> TrialProgress:
    """Progress on stderr: a bar on a terminal, plain lines otherwise; "compiling model" first for NUTS plans."""
    return TrialProgress(err, quiet=quiet, compiling=compiling)


def print_results(results: SimulationResults) -> None:
    """The operating characteristics (one row per design point and comparison), the design points and the notes."""
    for renderable in tables.run_output(results):
        out.print(renderable, highlight=False)


def check_backend(backend: str, scheduler: Optional[str]) -> None:
    """The backend option and a scheduler address only with dask (checked before anything runs)."""
    from trialsim.backends import BACKENDS

    if backend not in BACKENDS:
        raise ScenarioError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if scheduler is not None and backend != "dask":
        raise ScenarioError("--scheduler needs --backend dask")


def design_sources(scenario: str, plan: Optional[str], scenario_obj: Scenario, sets: Optional[list[str]]) -> dict:
    """The scenario and plan files as written (path, SHA-256, text) and the ``--set`` overrides applied to them,
    recorded in the run's manifest (which also holds the scenario and plan as run)."""
    import hashlib

    paths = {"scenario": resolve_input(scenario, "scenarios")}
    paths["plan"] = (
        resolve_input(plan, "analysis") if plan else plan_path_for(scenario_obj.analysis_plan, paths["scenario"])
    )
    sources = {}
    for kind, path in paths.items():
        text = path.read_text(encoding="utf-8")
        sources[kind] = {"path": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
    sources["overrides"] = list(sets or [])
    return sources


def run_or_exit(bar: TrialProgress, opening, scenario_obj: Scenario, plan_obj: AnalysisPlan,
                resume_hint: Optional[str], **options) -> SimulationResults:
    """A run-directory session with a progress bar; Ctrl-C stops it, says how to resume (``resume_hint``; None:
    the directory is temporary) and exits with 130."""
    from trialsim.runner import default_workers
    from trialsim.session import RunInterrupted, run_session

    workers = options.pop("workers") or default_workers()
    task, total = None, 0

    def more(trials: int) -> None:  # the trials a session has to simulate (each round of a precision-sized run)
        nonlocal task, total
        total += trials
        if task is None:
            task = bar.add_task(f"simulating {scenario_obj.name}", total=total)
        else:
            bar.update(task, total=total)

    try:
        return run_session(
            opening, scenario_obj, plan_obj, workers=workers, command=["trialsim", *sys.argv[1:]],
            progress=lambda done: bar.advance(task, done), total=more, **options,
        )
    except ScenarioError as error:
        raise fail(error) from None
    except RunInterrupted as stop:
        bar.stop()
        message = f"{stop}; continue with: {resume_hint}" if resume_hint else "interrupted (nothing kept without --out)"
        err.print(Text(message), highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None


def run_lines(summary: dict) -> list[str]:
    """Lines under the tables: with several arms and assurance, P(at least one arm succeeds) under the design
    priors (the table has it under the point effects); a precision-sized run's rule."""
    lines = []
    for point in summary["design_points"]:
        if "any_success_assurance" in point:
            lines.append(
                f"N = {point['sample_size']}: P(at least one arm succeeds) with effects from the design priors "
                f"{point['any_success_assurance']:.3f} ± {point['any_success_assurance_mcse']:.3f}"
            )
    precision = summary.get("precision")
    if precision is not None:
        verdict = "reached" if precision["reached"] else "NOT reached at the cap"
        lines.append(
            f"precision: MCSE <= {precision['mcse']:g} {verdict} with {precision['trials']:,} trials per design point "
            f"({precision['rounds']} rounds; largest conservative MCSE {precision['largest_conservative_mcse']:.4f})"
        )
    return lines


@app.command()
def compare(
    scenarios: Annotated[list[str], typer.Argument(help="scenario files or bundled names, printed side by side")],
    trials: Trials = 1000,
    seed: Seed = None,
    workers: Workers = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="if given, each scenario's run directory is OUT/<scenario name>/")
    ] = None,
    resume: Resume = False,
    backend: Backend = "process",
    scheduler: Scheduler = None,
    memory_mb: MemoryMb = DEFAULT_BUDGET_MB,
    quiet: Quiet = False,
    sets: Sets = None,
    sample_size: SampleSize = None,
) -> None:
    """Run several scenarios and print them side by side: power, assurance, N, duration, dropout, AEs, sessions.

    Each scenario uses its own analysis plan, at the common --sample-size or at its largest sample size.
    """
    from trialsim.cells import at_largest, size_override

    cells = []
    try:
        check_backend(backend, scheduler)
        for name in scenarios:
            scenario_obj, plan_obj = load_checked(name, None, (sets or []) + size_override(sample_size))
            cells.append((scenario_obj.name, at_largest(scenario_obj), plan_obj))
    except ScenarioError as error:
        raise fail(error) from None
    results, seed = run_cells(cells, out_dir, trials, seed, resume, quiet, workers=cap_workers(workers),
                              backend=backend, scheduler=scheduler, memory_mb=memory_mb)
    out.print(comparison_table(results, trials, seed))


def comparison_table(results: list[SimulationResults], trials: int, seed: int) -> FittedTable:
    """Scenarios as columns, metrics as rows (last design point of each scenario)."""
    return tables.compare_output(results, trials, seed)


def run_cells(
    cells: list[tuple[str, Scenario, AnalysisPlan]], out_dir: Optional[Path], trials: int, seed: Optional[int],
    resume: bool, quiet: bool, **options,
) -> tuple[list[SimulationResults], int]:
    """Several runs with one seed, each in its run directory ``out_dir/<name>`` (a temporary one without
    ``out_dir``), every directory checked before the first simulation; one progress bar."""
    import tempfile

    from trialsim.session import open_run

    names = [name for name, _, _ in cells]
    with tempfile.TemporaryDirectory(prefix="trialsim-") as scratch:
        root = out_dir if out_dir is not None else Path(scratch)
        try:
            if len(set(names)) < len(names):
                raise ScenarioError(f"each run needs its own directory: {', '.join(names)} repeats a name")
            seed = common_seed([root / name for name in names], seed)
            openings = [
                open_run(root / name, scenario_obj, plan_obj, trials=trials, seed=seed, resume=resume,
                         memory_mb=options["memory_mb"])
                for name, scenario_obj, plan_obj in cells
            ]
        except ScenarioError as error:
            raise fail(error) from None
        hint = "the same command with --resume" if out_dir is not None else None
        with _progress(quiet, any(compiles_model(plan_obj) for _, _, plan_obj in cells)) as bar:
            results = [
                run_or_exit(bar, opening, scenario_obj, plan_obj, hint, **dict(options))
                for opening, (_, scenario_obj, plan_obj) in zip(openings, cells)
            ]
        return results, seed


def common_seed(directories: list[Path], seed: Optional[int]) -> int:
    """The seed of a set of runs: the given one, else the one recorded by any of their directories (continuing
    them), else fresh entropy."""
    from trialsim.rundir import RunDirectory
    from trialsim.runner import master_seed

    if seed is None:
        for directory in directories:
            manifest = RunDirectory(directory).read_manifest()
            if manifest is not None and "seed" in manifest:
                return int(manifest["seed"])
    return master_seed(seed)


@app.command()
def stress(
    scenarios: Annotated[list[str], typer.Argument(help="scenario files or bundled names (include null twins)")],
    plans: Annotated[list[str], typer.Option("--plans", help="analysis-plan files or bundled names (repeat)")],
    trials: Trials = 1000,
    seed: Seed = None,
    workers: Workers = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="if given, each cell's run directory is OUT/<scenario>__<plan>/")
    ] = None,
    resume: Resume = False,
    backend: Backend = "process",
    scheduler: Scheduler = None,
    memory_mb: MemoryMb = DEFAULT_BUDGET_MB,
    quiet: Quiet = False,
    sets: Sets = None,
    sample_size: SampleSize = None,
) -> None:
    """Cross scenarios with analysis plans: type I error (null scenarios) or power, bias, RMSE, coverage, MCSE and
    the share of fits failing diagnostics, per cell, at each scenario's largest sample size (or --sample-size).

    Use it to ask whether an analysis plan keeps its type I error and stays unbiased when dropout depends on
    outcomes: cross a scenario and its null twin (with MCAR, MAR or MNAR dropout) with several plans. Cells whose
    plan cannot analyse the scenario are listed and skipped.
    """
    from trialsim.cells import runnable_cells, size_override
    from trialsim.overrides import with_overrides

    try:
        check_backend(backend, scheduler)
        plan_objs = [show_plan_warnings(load_plan(name)) for name in plans]
        overrides = (sets or []) + size_override(sample_size)
        scenario_objs = [with_overrides(load_scenario(name), overrides, name) for name in scenarios]
        runnable, skipped = runnable_cells(scenario_objs, plan_objs)
    except ScenarioError as error:
        raise fail(error) from None
    cells = [(f"{scenario_obj.name}__{plan_obj.name}", scenario_obj, plan_obj) for scenario_obj, plan_obj in runnable]
    results, seed = run_cells(cells, out_dir, trials, seed, resume, quiet, workers=cap_workers(workers),
                              backend=backend, scheduler=scheduler, memory_mb=memory_mb)
    out.print(stress_table(results, trials, seed))
    for line in skipped:
        out.print(Text(f"skipped {line}", style="yellow"), highlight=False)


def stress_table(results: list[SimulationResults], trials: int, seed: int) -> Group:
    """One table per scenario, one row per plan and comparison."""
    return Group(*tables.stress_output(results, trials, seed))


@app.command()
def trial(
    source: Annotated[str, typer.Argument(help="a run directory, or a scenario file or bundled scenario name")],
    index: Annotated[int, typer.Option("--index", min=0, help="the trial's index (column `trial` of trials.parquet)")],
    seed: Seed = None,
    design_point: Annotated[
        Optional[int],
        typer.Option("--design-point", min=0, help="position in the scenario's sample sizes (column `design_point`; "
                     "default: the largest N)"),
    ] = None,
    assurance: Annotated[
        bool, typer.Option("--assurance", help="the trial with effects from the design priors")
    ] = False,
    plan: Annotated[Optional[str], typer.Option("--plan", help="analysis-plan file overriding the scenario's")] = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="write its per-patient table, event log and analysis here")
    ] = None,
) -> None:
    """Simulate trial INDEX of a run again, exactly: its patients, events and analysis (its row of trials.parquet).

    SOURCE is the run directory (its scenario, plan and seed are used) or the scenario with --seed.
    """
    from trialsim.runner import rerun_trial
    from trialsim.trial_view import TrialView

    try:
        scenario_obj, plan_obj, seed = trial_source(source, plan, seed)
        sizes = scenario_obj.sample_sizes
        point = sizes.index(max(sizes)) if design_point is None else design_point
        if point >= len(sizes):
            raise ScenarioError(f"--design-point {point}: the scenario has {len(sizes)} (0 to {len(sizes) - 1}; "
                                f"sample sizes {sizes})")
        if assurance and not scenario_obj.assurance:
            raise ScenarioError("--assurance: the scenario has no assurance runs (assurance: false)")
        if out_dir is not None:
            from trialsim.rundir import RunDirectory

            RunDirectory(out_dir).check_writable()
        data, timeline, row = rerun_trial(scenario_obj, plan_obj, seed, index, sizes[point], assurance=assurance)
    except ScenarioError as error:
        raise fail(error) from None
    view = TrialView(scenario_obj.name, plan_obj.name, seed, point, sizes[point], assurance, index, data, timeline,
                     row)
    out.print(view.render(), highlight=False)
    if out_dir is not None:
        try:
            paths = view.write(out_dir)
        except OSError as error:
            raise fail(ScenarioError(f"--out {out_dir}: cannot write ({error.strerror or error})")) from None
        out.print("wrote " + ", ".join(str(path) for path in paths), highlight=False)


def trial_source(source: str, plan: Optional[str], seed: Optional[int]) -> tuple[Scenario, AnalysisPlan, int]:
    """The scenario, plan and seed of a run directory (its manifest), or of a scenario with --seed."""
    from trialsim.rundir import FORMAT, RunDirectory
    from trialsim.spec.loading import validate_model

    directory = RunDirectory(source)
    manifest = directory.read_manifest() if directory.path.is_dir() else None
    if manifest is None:
        if seed is None:
            raise ScenarioError("--seed: give the run's master seed (in its table title and summary.json), or the "
                                "run directory instead of the scenario")
        return *load_checked(source, plan), seed
    if manifest.get("format") != FORMAT or "scenario" not in manifest:
        raise ScenarioError(f"{source}: its manifest.json does not record a run; give the scenario and --seed")
    if plan is not None:
        raise ScenarioError("--plan: a run directory re-runs its own plan; give the scenario to use another")
    if seed is not None and seed != manifest["seed"]:
        raise ScenarioError(f"--seed {seed}: the run in {source} has seed {manifest['seed']}")
    where = str(directory.manifest_path)
    scenario_obj = validate_model(Scenario, manifest["scenario"], where)
    return scenario_obj, validate_model(AnalysisPlan, manifest["plan"], where), int(manifest["seed"])


@app.command(name="report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="directory written by `trialsim run` (summary.json, trials.parquet)")],
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="HTML file to write (default RUN_DIR/report.html)")
    ] = None,
    target: Annotated[float, typer.Option(min=0.01, max=0.99, help="target power drawn on the power curve")] = 0.8,
) -> None:
    """Write a self-contained HTML report of a run: design, power curves, distributions, a gallery of trials."""
    write_report_or_fail(run_dir, out_file, target)


def write_report_or_fail(run_dir: Path, out_file: Optional[Path] = None, target: float = 0.8) -> None:
    """Write the report (matplotlib and jinja2 are imported only here) and say where; user errors exit with 2."""
    from trialsim.report import write_report

    try:
        path = write_report(run_dir, out_file, target=target)
    except ScenarioError as error:
        raise fail(error) from None
    out.print(f"wrote {path}", markup=False, highlight=False)


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="scenario or analysis-plan YAML files, or bundled names")],
    explain: Annotated[
        bool, typer.Option("--explain", help="restate each scenario's design and decision rule in plain words")
    ] = False,
    sets: Sets = None,
) -> None:
    """Check scenario and analysis-plan files without simulating (a scenario's plan is checked too) and show what
    each arm resolved to against the evidence library."""
    from trialsim.explain import arm_lines
    from trialsim.explain import explain as explain_design

    failed = False
    for name in files:
        try:
            kind = file_kind(name)
            if kind == SCENARIO:
                scenario_obj, plan_obj = load_checked(name, None, sets)
            else:
                show_plan_warnings(load_plan(name))
                out.print(Text.assemble(("ok", "green"), f" {name} ({kind})"), highlight=False)
                continue
        except ScenarioError as error:
            fail(error)
            failed = True
            continue
        out.print(Text.assemble(("ok", "green"), f" {name} (scenario; plan {plan_obj.name})"), highlight=False)
        sections = explain_design(scenario_obj, plan_obj) if explain else [("", arm_lines(scenario_obj))]
        for heading, paragraphs in sections:
            if heading:
                out.print(Padding(Text(heading, style="bold"), (0, 0, 0, 2), expand=False))
            for paragraph in paragraphs:
                indent = 4 + len(paragraph) - len(paragraph.lstrip(" "))
                out.print(Padding(Text(paragraph.lstrip(" ")), (0, 0, 0, indent), expand=False), highlight=False)
    if failed:
        raise typer.Exit(code=2)


@app.command(name="list")
def list_command(
    what: Annotated[str, typer.Argument(help="scenarios | plans | interventions")],
) -> None:
    """List the bundled scenarios or analysis plans, or the evidence library's interventions, one line each."""
    from trialsim.catalogue import catalogue

    try:
        rows = catalogue(what)
    except ScenarioError as error:
        raise fail(error) from None
    out.print(FittedTable([Column("name", "left"), Column("description", "left", wrap=True)], rows))


@app.command()
def schema(kind: Annotated[str, typer.Argument(help="scenario | plan | summary")]) -> None:
    """Print the JSON Schema of scenario files, analysis-plan files or summary.json (for editors and tools)."""
    import json

    from trialsim.spec.json_schema import json_schema, schema_models

    if kind not in schema_models():
        raise fail(ScenarioError(f"trialsim schema {kind}: choose one of {', '.join(schema_models())}"))
    print(json.dumps(json_schema(kind), indent=2, ensure_ascii=False))


@app.command()
def calibrate(
    scenario: Annotated[str, typer.Argument(help="scenario file or bundled name (its null twin is simulated)")],
    target_type1: Annotated[
        float, typer.Option("--target-type1", min=0.0001, max=0.4999, help="target (family-wise) type I error")
    ] = 0.025,
    shape: Annotated[
        str, typer.Option(help="threshold shape over the analyses: constant | obrien_fleming")
    ] = "constant",
    plan: Annotated[Optional[str], typer.Option("--plan", help="analysis-plan file overriding the scenario's")] = None,
    sample_size: Annotated[Optional[int], typer.Option(min=4, help="design point (default: the largest)")] = None,
    trials: Trials = 10_000,
    seed: Seed = None,
    workers: Workers = None,
    write_plan: Annotated[
        Optional[Path], typer.Option("--write-plan", help="write the plan with the calibrated thresholds here")
    ] = None,
    verify: Annotated[bool, typer.Option(help="check the thresholds on fresh null trials (another seed)")] = True,
    quiet: Quiet = False,
    sets: Sets = None,
) -> None:
    """Find efficacy thresholds giving a target type I error on the scenario's null twin (all effects 0).

    One simulation of null trials without efficacy stopping gives every trial's statistic at every look; the
    threshold is its quantile (common random numbers, no search). The Monte Carlo 95% interval of each
    threshold is printed; --verify runs fresh null trials with the thresholds and reports their type I error.
    """
    from trialsim.calibration import SHAPES, null_twin
    from trialsim.calibration import calibrate as run_calibration
    from trialsim.runner import master_seed, simulate

    try:
        if shape not in SHAPES:
            raise ScenarioError(f"--shape {shape}: choose one of {', '.join(SHAPES)}")
        scenario_obj, plan_obj = load_checked(scenario, plan, sets)
        if sample_size is not None and sample_size not in scenario_obj.sample_sizes:
            raise ScenarioError(f"--sample-size {sample_size}: not a design point of the scenario "
                                f"({scenario_obj.sample_sizes})")
    except ScenarioError as error:
        raise fail(error) from None
    seed = master_seed(seed)
    with _progress(quiet, compiles_model(plan_obj)) as bar:
        task = bar.add_task(f"null trials of {scenario_obj.name}", total=trials * (2 if verify else 1))
        result = run_calibration(
            scenario_obj, plan_obj, target_type1, trials=trials, seed=seed, shape=shape, sample_size=sample_size,
            workers=workers, progress=lambda done: bar.advance(task, done),
        )
        calibrated = result.as_plan(plan_obj)
        check = None
        if verify:
            fresh = simulate(
                null_twin(scenario_obj).model_copy(update={"sample_size": result.sample_size}), calibrated, trials,
                seed + 1, workers=workers, progress=lambda done: bar.advance(task, done),
            )
            family = fresh.trials[[c for c in fresh.trials.columns if c.endswith(".success") and c.count(".") == 1]]
            rate = float(family.any(axis=1).mean())
            check = {"type1": rate, "mcse": (rate * (1 - rate) / trials) ** 0.5, "seed": seed + 1}
    out.print(tables.calibration_table(result))
    out.print(
        f"type I error on the calibration trials {result.type1:.4f} ± {result.type1_mcse:.4f} (by construction)",
        highlight=False,
    )
    if check is not None:
        out.print(
            f"fresh null trials (seed {check['seed']}): type I error {check['type1']:.4f} ± {check['mcse']:.4f}",
            highlight=False,
        )
    if write_plan is not None:
        import yaml

        try:
            write_plan.write_text(yaml.safe_dump(calibrated.model_dump(mode="json", exclude_none=True),
                                                 sort_keys=False))
        except OSError as error:
            raise fail(ScenarioError(f"--write-plan {write_plan}: {error.strerror or error}")) from None
        out.print(f"wrote {write_plan}", markup=False, highlight=False)


@app.command()
def size(
    scenario: Annotated[str, typer.Argument(help="scenario file or bundled name")],
    target_power: Annotated[Optional[float], typer.Option("--target-power", min=0.01, max=0.99)] = None,
    target_assurance: Annotated[Optional[float], typer.Option("--target-assurance", min=0.01, max=0.99)] = None,
    target_duration_weeks: Annotated[
        Optional[float], typer.Option("--target-duration-weeks", min=0.1, help="finish within this many weeks")
    ] = None,
    duration_probability: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="with --target-duration-weeks: P(duration ≤ target)")
    ] = 0.8,
    search: Annotated[str, typer.Option(help="what to search: sample_size | sites | rate")] = "sample_size",
    comparison: Annotated[Optional[str], typer.Option(help="active arm whose success counts (several arms)")] = None,
    max_n: Annotated[Optional[float], typer.Option("--max-n", min=1, help="upper limit of the searched value")] = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="analysis-plan file overriding the scenario's")] = None,
    seed: Seed = None,
    workers: Workers = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="write OUT/size.json")] = None,
    quiet: Quiet = False,
    sets: Sets = None,
) -> None:
    """Find the smallest N (or number of sites, or recruitment rate) reaching a target power, assurance or
    probability of finishing in time, with 95% Monte Carlo confidence.

    Simulates a spread of values with common random numbers, fits a monotone probit curve, refines, then verifies
    the answer with fresh trials until the target lies outside the Monte Carlo interval.
    """
    import json

    from trialsim.runner import master_seed
    from trialsim.sizing import SEARCHES, Target, find_size

    try:
        scenario_obj, plan_obj = load_checked(scenario, plan, sets)
        given = [v is not None for v in (target_power, target_assurance, target_duration_weeks)]
        if sum(given) != 1:
            raise ScenarioError("give exactly one of --target-power, --target-assurance, --target-duration-weeks")
        if search not in SEARCHES:
            raise ScenarioError(f"--search {search}: choose one of {', '.join(SEARCHES)}")
        actives = [arm.name for arm in scenario_obj.arms if not arm.control]
        if target_duration_weeks is not None:
            target = Target("duration", duration_probability, weeks=target_duration_weeks)
        else:
            if comparison is None and len(actives) > 1:
                raise ScenarioError(f"several active arms: choose one with --comparison ({', '.join(actives)})")
            if comparison is not None and comparison not in actives:
                raise ScenarioError(f"--comparison {comparison}: not an active arm ({', '.join(actives)})")
            kind, level = ("power", target_power) if target_power is not None else ("assurance", target_assurance)
            if kind == "assurance":
                check_assurance = scenario_obj.model_copy(update={"assurance": True})
                load_checked_design(check_assurance, plan_obj)
            target = Target(kind, level, comparison or actives[0])
        if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
            raise ScenarioError(f"--out {out_dir}: exists and is not a directory")
    except ScenarioError as error:
        raise fail(error) from None
    seed = master_seed(seed)
    with _progress(quiet, compiles_model(plan_obj)) as bar:
        task = bar.add_task(f"searching {search} for {scenario_obj.name}", total=None)
        try:
            result = find_size(
                scenario_obj, plan_obj, target, search=search, seed=seed, workers=workers, maximum=max_n,
                progress=lambda done: bar.advance(task, done),
            )
        except ValueError as error:
            raise fail(ScenarioError(str(error))) from None
    out.print(Text(tables.size_lines(result, scenario_obj)), highlight=False)
    if out_dir is not None:
        try:
            result.verification.save(out_dir)
            (out_dir / "size.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            reason = error.strerror or error
            raise fail(ScenarioError(f"--out {out_dir}: cannot write the results ({reason})")) from None
        out.print(f"wrote {out_dir}: size.json and the verification run at the answer (summary.json, "
                  "trials.parquet); `trialsim report` shows it with the fitted curve", markup=False, highlight=False)


def load_checked_design(scenario_obj: Scenario, plan_obj: AnalysisPlan) -> None:
    """The checks that need the evidence library for an in-memory scenario (e.g. design priors for assurance)."""
    from trialsim.runner import check_design

    check_design(scenario_obj, plan_obj)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ScenarioError as error:  # a user mistake that slipped past a command's own handling
        fail(error)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
