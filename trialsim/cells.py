"""The runs of ``compare`` and ``stress``: each scenario at one sample size, and the scenario × plan cells that can
be run (a plan that cannot analyse a scenario, e.g. a responder plan on a continuous endpoint, sets its cell aside
with the reason instead of stopping the others)."""

from __future__ import annotations

from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario


def at_largest(scenario: Scenario) -> Scenario:
    """The scenario with only its largest design point."""
    return scenario.model_copy(update={"sample_size": max(scenario.sample_sizes)})


def size_override(sample_size: int | None) -> list[str]:
    """``--sample-size N`` as the ``--set`` it amounts to (validated like the file)."""
    return [] if sample_size is None else [f"sample_size={sample_size}"]


def runnable_cells(
    scenarios: list[Scenario], plans: list[AnalysisPlan]
) -> tuple[list[tuple[Scenario, AnalysisPlan]], list[str]]:
    """Every scenario (at its largest N) × plan that passes the design checks, and one line per cell set aside;
    a ScenarioError listing the reasons when no cell is left."""
    from trialsim.runner import check_design

    cells, skipped = [], []
    for scenario in scenarios:
        for plan in plans:
            try:
                check_design(scenario, plan)
            except ScenarioError as error:
                reasons = "; ".join(str(problem) for problem in error.problems)
                skipped.append(f"{scenario.name} × {plan.name}: {reasons}")
                continue
            cells.append((at_largest(scenario), plan))
    if not cells:
        raise ScenarioError([Problem("", "", f"no plan can analyse {line}") for line in skipped])
    return cells, skipped
