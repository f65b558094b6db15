"""The event-driven path: one simpy environment per simulated trial, for designs where something interacts.

What interacts, and how the clock serves it:

- **the interim monitor** (a simpy process per trial): waits for its trigger — a number of patients who reached
  the primary endpoint, a number randomised, or a calendar week — asks for the analysis of the data observed by
  then, waits out the analysis lag while enrolment and follow-up go on, then acts on the decision: stop the trial
  (efficacy or futility), drop arms, or change the allocation shares (response-adaptive randomisation); at the
  end it asks for the final analysis, when the last randomised patient has left (or at the stop, with
  ``on_stop: end_follow_up``);
- **the randomiser** (:class:`~trialsim.engine.randomiser.Randomiser`): the policy the monitor changes or stops;
- **treatment-delivery resources** (:mod:`trialsim.engine.delivery`): per-site course slots for which randomised
  patients queue, or that turn arrivals away, on the trial's own simpy clock.

Patient-level arithmetic stays vectorised. The arrival stream and each patient's potential outcomes are drawn once
(:mod:`trialsim.engine.cohort`); the current policies give a *tentative schedule* — who would be randomised to
what if nothing changed — from which the monitor computes when its next trigger fires (exact, because only the
monitor itself can change the schedule, and only at its own decisions). A decision that changes the allocation
re-enrols the trial from that week (the past is unchanged: same arrivals, same blocks). A look's data are the
visits of randomised patients with calendar time ≤ its cut-off.

Analyses are batched across trials: every trial's environment runs until it waits for an analysis, the requests of
all trials are analysed in one call (conjugate maths vectorises over trials; per-trial engines loop), and each
environment resumes with its answer. The engine does not know how a snapshot is analysed: an :class:`Analyst`
returns the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import simpy

from trialsim.engine.allocation import block_template
from trialsim.engine.arrivals import Arrivals, draw_arrivals
from trialsim.engine.cohort import Cohort, Enrolment, realise
from trialsim.engine.delivery import enrol_with_delivery, uses_resources
from trialsim.engine.randomiser import Randomiser
from trialsim.engine.streams import TrialStreams
from trialsim.inference.data import TrialBatch
from trialsim.spec.looks import Look

#: Look index of the final analysis.
FINAL = -1
#: Stop codes of a trial or a decision.
CONTINUE, EFFICACY, FUTILITY = 0, 1, 2
STOP_REASONS = ("", "efficacy", "futility")

#: Per-trial fields of a TrialBatch (leading axis K).
_PER_TRIAL = (
    "site", "arm", "randomised_week", "baseline", "panss", "visit_time", "dropout_week", "end_week", "screened",
    "panss_positive", "panss_negative", "dropout_code", "true_effect", "start_delay", "on_study_weeks",
    "leaves_week", "turned_away", "randomised", "site_open_week",
)


@dataclass(frozen=True)
class Round:
    """One batched analysis request: the trials (chunk-local indices) asking, which analysis (look index or FINAL),
    their data cut-off weeks and the arms still open to randomisation, arrays over the asking trials."""

    trials: np.ndarray
    look: np.ndarray
    cutoff: np.ndarray
    active: np.ndarray  # (trials, arms) bool


class Decisions(Protocol):
    """What the engine reads from an analysis round's result (arrays over the round's trials)."""

    stop: np.ndarray  # (trials,) CONTINUE, EFFICACY or FUTILITY
    drop: np.ndarray | None  # (trials, arms) arms closed at this look
    shares: np.ndarray | None  # (trials, arms) new allocation shares (NaN row = unchanged)
    block_size: int


class Analyst(Protocol):
    """Analyses snapshots and decides; the engine applies the decisions."""

    def analyse(self, snapshot: TrialBatch, request: Round) -> Decisions: ...


@dataclass
class LookRecord:
    """One analysis of one trial: which, when, on how many patients, and its row in the round's result."""

    look: int
    cutoff_week: float
    decision_week: float
    n_randomised: int
    n_completed: int
    result: Any
    row: int


@dataclass
class TrialState:
    """What the monitor has done to one trial."""

    randomiser: Randomiser
    active: np.ndarray  # (arms,) bool: arms still randomised to
    stop_week: float = np.inf
    stop_code: int = CONTINUE
    stop_look: int = FINAL
    final_cutoff: float = np.nan
    records: list[LookRecord] = field(default_factory=list)


