"""The event-driven engine: equivalence with the vectorised path, exact look timelines with degenerate inputs,
stopping, and reproducibility across workers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_scenario
from trialsim.chunk import trial_seed
from trialsim.engine.trial import simulate_trials


def test_event_path_equals_vectorised_path_on_a_fixed_design():
    """Same seeds, a design with nothing that interacts: forcing every trial through its own simpy environment
    (per-trial randomiser, enrolment and final-analysis request) gives the same per-patient tables as the
    chunk-vectorised path."""
    scenario = make_scenario(
        sample_size=80,
        dropout={"fraction": 0.25, "mechanism": "mar"},
        visit_window_days=3,
        recruitment={"sites": 6, "rate_per_site_per_week": 0.7, "rate_cv": 0.6, "screen_failure": 0.2,
                     "activation_weeks": [0, 10], "block_size": 4},
        heterogeneity={"site_sd": 2.0, "rater_sd": 1.5, "ultra_trs_fraction": 0.3},
    )
    seeds = [trial_seed(5, k) for k in range(12)]
    vectorised, none = simulate_trials(scenario, 80, seeds)
    event, trials = simulate_trials(scenario, 80, seeds, event_driven=True)
    assert none is None and trials is not None
    for k in range(12):
        pd.testing.assert_frame_equal(vectorised.trial(k).to_frame(), event.trial(k).to_frame())
    for name in ("screened", "end_week", "dropout_code", "leaves_week"):
        np.testing.assert_array_equal(getattr(vectorised, name), getattr(event, name))


def test_patient_i_is_the_same_person_at_every_sample_size():
    """Common random numbers across design points: the first 60 patients of a 60- and a 90-patient trial with the
    same seed are the same people (site, arrival week, arm, baseline, every observed score)."""
    scenario = make_scenario(dropout={"fraction": 0.2}, recruitment={"sites": 5, "rate_per_site_per_week": 1.0,
                                                                     "block_size": 4})
    seeds = [trial_seed(9, k) for k in range(5)]
    small, _ = simulate_trials(scenario, 60, seeds)
    large, _ = simulate_trials(scenario, 90, seeds)
    for k in range(5):
        pd.testing.assert_frame_equal(small.trial(k).to_frame(), large.trial(k).to_frame().iloc[:60])


class _Recorder:
    """A test analyst: stops for efficacy at the first interim look, records every snapshot it is shown."""

    def __init__(self, stop_at_look: int | None = 0):
        self.stop_at_look = stop_at_look
        self.seen: list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]] = []

    def analyse(self, snapshot, request):
        from trialsim.engine.events import CONTINUE, EFFICACY

        for row, (look, cutoff) in enumerate(zip(request.look, request.cutoff)):
            self.seen.append((int(look), float(cutoff), snapshot.visit_time[row].copy(),
                              snapshot.randomised[row].copy(), snapshot.endpoint_observed[row].copy()))
        stop = np.where(request.look == self.stop_at_look, EFFICACY, CONTINUE)
        return SimpleNamespace(stop=stop, drop=None, shares=None, block_size=0)


def degenerate_adaptive(**interim):
    """One site opening at week 0.5, a patient every week from 1.5, no dropout, visits at 0, 2 and 4 weeks."""
    return make_scenario(
        recruitment={"sites": 1, "activation_weeks": [0.5, 0.5], "rate_per_site_per_week": 1.0, "rate_cv": 0.0,
                     "fixed_interarrival": True},
        visits_weeks=[0, 2, 4],
        primary_endpoint={"week": 4},
        sample_size=20,
        interim=interim,
    )


@pytest.mark.parametrize("on_stop", ["overrun", "end_follow_up"])
def test_exact_look_timeline(on_stop):
    """Look when 5 patients have completed: patient 4 (randomised at 5.5) completes at 9.5, so the look's data
    cut-off is 9.5 exactly: 9 patients randomised (1.5 … 9.5), 5 completers, no visit after 9.5. The decision,
    2.25 weeks later (11.75), stops the trial: enrolment went on during the lag (10.5 and 11.5) and nobody is
    randomised after the stop. Overrun: the final analysis waits for the last patient's exit (11.5 + 4 = 15.5);
    end_follow_up: it happens at the stop, with the visits done by 11.75."""
    scenario = degenerate_adaptive(
        looks=[{"trigger": "completed", "at": 5}], analysis_lag_weeks=2.25, on_stop=on_stop
    )
    recorder = _Recorder()
    batch, trials = simulate_trials(scenario, 20, [trial_seed(1, 0)], analyst=recorder)
    (look, cutoff, times, randomised, completed), final = recorder.seen
    assert (look, cutoff) == (0, 9.5)
    assert randomised.sum() == 9 and completed.sum() == 5
    assert np.nanmax(times) == 9.5  # nothing after the cut-off
    state = trials.states[0]
    assert state.stop_week == 11.75 and state.records[0].decision_week == 11.75
    data = batch.trial(0)
    np.testing.assert_array_equal(data.randomised_week, 1.5 + np.arange(11))
    assert final[0] == -1
    if on_stop == "overrun":
        assert final[1] == 15.5 and final[4].sum() == 11 and batch.end_week[0] == 15.5
    else:
        assert final[1] == 11.75 and np.nanmax(final[2]) <= 11.75 and final[4].sum() == 7
        assert batch.end_week[0] == 11.75


@pytest.mark.parametrize(("trigger", "at", "cutoff"), [("randomised", 6, 6.5), ("week", 8.25, 8.25)])
def test_randomised_and_calendar_triggers(trigger, at, cutoff):
    """The 6th patient is randomised at 6.5; a calendar look fires at its week. Without a stop, all 20 patients
    are randomised (1.5 … 20.5) and the final analysis is at the last exit, 24.5."""
    scenario = degenerate_adaptive(looks=[{"trigger": trigger, "at": at}])
    recorder = _Recorder(stop_at_look=None)
    batch, _ = simulate_trials(scenario, 20, [trial_seed(2, 0)], analyst=recorder)
    (look, seen_cutoff, times, randomised, _), final = recorder.seen
    assert seen_cutoff == cutoff and np.nanmax(times) <= cutoff
    assert randomised.sum() == int(np.floor(cutoff - 0.5))
    assert final[1] == 24.5 and batch.randomised[0].sum() == 20


def test_adaptive_results_do_not_depend_on_workers_or_chunks():
    """The bundled three-arm adaptive design (arm dropping, response-adaptive randomisation): identical trial
    tables for 1, 2 and 3 workers and different chunk sizes."""
    from trialsim.runner import run_trials
    from trialsim.spec import load_design

    scenario, plan = load_design("three_arm_adaptive")
    reference, _ = run_trials(scenario, plan, 36, seed=5, workers=1, chunk_size=36)
    for workers, chunk in ((2, 7), (3, 5)):
        other, _ = run_trials(scenario, plan, 36, seed=5, workers=workers, chunk_size=chunk)
        pd.testing.assert_frame_equal(reference, other)
