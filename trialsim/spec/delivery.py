"""Schemas of treatment delivery: session-based treatments (ECT, rTMS, tDCS) and the per-site resources they use.

Units: weeks, hours. A resource's capacity is expressed physically (units per site, sessions per unit per working
day, working days per week) and converted to *course slots*: how many patients can be in a course at once at one
site, ``units × sessions_per_day × days_per_week / peak sessions per week of a course``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from trialsim.spec.base import Strict


class SessionPhase(Strict):
    """A phase of a treatment course: ``per_week`` sessions for ``weeks`` weeks."""

    weeks: float = Field(gt=0, le=104)
    per_week: float = Field(gt=0, le=14)


class Treatment(Strict):
    """A session-based treatment course delivered from a resource (e.g. ECT 3×/week for 4 weeks then 2×/week).

    Schedules: ECT three times a week for 4 weeks then twice weekly for 4 weeks (Petrides et al., Am J Psychiatry
    2015;172:52–58); rTMS five times a week for 4 weeks and tDCS daily are usual schedules (ASSUMPTION).
    """

    resource: str = Field(min_length=1)
    schedule: list[SessionPhase] = Field(min_length=1, max_length=10)

    @property
    def course_weeks(self) -> float:
        """Length of the whole course (weeks)."""
        return sum(phase.weeks for phase in self.schedule)

    @property
    def sessions(self) -> float:
        """Sessions in a complete course."""
        return sum(phase.weeks * phase.per_week for phase in self.schedule)

    @property
    def peak_per_week(self) -> float:
        """Highest session frequency of the course (sessions per week)."""
        return max(phase.per_week for phase in self.schedule)

    def sessions_by(self, weeks_in_course: float) -> float:
        """Sessions delivered after ``weeks_in_course`` weeks of the course (sessions spread evenly in a phase)."""
        done, elapsed = 0.0, 0.0
        for phase in self.schedule:
            span = min(max(weeks_in_course - elapsed, 0.0), phase.weeks)
            done += span * phase.per_week
            elapsed += phase.weeks
        return done


class Resource(Strict):
    """A per-site treatment resource (an ECT suite, rTMS chairs, tDCS devices) modelled as a simpy resource.

    ``on_shortage``: ``wait`` — randomised patients queue for a course slot and start late (which dilutes the
    effect at the primary endpoint); ``cap_enrolment`` — a site randomises nobody while all its slots are busy.
    """

    units_per_site: int = Field(1, ge=1, le=100, description="chairs, suites or devices per site")
    sessions_per_day: float = Field(gt=0, le=48, description="sessions one unit delivers per working day")
    days_per_week: float = Field(5.0, gt=0, le=7)
    session_hours: float = Field(1.0, gt=0, le=24, description="unit time per session (device/suite hours)")
    on_shortage: Literal["wait", "cap_enrolment"] = "wait"

    def course_slots(self, peak_per_week: float) -> int:
        """Patients who can be in a course at once at one site (at least 1)."""
        return max(1, math.floor(self.units_per_site * self.sessions_per_day * self.days_per_week / peak_per_week))
