"""The event-driven engine: equivalence with the vectorised path, exact look timelines with degenerate inputs,
stopping, and reproducibility across workers."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
