"""Treatment delivery on the simpy clock: per-site course slots for session-based treatments (ECT, rTMS, tDCS).

Model (units: weeks):

- Each site has, per resource used by some arm, a ``simpy.Resource`` with ``resource.course_slots(peak)`` slots,
  where ``peak`` is the highest ``per_week`` over the treatments of *all* arms using that resource (a slot must
  carry a course through its most intensive phase; a sham arm on the same device counts like the active one).
- A randomised patient whose arm has a ``treatment`` requests a slot at its site at randomisation (FIFO), holds it
  for the planned ``course_weeks`` and then releases it. ASSUMPTION: capacity follows planned courses — dropouts
  (drawn after recruitment) do not free a slot before the planned course end, nor leave the queue.
- ``on_shortage: wait``: every randomisable arrival is randomised (the same patients and arms as without
  resources); ``start_delay`` = week the slot is obtained − randomisation week.
- ``on_shortage: cap_enrolment``: a site randomises nobody while all its slots of any ``cap_enrolment`` resource
  used by any arm are busy (the arm is unknown before randomisation). Patients who pass screening then are
  turned away (screen failures stay screen failures); recruitment goes on until the target is randomised.
  Arrivals (:mod:`trialsim.engine.arrivals`) are walked in time order over all sites; a site's k-th randomised
  patient under a policy gets the k-th entry of its blocks. A ``wait`` resource in the same scenario still
  queues. ``screened`` counts every screened arrival up to the last randomisation, turned-away patients included.
- Courses are callbacks on simpy events (slot request, course-end timeout, release): three events per course,
  plus one clock-marker event per randomisation.
- Tie rule: all course events at week t (course ends, the slot releases and queue moves they cause) happen
  before an arrival at t, so a patient arriving exactly when a slot frees finds it free.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import simpy
from simpy.resources.resource import Request

from trialsim.engine.randomiser import Randomiser
from trialsim.spec.delivery import Treatment
from trialsim.spec.scenario import Scenario

Log = list[tuple[float, str, int, int]]


def uses_resources(scenario: Scenario) -> bool:
    """Whether any arm has a session-based treatment course."""
    return any(arm.treatment is not None for arm in scenario.arms)


def site_slots(scenario: Scenario) -> dict[str, int]:
    """Course slots per site of each resource used by some arm (peak ``per_week`` over all arms using it)."""
    peaks: dict[str, float] = {}
    for arm in scenario.arms:
        if arm.treatment is not None:
            name = arm.treatment.resource
            peaks[name] = max(peaks.get(name, 0.0), arm.treatment.peak_per_week)
    return {name: scenario.resources[name].course_slots(peak) for name, peak in peaks.items()}


class _Delivery:
    """Per-site course slots on a simpy clock, advanced arrival by arrival by a recruitment loop."""

    def __init__(self, scenario: Scenario, opens: np.ndarray, log: Log | None) -> None:
        self.env = simpy.Environment()
        self.treatments: list[Treatment | None] = [arm.treatment for arm in scenario.arms]
        slots = site_slots(scenario)
        self.slots = [{name: simpy.Resource(self.env, n) for name, n in slots.items()} for _ in range(opens.size)]
        self.gating = [name for name in slots if scenario.resources[name].on_shortage == "cap_enrolment"]
        self.log = log
        self.delay: list[float] = []
        self.recruiting = True
        if log is not None:
            for s, week in enumerate(opens.tolist()):
                self.env.timeout(week).callbacks.append(lambda _, s=s: self._record(self.env.now, "site_open", s, -1))

    def _record(self, week: float, event: str, site: int, patient: int) -> None:
        if self.log is not None and (self.recruiting or event.startswith("course")):
            self.log.append((week, event, site, patient))

    def advance(self, week: float) -> None:
        """Process every course event up to and including ``week`` (the tie rule)."""
        env = self.env
        while env.peek() <= week:
            env.step()

    def full(self, site: int) -> bool:
        """Whether all slots of some ``cap_enrolment`` resource are busy at ``site``."""
        return any(self.slots[site][name].count >= self.slots[site][name].capacity for name in self.gating)

    def turn_away(self, site: int, week: float) -> None:
        self._record(week, "turned_away", site, -1)

    def randomise(self, site: int, arm: int, week: float) -> None:
        """Randomise the next patient at ``week`` (after :meth:`advance`); a treated patient requests a slot at
        once and queues FIFO if none is free."""
        env = self.env
        if week > env.now:  # move the clock with a marker event (nothing else is due by then)
            marker = env.timeout(week - env.now)
            while not marker.processed:
                env.step()
        patient = len(self.delay)
        self.delay.append(0.0)
        self._record(week, "randomised", site, patient)
        treatment = self.treatments[arm]
        if treatment is not None:
            resource = self.slots[site][treatment.resource]
            request = resource.request()  # already triggered iff a slot is free
            since = None if request.triggered else self.env.now
            request.callbacks.append(partial(self._start, patient, site, treatment.course_weeks, resource, since))

    def _start(
        self, patient: int, site: int, weeks: float, resource: simpy.Resource, since: float | None, request: Request
    ) -> None:
        """The patient got a slot: the course runs ``weeks`` weeks, then the slot is released."""
        if since is not None:
            self.delay[patient] = self.env.now - since
        self._record(self.env.now, "course_start", site, patient)
        self.env.timeout(weeks).callbacks.append(partial(self._end, patient, site, resource, request))

    def _end(self, patient: int, site: int, resource: simpy.Resource, request: Request, _: simpy.Event) -> None:
        self._record(self.env.now, "course_end", site, patient)
        resource.release(request)

    def finish(self) -> np.ndarray:
        """Stop recruiting, run the remaining courses; returns each patient's start delay (weeks)."""
        self.recruiting = False
        self.env.run()
        return np.asarray(self.delay)


