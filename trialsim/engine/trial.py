"""Simulated trials, the engine's entry points: the vectorised path for fixed designs, the event-driven path when
something interacts (interim looks, treatment-delivery resources).

A design with nothing that interacts — no interim looks, no treatment resources — is a fixed schedule: the first
N arrivals of every trial, allocated in permuted blocks, followed to their last visit or dropout. It needs no
clock and is computed vectorised across the trials of a chunk (:func:`simulate_trials` without an analyst). With
interactions, each trial runs on its own simpy environment (:mod:`trialsim.engine.events`). Both paths draw the
same patients and arrivals from the same streams and reveal them with the same function, so on a fixed design
they give identical per-patient tables (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trialsim.engine.arrivals import draw_arrivals
from trialsim.engine.cohort import World, draw_cohort, realise
from trialsim.engine.delivery import uses_resources
from trialsim.engine.events import STOP_REASONS, Analyst, EventTrials, fixed_enrolment
from trialsim.inference.data import TrialBatch, TrialData
from trialsim.spec.scenario import Scenario

__all__ = ["World", "interacts", "simulate_trial", "simulate_trials"]


def interacts(scenario: Scenario) -> bool:
    """Whether the design has anything that interacts on a clock (interim looks, treatment resources)."""
    return scenario.interim is not None or uses_resources(scenario)


def simulate_trials(
    scenario: Scenario,
    sample_size: int,
    seeds: list[np.random.SeedSequence],
    *,
    world: World | None = None,
    assurance: bool = False,
    subscales: bool = True,
    covariates: bool = True,
    analyst: Analyst | None = None,
    event_driven: bool | None = None,
    log: bool = False,
) -> tuple[TrialBatch, EventTrials | None]:
    """Simulate one trial per seed with at most ``sample_size`` randomised patients.

    Returns the trials' data at their final analysis and, on the event-driven path, the :class:`EventTrials`
    holding each trial's looks, decisions and log. ``analyst`` answers interim analyses (required with interim
    looks). ``event_driven`` forces a path (default: events only when :func:`interacts`). With ``assurance``,
    each active arm's true effect is drawn per trial from its design prior. ``subscales`` and ``covariates``
    (baseline subscales, age, sex) can be skipped when nothing reads them.
    """
    world = world or World.of(scenario)
    if scenario.interim is not None and analyst is None:
        raise ValueError("a design with interim looks needs an analyst to decide at its looks")
    cohort, streams = draw_cohort(
        scenario, world, seeds, sample_size, assurance=assurance, subscales=subscales, covariates=covariates
    )
    if not (interacts(scenario) if event_driven is None else event_driven):
        arrivals = draw_arrivals(scenario.recruitment, streams, cohort.sites, sample_size)
        return realise(cohort, fixed_enrolment(scenario, arrivals, streams, sample_size)), None
    trials = EventTrials(cohort, streams, analyst, log=log)
    trials.run()
    return trials.final_batch(), trials


@dataclass
class Timeline:
    """What happened in one simulated trial, in calendar order: events as (week, event, site, patient) tuples
    (patient −1 for site- and trial-level events), screening counts and the interim decisions."""

    events: list[tuple[float, str, int, int]]
    screened: int
    turned_away: int
    site_open_week: np.ndarray
    stop: str = ""
    looks: list[dict] = field(default_factory=list)

    @property
    def screen_failures(self) -> int:
        """Screened patients who failed screening (until the last randomisation)."""
        return self.screened - self.randomised - self.turned_away

    @property
    def randomised(self) -> int:
        return sum(1 for e in self.events if e[1] == "randomised")


def simulate_trial(
    scenario: Scenario,
    sample_size: int,
    seed: np.random.SeedSequence,
    *,
    analyst: Analyst | None = None,
    assurance: bool = False,
) -> tuple[TrialData, Timeline]:
    """Simulate one trial; returns its data (randomised patients) and its timeline of events: site openings,
    randomisations (and, with treatment resources, turned-away arrivals and course starts and ends), visits,
    dropouts and completions, interim looks and a stop."""
    batch, trials = simulate_trials(scenario, sample_size, [seed], analyst=analyst, assurance=assurance, log=True)
    data = batch.trial(0)
    if trials is not None and trials.resources:
        events = list(trials.logs[0])  # the delivery walk's own record, in simpy order
    else:
        events = [(float(w), "site_open", s, -1) for s, w in enumerate(batch.site_open_week[0])]
        events.sort(key=lambda e: (e[0], e[2]))
        events += [(float(w), "randomised", int(s), i) for i, (w, s) in enumerate(zip(data.randomised_week, data.site))]
    leaves = batch.leaves_week[0] if batch.randomised is None else batch.leaves_week[0][batch.randomised[0]]
    for i in range(data.n):
        site = int(data.site[i])
        for j in range(1, data.visit_weeks.size):
            if not np.isnan(data.visit_time[i, j]):
                events.append((float(data.visit_time[i, j]), f"visit_w{data.visit_weeks[j]:g}", site, i))
        events.append((float(leaves[i]), "dropout" if data.dropout_reason[i] else "completed", site, i))
    looks, stop = [], ""
    if trials is not None:
        state = trials.states[0]
        for record in state.records:
            label = "final_analysis" if record.look < 0 else f"look_{record.look + 1}"
            events.append((record.cutoff_week, label, -1, -1))
            looks.append(
                {"look": record.look, "cutoff_week": record.cutoff_week, "decision_week": record.decision_week,
                 "n_randomised": record.n_randomised, "n_completed": record.n_completed}
            )
        if state.stop_code:
            stop = STOP_REASONS[state.stop_code]
            events.append((state.stop_week, f"stop_{stop}", -1, -1))
    events.sort(key=lambda e: e[0])  # stable: recruitment events keep their order at equal weeks
    return data, Timeline(
        events=events,
        screened=int(batch.screened[0]),
        turned_away=int(0 if batch.turned_away is None else batch.turned_away[0]),
        site_open_week=batch.site_open_week[0],
        stop=stop,
        looks=looks,
    )