class EventTrials:
    """The trials of one chunk on the event-driven path (see the module docstring)."""

    def __init__(
        self,
        cohort: Cohort,
        streams: list[TrialStreams],
        analyst: Analyst | None,
        *,
        log: bool = False,
    ) -> None:
        self.cohort, self.streams, self.analyst = cohort, streams, analyst
        scenario = cohort.scenario
        self.scenario = scenario
        self.interim = scenario.interim
        self.n_max = cohort.patients
        self.resources = uses_resources(scenario)
        recruitment = scenario.recruitment
        block = recruitment.block_size or 2 * sum(scenario.ratio)
        self.states = [
            TrialState(Randomiser(s, recruitment.sites, scenario.ratio, block), np.ones(len(scenario.arms), bool))
            for s in streams
        ]
        self.logs: list[list[tuple[float, str, int, int]]] | None = [[] for _ in streams] if log else None
        # Arrivals: a margin beyond N for sites that turn patients away (more are drawn if a walk runs out).
        self._arrival_count = self.n_max if not self.resources else int(self.n_max * 1.5) + 20
        self.arrivals = draw_arrivals(recruitment, streams, cohort.sites, self._arrival_count)
        if self.resources:
            enrolment = _stack([self._enrol(k) for k in range(cohort.trials)])
        else:  # the initial policy for every trial at once (what the randomiser gives each trial, vectorised)
            fixed = fixed_enrolment(scenario, self.arrivals, streams, self.n_max)
            enrolment = replace(fixed, randomised=np.ones(fixed.arm.shape, dtype=bool))
        self.data = realise(cohort, enrolment)

    # Enrolment ------------------------------------------------------------------------------------------------

    def _enrol(self, k: int) -> Enrolment:
        """Trial k's tentative enrolment (N rows) under its current policies and stop week."""
        state, arrivals = self.states[k], self.arrivals
        if not self.resources:
            week, site = arrivals.week[k, : self.n_max], arrivals.site[k, : self.n_max]
            return Enrolment(
                site=site,
                week=week,
                arm=state.randomiser.arms(week, site),
                screened=np.array(0),
                randomised=np.ones(self.n_max, dtype=bool),
            )
        while True:
            log = None if self.logs is None else []
            walked = enrol_with_delivery(
                self.scenario,
                self.arrivals.week[k],
                self.arrivals.site[k],
                self.cohort.sites.open_week[k],
                state.randomiser,
                self.n_max,
                state.stop_week,
                log=log,
            )
            if walked is not None:
                break
            self._more_arrivals(k)
        taken, arm, delay, turned_away = walked
        if self.logs is not None:
            self.logs[k] = log
        n = taken.size
        pad = self.n_max - n
        week = np.concatenate([self.arrivals.week[k, taken], np.full(pad, np.inf)])
        return Enrolment(
            site=np.concatenate([self.arrivals.site[k, taken], np.zeros(pad, dtype=np.int64)]),
            week=week,
            arm=np.concatenate([arm, np.zeros(pad, dtype=np.int64)]),
            screened=np.array(0),
            randomised=np.arange(self.n_max) < n,
            start_delay=np.concatenate([delay, np.zeros(pad)]),
            turned_away=np.array(turned_away),
        )

    def _more_arrivals(self, k: int) -> None:
        """Redraw every trial's arrivals with twice as many (the same arrivals first, then more)."""
        self._arrival_count *= 2
        self.arrivals = draw_arrivals(self.scenario.recruitment, self.streams, self.cohort.sites, self._arrival_count)

    def reenrol(self, k: int) -> None:
        """Re-enrol trial k after a policy change and recompute its patients' outcomes."""
        one = realise(self.cohort.select(slice(k, k + 1)), _stack([self._enrol(k)]))
        for name in _PER_TRIAL:
            target, source = getattr(self.data, name), getattr(one, name)
            if target is not None:
                target[k] = source[0]
        for mapping in ("covariates", "adverse_events"):
            target, source = getattr(self.data, mapping), getattr(one, mapping)
            for key in target:
                target[key][k] = source[key][0]

    # Triggers -------------------------------------------------------------------------------------------------

    def randomised_mask(self, k: int, until: float) -> np.ndarray:
        """(N,) patients of trial k randomised by week ``until`` (and before the trial's stop)."""
        state = self.states[k]
        week = self.data.randomised_week[k]
        return self.data.randomised[k] & (week <= min(until, state.stop_week))

    def trigger_week(self, k: int, look: Look) -> float:
        """Calendar week at which ``look`` fires in trial k under its tentative schedule (inf: never)."""
        state = self.states[k]
        if look.trigger == "week":
            return float(look.at)
        n = int(look.at)
        randomised = self.randomised_mask(k, np.inf)
        if look.trigger == "randomised":
            weeks = self.data.randomised_week[k][randomised]
            return float(weeks[n - 1]) if weeks.size >= n and weeks[n - 1] <= state.stop_week else np.inf
        completion = self.data.visit_time[k, :, self.data.endpoint_visit][randomised]
        completion = completion[~np.isnan(completion)]
        return float(np.partition(completion, n - 1)[n - 1]) if completion.size >= n else np.inf

    def follow_up_end(self, k: int, now: float) -> float:
        """When trial k's final analysis happens: the last randomised patient's exit, or the stop week when a stop
        ends follow-up."""
        state = self.states[k]
        if state.stop_code != CONTINUE and self.interim.on_stop == "end_follow_up":
            return now
        randomised = self.randomised_mask(k, np.inf)
        return max(now, float(self.data.leaves_week[k][randomised].max(initial=now)))

    # Snapshots and decisions ----------------------------------------------------------------------------------

    def snapshot(self, trials: np.ndarray, cutoff: np.ndarray) -> TrialBatch:
        """The data of some trials as observed at their cut-off weeks: patients randomised by then (and before the
        stop), visits attended by then; later dropouts not yet known."""
        data = self.data
        every = trials.size == data.trials and np.array_equal(trials, np.arange(data.trials))
        pick = (lambda a: a) if every else (lambda a: a[trials])  # views when the whole chunk asks  # noqa: E731
        take = {name: pick(getattr(data, name)) for name in _PER_TRIAL if getattr(data, name) is not None}
        stop = np.array([self.states[k].stop_week for k in trials])
        cut = np.minimum(cutoff, stop)[:, None]
        randomised = take["randomised"] & (take["randomised_week"] <= cut)
        seen = randomised[..., None] & (take["visit_time"] <= cutoff[:, None, None])
        hide = lambda values: None if values is None else np.where(seen, values, np.nan)  # noqa: E731
        dropped = randomised & (take["randomised_week"] + take["dropout_week"] <= cutoff[:, None])
        leaves = np.where(randomised, np.minimum(take["leaves_week"], cutoff[:, None]), -np.inf)
        screened = self.arrivals.screened_by(
            np.max(np.where(randomised, take["randomised_week"], -np.inf), axis=1, initial=-np.inf), trials
        )
        take.update(
            panss=hide(take["panss"]),
            panss_positive=hide(take.get("panss_positive")),
            panss_negative=hide(take.get("panss_negative")),
            visit_time=hide(take["visit_time"]),
            dropout_week=np.where(dropped, take["dropout_week"], np.inf),
            dropout_code=np.where(dropped, take["dropout_code"], 0),
            on_study_weeks=np.where(randomised, np.minimum(take["on_study_weeks"],
                                                           cutoff[:, None] - take["randomised_week"]), 0.0),
            leaves_week=leaves,
            end_week=leaves.max(axis=1),
            screened=screened,
            randomised=randomised,
        )
        return replace(
            data,
            **take,
            covariates={name: pick(values) for name, values in data.covariates.items()},
            adverse_events={name: pick(values) & randomised for name, values in data.adverse_events.items()},
        )

    def apply(self, k: int, decisions: Decisions, row: int, week: float, look: int) -> None:
        """Act on look ``look``'s decisions for trial k at ``week``: stop, close arms, change shares."""
        state = self.states[k]
        code = int(decisions.stop[row])
        if code != CONTINUE:
            state.stop_week, state.stop_code, state.stop_look = week, code, look
            return
        closed = np.zeros_like(state.active) if decisions.drop is None else decisions.drop[row]
        shares = None if decisions.shares is None else decisions.shares[row]
        changed = bool(np.any(closed & state.active))
        state.active = state.active & ~closed
        if shares is not None and not np.all(np.isnan(shares)):
            new = np.where(state.active, shares, 0.0)
        elif changed:
            ratio = np.asarray(self.scenario.ratio, dtype=float)
            new = np.where(state.active, ratio, 0.0)
        else:
            return
        block = decisions.block_size
        state.randomiser.change(week, new, block)
        self.reenrol(k)

    # The run --------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Run every trial's environment to its end, answering analysis requests in batched rounds."""
        processes = [_TrialProcess(self, k) for k in range(self.cohort.trials)]
        pending = processes
        while pending:
            for process in pending:
                process.advance()
            asking = [p for p in pending if p.request is not None]
            if asking:
                trials = np.array([p.k for p in asking])
                cutoff = np.array([p.request[1] for p in asking])
                looks = np.array([p.request[0] for p in asking])
                request = Round(trials, looks, cutoff, np.stack([self.states[p.k].active for p in asking]))
                snapshot = self.snapshot(trials, cutoff)
                result = None if self.analyst is None else self.analyst.analyse(snapshot, request)
                completed = snapshot.endpoint_observed
                for row, process in enumerate(asking):
                    look, cut, event = process.request
                    process.request = None
                    self.states[process.k].records.append(
                        LookRecord(look, cut, cut, int(snapshot.randomised[row].sum()),
                                   int(completed[row].sum()), result, row)
                    )
                    event.succeed((result, row))
            pending = [p for p in pending if not p.finished]

    def final_batch(self) -> TrialBatch:
        """Every trial's data at its final analysis (the cut-off of its FINAL record)."""
        cutoff = np.array([state.final_cutoff for state in self.states])
        return self.snapshot(np.arange(self.cohort.trials), cutoff)


