"""One simulated trial: recruitment on the simpy clock, then vectorised baseline, outcomes and follow-up."""

from __future__ import annotations

import numpy as np

from trialsim.engine.follow_up import draw_dropout_weeks, draw_visit_weeks, dropout_hazards
from trialsim.engine.recruitment import Enrolment, recruit
from trialsim.inference.data import TrialData
from trialsim.spec.scenario import Scenario
from trialsim.world.outcome import draw_panss
from trialsim.world.population import draw_baseline

#: Independent random streams inside one trial: recruitment (a variable number of draws) never shifts the
#: patients' draws, which are all fixed-size given N (baseline, visit jitter, outcomes, dropout, in that order).
#: Two streams, not one per component: each generator costs ≈ 30 µs to create, a sizeable share of a trial.
STREAMS = ("recruitment", "patients")


def trial_generators(seed: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """One generator per stream, spawned from the trial's own seed sequence (which is left untouched)."""
    children = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def simulate_trial(
    scenario: Scenario, sample_size: int, seed: np.random.SeedSequence, *, log: bool = False
) -> tuple[TrialData, Enrolment]:
    """Simulate one trial of ``sample_size`` randomised patients; returns its data and its enrolment record."""
    rngs = trial_generators(seed)
    enrolment = recruit(scenario.recruitment, scenario.ratio, sample_size, rngs["recruitment"], log=log)
    arm = np.asarray(enrolment.arm, dtype=np.int64)
    randomised = np.asarray(enrolment.week, dtype=float)
    n = arm.size

    baseline = draw_baseline(scenario.population, n, rngs["patients"])
    endpoint_week = scenario.primary_endpoint.week
    rel_weeks = draw_visit_weeks(scenario.visits_weeks, n, scenario.visit_window_days, rngs["patients"])
    effects = np.asarray(scenario.effects_points())[arm]
    panss = draw_panss(
        scenario.outcome,
        baseline.panss_total,
        scenario.population.baseline_panss.mean,
        effects,
        rel_weeks,
        endpoint_week,
        rngs["patients"],
    )

    hazards = dropout_hazards(scenario.dropout_fractions(), endpoint_week)[arm]
    dropout = draw_dropout_weeks(hazards, rngs["patients"])
    last_visit = rel_weeks[:, -1]
    dropped = dropout < last_visit
    dropout = np.where(dropped, dropout, np.inf)
    attended = rel_weeks < dropout[:, None]
    attended[:, 0] = True
    panss = np.where(attended, panss, np.nan)
    visit_time = np.where(attended, randomised[:, None] + rel_weeks, np.nan)
    leaves = randomised + np.minimum(dropout, last_visit)
    reasons = np.where(dropped, scenario.dropout.reason, "")

    data = TrialData(
        arm_names=tuple(a.name for a in scenario.arms),
        control=scenario.control_index,
        visit_weeks=np.asarray(scenario.visits_weeks, dtype=float),
        endpoint_visit=scenario.endpoint_visit,
        site=np.asarray(enrolment.site, dtype=np.int64),
        arm=arm,
        randomised_week=randomised,
        baseline=baseline.panss_total,
        panss=panss,
        visit_time=visit_time,
        dropout_week=dropout,
        dropout_reason=reasons,
        covariates=baseline.covariates(),
        end_week=float(leaves.max()) if n else float("nan"),
    )
    if log:
        _log_follow_up(enrolment, data, rel_weeks, leaves)
    return data, enrolment


def _log_follow_up(enrolment: Enrolment, data: TrialData, rel_weeks: np.ndarray, leaves: np.ndarray) -> None:
    """Append visit, dropout and completion events to the enrolment log, in time order."""
    assert enrolment.log is not None
    events = []
    for i in range(data.n):
        for j in range(1, rel_weeks.shape[1]):
            if not np.isnan(data.visit_time[i, j]):
                events.append((float(data.visit_time[i, j]), f"visit_w{data.visit_weeks[j]:g}", int(data.site[i]), i))
        kind = "dropout" if np.isfinite(data.dropout_week[i]) else "completed"
        events.append((float(leaves[i]), kind, int(data.site[i]), i))
    enrolment.log.extend(sorted(events, key=lambda e: (e[0], e[3])))
