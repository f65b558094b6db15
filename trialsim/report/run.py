"""What a report reads: a run's summary dict, its per-trial table, and the scenario and plan when they were stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from trialsim.engine.trial import Timeline
from trialsim.inference.data import TrialData
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario


@dataclass(frozen=True)
class Run:
    """A run as the report sees it.

    ``resimulated`` holds the first trials of the largest design point simulated again from their seeds (the
    gallery and the recruitment curves); it is empty when the scenario is unknown. ``size_search`` is the dict of
    ``size.json`` when the run is the verification run of a size search (``trialsim size --out``), else ``None``.
    """

    summary: dict[str, Any]
    trials: pd.DataFrame
    scenario: Scenario | None
    plan: AnalysisPlan | None
    target: float
    resimulated: list[tuple[TrialData, Timeline]]
    size_search: dict[str, Any] | None = None

    @property
    def points(self) -> list[dict[str, Any]]:
        """The summary's design points (index = ``design_point`` in the trials table)."""
        return self.summary["design_points"]

    @property
    def largest(self) -> int:
        """Index of the design point with the largest sample size."""
        return max(range(len(self.points)), key=lambda i: self.points[i]["sample_size"])

    def by_size(self) -> list[int]:
        """Design-point indices in increasing sample size."""
        return sorted(range(len(self.points)), key=lambda i: self.points[i]["sample_size"])

    def adaptive_points(self) -> list[int]:
        """Indices of the design points with interim looks, in increasing sample size."""
        return [i for i in self.by_size() if "adaptive" in self.points[i]]

    def rows(self, point: int, mode: str = "point") -> pd.DataFrame:
        """Trials of one design point with effects at their point values (``point``) or from the design priors."""
        table = self.trials
        return table[(table["design_point"] == point) & (table["effect_mode"] == mode)]

    @property
    def arm_names(self) -> list[str]:
        return [arm["name"] for arm in self.summary["arms"]]

    @property
    def effect_unit(self) -> str:
        return effect_unit(self.summary)


def effect_unit(summary: dict[str, Any]) -> str:
    """Unit of the compared effects: PANSS points, or a risk difference / log odds ratio for responders."""
    analysis = summary["analysis"]
    if analysis["model"] != "responder":
        return "PANSS points"
    return "risk difference" if analysis["engine"] == "conjugate" else "log odds ratio"


def is_null(comparison: dict[str, Any]) -> bool:
    """Whether a comparison's true effect is zero (its P(success) is a type I error)."""
    return abs(comparison["true_effect"]) < 1e-12


def comparison_label(comparison: dict[str, Any]) -> str:
    return f"{comparison['arm']} vs {comparison['control']}"


def decision_text(summary: dict[str, Any]) -> str:
    """The decision rule in words."""
    decision = summary["analysis"]["decision"]
    text = f"P(effect > {decision['margin']:g} | data) ≥ {decision['threshold']:g}"
    if decision.get("clinical_margin") is not None:
        text += f" and P(effect > {decision['clinical_margin']:g} | data) ≥ {decision['clinical_threshold']:g}"
    if summary["analysis"]["engine"] == "frequentist":
        text = f"one-sided p-value for effect > {decision['margin']:g} at most {1 - decision['threshold']:.3g}"
    return text
