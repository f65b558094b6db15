"""Interim looks of a design (scenario file): when they happen, the analysis lag, what a stop does to follow-up.

Units: weeks (calendar time since the first site could open), patients. What is *decided* at a look lives in the
analysis plan (:mod:`trialsim.spec.adaptive`); when the looks happen is part of the design, so one plan can be
crossed with designs that look at different times.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trialsim.spec.base import ConsistencyError, Strict

Trigger = Literal["completed", "randomised", "week"]


class Look(Strict):
    """One interim analysis, triggered when ``at`` is reached:

    - ``completed``: that many patients have reached the primary endpoint (attended its visit) — information;
    - ``randomised``: that many patients have been randomised;
    - ``week``: that calendar week.

    A look whose trigger is never reached (e.g. fewer completers than ``at`` in the whole trial) is skipped.
    """

    trigger: Trigger
    at: float = Field(gt=0, le=1_000_000)

    @model_validator(mode="after")
    def _whole_patients(self) -> Look:
        if self.trigger != "week" and self.at != int(self.at):
            raise ValueError(f"a '{self.trigger}' trigger counts patients: give a whole number, got {self.at}")
        return self


class Interim(Strict):
    """Interim looks, in calendar order, before the final analysis.

    ``analysis_lag_weeks``: weeks from a look's data cut-off to its decision; enrolment and follow-up go on
    meanwhile (0 = the decision is immediate). ``on_stop``: what a stop does to patients already randomised —
    ``overrun``: they complete follow-up and enter a final (overrun) analysis, reported beside the decision;
    ``end_follow_up``: follow-up ends at the decision and the trial's data are those observed by then.
    A look that fires during the previous look's lag waits for that decision, then analyses the data of its own
    (later) time.
    """

    looks: list[Look] = Field(min_length=1, max_length=20)
    analysis_lag_weeks: float = Field(0.0, ge=0, le=104)
    on_stop: Literal["overrun", "end_follow_up"] = "overrun"

    @model_validator(mode="after")
    def _increasing(self) -> Interim:
        problems = []
        for i, (a, b) in enumerate(zip(self.looks, self.looks[1:]), start=1):
            if a.trigger == b.trigger and b.at <= a.at:
                problems.append((f"looks.{i}.at", b.at, f"looks of the same trigger must increase (after {a.at:g})"))
        if problems:
            raise ConsistencyError(problems)
        return self