def enrol_with_delivery(
    scenario: Scenario,
    week: np.ndarray,
    site: np.ndarray,
    open_week: np.ndarray,
    randomiser: Randomiser,
    target: int,
    stop_week: float = np.inf,
    *,
    log: Log | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Walk one trial's randomisable arrivals (``week``, ``site``, in order) through the sites' course slots until
    ``target`` patients are randomised or the arrivals pass ``stop_week``; a patient arriving at a site whose
    ``cap_enrolment`` slots are all busy is turned away, the others are randomised (arm from the randomiser's
    policy in force, by their rank among the site's randomised patients under it) and queue for a slot.

    Returns (index of each randomised patient's arrival, arms, start delays in weeks, number turned away), or None
    when the arrivals ran out first (the caller draws more: the same arrivals, and more of them).
    """
    delivery = _Delivery(scenario, open_week, log)
    taken: list[int] = []
    arms: list[int] = []
    counters: dict[tuple[int, int], int] = {}
    turned_away = 0
    exhausted = True
    for j, (w, s) in enumerate(zip(week.tolist(), site.tolist())):
        if len(taken) == target or w > stop_week:
            exhausted = False
            break
        delivery.advance(w)
        if delivery.full(s):
            turned_away += 1
            delivery.turn_away(s, w)
            continue
        policy = int(randomiser.policy_of(np.array([w]))[0])
        rank = counters.get((policy, s), 0)
        counters[(policy, s)] = rank + 1
        sequence = randomiser.sequences(policy, rank // randomiser.templates[policy].size + 1)
        block = sequence.shape[-1]
        arm = int(sequence[rank // block, s, rank % block])
        taken.append(j)
        arms.append(arm)
        delivery.randomise(s, arm, w)
    if exhausted and len(taken) < target:
        return None
    return np.asarray(taken, dtype=np.int64), np.asarray(arms, dtype=np.int64), delivery.finish(), turned_away


def sessions_by(treatment: Treatment, weeks_in_course: np.ndarray) -> np.ndarray:
    """Vectorised :meth:`Treatment.sessions_by`: sessions delivered after ``weeks_in_course`` weeks (0 if ≤ 0,
    the full course beyond its end)."""
    weeks = np.asarray(weeks_in_course, dtype=float)
    done, elapsed = np.zeros(weeks.shape), 0.0
    for phase in treatment.schedule:
        done += np.clip(weeks - elapsed, 0.0, phase.weeks) * phase.per_week
        elapsed += phase.weeks
    return done


def resource_use(
    scenario: Scenario, arm: np.ndarray, start_delay: np.ndarray, on_treatment_weeks: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-trial use of each resource used by some arm, over a batch of shape (K, N) → arrays of shape (K,).

    ``on_treatment_weeks``: weeks from randomisation until the patient left (dropout or last visit); sessions are
    counted from the course start (``start_delay`` later) up to then or the course end. Keys per resource:
    ``.sessions``, ``.unit_hours`` (sessions × session_hours), ``.patients_waiting`` (delay > 0),
    ``.mean_wait_weeks`` (over patients of arms using it; NaN if there are none) and ``.max_wait_weeks``.
    """
    arm = np.asarray(arm)
    delay = np.asarray(start_delay, dtype=float)
    in_course = np.asarray(on_treatment_weeks, dtype=float) - delay
    use: dict[str, np.ndarray] = {}
    for name in site_slots(scenario):
        sessions = np.zeros(arm.shape)
        users = np.zeros(arm.shape, dtype=bool)
        for a, spec in enumerate(scenario.arms):
            if spec.treatment is not None and spec.treatment.resource == name:
                mine = arm == a
                users |= mine
                sessions += np.where(mine, sessions_by(spec.treatment, in_course), 0.0)
        waits = np.where(users, delay, 0.0)
        n_users = users.sum(axis=-1)
        use[f"{name}.sessions"] = sessions.sum(axis=-1)
        use[f"{name}.unit_hours"] = use[f"{name}.sessions"] * scenario.resources[name].session_hours
        use[f"{name}.patients_waiting"] = np.count_nonzero(waits > 0, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            use[f"{name}.mean_wait_weeks"] = np.where(n_users > 0, waits.sum(axis=-1) / n_users, np.nan)
        use[f"{name}.max_wait_weeks"] = waits.max(axis=-1, initial=0.0)
    return use


def course_end_weeks(scenario: Scenario, arm: np.ndarray, start_delay: np.ndarray) -> np.ndarray:
    """Weeks from randomisation to the planned end of each patient's course (0 without a course), shape of ``arm``."""
    course = np.array([0.0 if a.treatment is None else a.treatment.course_weeks for a in scenario.arms])
    arm = np.asarray(arm)
    return np.where(course[arm] > 0, np.asarray(start_delay, dtype=float) + course[arm], 0.0)
