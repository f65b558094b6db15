"""When an arm's effect appears and fades: onset, titration lag, end of treatment and offset.

For exposure that starts at week s of treatment (s ≥ the titration lag), the effect attained at week t is

    h(t; s) = 1 − exp(−(min(t, end) − s)/onset)            for min(t, end) > s (0 before),
            × exp(−(t − end)/offset)                        after the end of treatment (when ``offset`` is set),

a first-order rise towards the full effect, frozen at the end of treatment and then fading. The arm's effect is
normalised to the stated value at the reference week, the primary endpoint or the end of treatment when it comes
first: course(t) = h(t; lag)/h(reference; lag). Exposure that changes during treatment (a smoker stopping, so the
clozapine level rises) adds Δf·h(t; s)/h(reference; lag) from the week s of the change (linear superposition).
Weeks are counted from the start of treatment (randomisation plus any wait for a treatment slot).

Without an arm ``time_course`` the course is the control's response shape (``outcome.onset_weeks``, no lag, no
end), so the effect follows the shape the model always had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.spec.scenario import Arm, Scenario


@dataclass(frozen=True)
class Course:
    """One arm's time course (weeks since the start of treatment)."""

    onset_weeks: float
    lag_weeks: float = 0.0
    end_weeks: float = np.inf
    offset_weeks: float | None = None
    reference_weeks: float = 1.0

    @classmethod
    def of(cls, arm: Arm, scenario: Scenario) -> Course:
        spec = arm.time_course
        endpoint = scenario.primary_endpoint.week
        if spec is None:
            return cls(scenario.outcome.onset_weeks, reference_weeks=endpoint)
        end = np.inf if spec.treatment_weeks is None else spec.treatment_weeks
        return cls(
            spec.onset_weeks or scenario.outcome.onset_weeks, spec.lag_weeks, end, spec.offset_weeks,
            min(endpoint, end),
        )

    def attained(self, weeks: np.ndarray, start: np.ndarray | float = 0.0) -> np.ndarray:
        """h(t; max(start, lag)): the fraction of the full effect attained at ``weeks`` from exposure that starts
        at ``start`` (unnormalised; broadcasts)."""
        weeks = np.asarray(weeks, dtype=float)
        begin = np.maximum(start, self.lag_weeks)
        active = np.minimum(weeks, self.end_weeks) - begin
        rise = np.where(active > 0, -np.expm1(-np.maximum(active, 0.0) / self.onset_weeks), 0.0)
        if self.offset_weeks is None or not np.isfinite(self.end_weeks):
            return rise
        return rise * np.exp(-np.maximum(weeks - self.end_weeks, 0.0) / self.offset_weeks)

    @property
    def scale(self) -> float:
        """h(reference; lag): the normaliser."""
        return float(self.attained(self.reference_weeks))

    def __call__(self, weeks: np.ndarray, start: np.ndarray | float = 0.0) -> np.ndarray:
        """course(t) from exposure starting at ``start``: h(t; start)/h(reference; lag)."""
        return self.attained(weeks, start) / self.scale

    def mean_after_uniform_start(self, week: float, until: float, nodes: int = 2000) -> float:
        """E[course(week; s)] for s uniform on (0, until) (midpoint rule; the integrand is bounded and piecewise
        smooth, error ≲ 1/nodes)."""
        starts = (np.arange(nodes) + 0.5) * (until / nodes)
        return float(np.mean(self(week, starts)))