class _TrialProcess:
    """One trial's simpy environment with its interim monitor."""

    def __init__(self, trials: EventTrials, k: int) -> None:
        self.trials, self.k = trials, k
        self.env = simpy.Environment()
        self.request: tuple[int, float, simpy.Event] | None = None
        self.env.process(self._monitor())

    @property
    def finished(self) -> bool:
        return self.request is None and self.env.peek() == np.inf

    def advance(self) -> None:
        """Run the environment until the monitor waits for an analysis, or to its end."""
        env = self.env
        while self.request is None and env.peek() != np.inf:
            env.step()

    def _ask(self, look: int) -> simpy.Event:
        event = self.env.event()
        self.request = (look, self.env.now, event)
        return event

    def _monitor(self):
        trials, k, env = self.trials, self.k, self.env
        state = trials.states[k]
        interim = trials.interim
        for index, look in enumerate(interim.looks if interim is not None else ()):
            trigger = trials.trigger_week(k, look)
            if not np.isfinite(trigger):
                continue  # never reached in this trial
            if trigger > env.now:
                yield env.timeout(trigger - env.now)
            result, row = yield self._ask(index)
            if interim.analysis_lag_weeks > 0:
                yield env.timeout(interim.analysis_lag_weeks)
            state.records[-1].decision_week = env.now
            trials.apply(k, result, row, env.now, index)
            if state.stop_code != CONTINUE:
                break
        end = trials.follow_up_end(k, env.now)
        if end > env.now:
            yield env.timeout(end - env.now)
        state.final_cutoff = env.now
        yield self._ask(FINAL)


