"""Command line: ``trialsim run | validate``.

User mistakes (bad files, bad arguments) print a short message and exit with code 2, never a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trialsim.exceptions import ScenarioError
from trialsim.results import SimulationResults
from trialsim.spec.loading import load_design, load_plan, load_scenario, plan_path_for, read_yaml, resolve_input

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate clinical trials in treatment-resistant schizophrenia and report their operating characteristics.",
    pretty_exceptions_enable=False,
)
# Piped output gets a wide table rather than rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def with_file(check, file: str):
    """Run ``check``; problems it raises without a file name get ``file``."""
    try:
        return check()
    except ScenarioError as error:
        raise ScenarioError([p if p.file else replace(p, file=file) for p in error.problems]) from None


def fail(error: ScenarioError) -> typer.Exit:
    """Print a user error without a traceback and return the exit to raise (code 2)."""
    err.print(f"[bold red]error:[/] {error.render()}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file, or the name of a bundled scenario")],
    plan: Annotated[Optional[str], typer.Option("--plan", help="analysis-plan file overriding the scenario's")] = None,
    trials: Annotated[int, typer.Option(min=1, max=10_000_000, help="simulated trials per design point")] = 1000,
    seed: Annotated[
        Optional[int], typer.Option(min=0, help="master seed (default: fresh entropy, recorded in the output)")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, max=1024, help="worker processes (default: all cores)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for summary.json and trials.parquet")] = Path(
        "trialsim-out"
    ),
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Simulate TRIALS trials per design point, print the operating characteristics and save them."""
    from trialsim.runner import check_design, simulate

    try:
        scenario_obj, plan_obj = load_design(scenario, plan)
        with_file(lambda: check_design(scenario_obj, plan_obj), str(resolve_input(scenario, "scenarios")))
        if out_dir.exists() and not out_dir.is_dir():
            raise ScenarioError(f"--out {out_dir}: exists and is not a directory")
    except ScenarioError as error:
        raise fail(error) from None
    total = trials * len(scenario_obj.sample_sizes)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task(f"simulating {scenario_obj.name}", total=total)
        results = simulate(
            scenario_obj,
            plan_obj,
            trials,
            seed,
            workers=workers,
            progress=lambda done: bar.advance(task, done),
        )
    try:
        summary_path, trials_path = results.save(out_dir)
    except OSError as error:
        raise fail(ScenarioError(f"--out {out_dir}: cannot write the results ({error.strerror or error})")) from None
    print_results(results)
    out.print(f"wrote {summary_path} and {trials_path}")


def print_results(results: SimulationResults) -> None:
    """The operating-characteristics table (one row per design point and comparison) and the safety/resource notes."""
    summary = results.summary
    analysis = summary["analysis"]
    title = (
        f"{summary['scenario']} · plan {summary['analysis_plan']} · {summary['trials']} trials per design point · "
        f"seed {summary['seed']}"
    )
    assurance = summary.get("assurance", False)
    table = Table(title=title, title_justify="left")
    headers = ["N", "comparison", "true", "power", "MCSE"] + (["assurance"] if assurance else [])
    headers += ["mean est", "bias", "RMSE", "coverage", "E[N]", "completers", "dropout", "weeks median", "weeks p90"]
    for column in headers:
        table.add_column(column, justify="left" if column == "comparison" else "right")
    for point in summary["design_points"]:
        for c in point["comparisons"]:
            row = [str(point["sample_size"]), f"{c['arm']} vs {c['control']}", f"{c['true_effect']:.2f}",
                   f"{c['power']:.3f}", f"{c['power_mcse']:.3f}"]
            if assurance:
                row.append(f"{c['assurance']:.3f}")
            row += [
                f"{c['mean_estimate']:.2f}",
                f"{c['bias']:+.2f}",
                f"{c['rmse']:.2f}",
                f"{c['coverage']:.3f}",
                f"{point['expected_n']:.0f}",
                f"{point['expected_completers']:.1f}",
                f"{point['dropout_fraction']:.1%}",
                f"{point['duration_weeks']['median']:.1f}",
                f"{point['duration_weeks']['p90']:.1f}",
            ]
            table.add_row(*row)
    out.print(table)
    decision = analysis["decision"]
    out.print(
        f"Effects positive = improvement. Success: P(effect > {decision['margin']:g}) ≥ {decision['threshold']:g}. "
        f"Analysis: {analysis['note']}.",
        highlight=False,
    )
    last = summary["design_points"][-1]
    safety = _safety_lines(last)
    if safety:
        out.print(f"At N = {last['sample_size']} (per patient randomised): " + "; ".join(safety), highlight=False)
    impossible = sum(c["analyses_impossible"] for p in summary["design_points"] for c in p["comparisons"])
    if impossible:
        out.print(f"[yellow]{impossible} analyses were impossible (an arm without completers) and count as failures.")


def _safety_lines(point: dict) -> list[str]:
    """Short text on AEs, dropout reasons, resources and monitoring of one design point."""
    lines = []
    for arm, events in point.get("adverse_events", {}).items():
        top = sorted(((v, k) for k, v in events.items() if k != "any_teae"), reverse=True)[:3]
        if top:
            lines.append(f"{arm} AEs " + ", ".join(f"{name} {value:.1%}" for value, name in top))
    for name, use in point.get("resources", {}).items():
        lines.append(
            f"{name}: {use.get('sessions', 0):.0f} sessions, {use.get('unit_hours', 0):.0f} h, "
            f"{use.get('patients_waiting', 0):.1f} waiting (mean wait {use.get('mean_wait_weeks', 0):.1f} wk)"
        )
    for arm, visits in point.get("monitoring_visits", {}).items():
        lines.append(f"{arm} monitoring visits {visits:.0f}")
    return lines


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="scenario or analysis-plan YAML files")],
) -> None:
    """Check scenario and analysis-plan files without simulating (a scenario's plan is checked too)."""
    failed = False
    for name in files:
        try:
            kind = "scenario" if "arms" in read_yaml(resolve_input(name, "scenarios")) else "plan"
            if kind == "scenario":
                from trialsim.runner import check_design

                scenario = load_scenario(name)
                plan = load_plan(plan_path_for(scenario, name))
                with_file(lambda: check_design(scenario, plan), str(resolve_input(name, "scenarios")))
            else:
                load_plan(name)
            out.print(f"[green]ok[/] {name} ({kind})")
        except ScenarioError as error:
            err.print(f"[bold red]error:[/] {error.render()}", highlight=False, soft_wrap=True)
            failed = True
    if failed:
        raise typer.Exit(code=2)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ScenarioError as error:  # a user mistake that slipped past a command's own handling
        err.print(f"[bold red]error:[/] {error.render()}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