def _stack(enrolments: list[Enrolment]) -> Enrolment:
    """K one-trial enrolments (arrays (N,)) as one (K, N) enrolment."""
    def stacked(name: str):
        values = [getattr(e, name) for e in enrolments]
        return None if values[0] is None else np.stack(values)

    return Enrolment(**{name: stacked(name) for name in Enrolment.__dataclass_fields__})


def fixed_enrolment(scenario, arrivals: Arrivals, streams: list[TrialStreams], patients: int) -> Enrolment:
    """The vectorised path's enrolment: the first ``patients`` arrivals of every trial in permuted blocks of the
    scenario's ratio (identical to what :class:`~trialsim.engine.randomiser.Randomiser` gives one trial)."""
    from trialsim.engine.allocation import block_arms, permuted_blocks, rounds_for
    from trialsim.engine.streams import allocation_region

    recruitment = scenario.recruitment
    block = recruitment.block_size or 2 * sum(scenario.ratio)
    template = block_template(scenario.ratio, block)
    site, rank = arrivals.site[:, :patients], arrivals.rank[:, :patients]
    rounds = rounds_for(rank, block)
    keys = np.stack([s.region(allocation_region(0)).random((rounds, recruitment.sites, block)) for s in streams])
    week = arrivals.week[:, :patients]
    return Enrolment(
        site=site,
        week=week,
        arm=block_arms(permuted_blocks(template, keys), site, rank),
        screened=arrivals.screened_by(week[:, -1]),
    )
