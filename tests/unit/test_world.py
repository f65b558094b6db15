"""Exact checks of the world's building blocks: monitoring schedules, time courses, clozapine levels, and the
scenario rules that guard them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import make_scenario
from trialsim.exceptions import ScenarioError
from trialsim.spec.scenario import ClozapineExposure, Monitoring
from trialsim.world import exposure, monitoring
from trialsim.world.outcome import response_shape
from trialsim.world.time_course import Course


def test_us_label_schedule_counts_and_next_tests():
    """Weekly to week 26, every 2 weeks to week 52, then every 4: 26 tests by week 26, 39 by 52, 40 by 56."""
    plan = Monitoring(schedule="us_label")
    weeks = np.array([0.5, 1, 26, 27, 28, 52, 55.9, 56])
    assert monitoring.tests_by(plan, weeks).tolist() == [0, 1, 26, 26, 27, 39, 39, 40]
    onsets = np.array([0.0, 0.2, 1.0, 25.5, 26.1, 27.0, 51.0, 52.5])
    assert monitoring.next_test(plan, onsets).tolist() == [1, 1, 1, 26, 28, 28, 52, 56]


def test_non_us_label_and_custom_schedules():
    """Weekly to week 18, then every 4 weeks; a custom schedule of phases behaves the same way."""
    preset = Monitoring()
    custom = Monitoring(schedule=[{"every_weeks": 1, "until_week": 18}, {"every_weeks": 4}])
    weeks = np.array([17.5, 18, 21.9, 22, 30])
    for plan in (preset, custom):
        assert monitoring.tests_by(plan, weeks).tolist() == [17, 18, 18, 19, 21]
        assert monitoring.next_test(plan, weeks).tolist() == [18, 18, 22, 22, 30]


def test_neutropenia_onset_peaks_at_one_month():
    """Gamma(2, 4.35): mode 4.35 weeks (the density's peak), mean 8.7, P(onset > 52 weeks) < 1e-4."""
    plan = Monitoring()
    u = (np.arange(200_000) + 0.5) / 200_000
    onset = monitoring.neutropenia_onset(plan, u)
    assert onset.mean() == pytest.approx(8.7, rel=1e-3)
    counts, edges = np.histogram(onset, bins=np.arange(0, 30, 0.5))
    assert 4.0 <= edges[counts.argmax()] <= 4.5
    assert (onset > 52).mean() < 1e-4


@pytest.mark.parametrize("onset", [1.0, 3.0, 8.0])
def test_default_course_is_the_response_shape(onset):
    scenario = make_scenario(outcome={"onset_weeks": onset})
    weeks = np.array([0.0, 1.0, 2.5, 4.0, 6.0, 9.0])
    course = Course.of(scenario.arms[1], scenario)
    assert np.array_equal(course(weeks), response_shape(weeks, onset, 6.0))


def test_course_lag_normalisation_and_fade():
    """No effect before the lag; 1 at the reference week (the end of treatment when it comes before the
    endpoint); after the end, a fade by e^{−1} per offset time constant."""
    scenario = make_scenario(
        visits_weeks=[0, 4, 8, 12],
        primary_endpoint={"week": 12},
        arms=[
            {"name": "c", "control": True},
            {"name": "a", "effect": {"points": 3}, "time_course": {"onset_weeks": 2, "lag_weeks": 1,
                                                                   "treatment_weeks": 6, "offset_weeks": 4}},
        ],
    )
    course = Course.of(scenario.arms[1], scenario)
    assert course(np.array([0.0, 1.0])).tolist() == [0.0, 0.0]
    assert course(6.0) == pytest.approx(1.0)
    assert course(10.0) == pytest.approx(math.exp(-1.0))
    assert course(3.0) == pytest.approx(-math.expm1(-1.0) / -math.expm1(-2.5))
    # exposure starting later (a level change at week 4) adds a rise from week 4 on
    assert course(6.0, 4.0) == pytest.approx(-math.expm1(-1.0) / -math.expm1(-2.5))


def test_level_guided_dosing_caps_levels_at_the_target_and_eligibility_truncates():
    spec = ClozapineExposure(eligibility_min_level_ng_ml=300, smokers_quitting=1.0)
    u = np.random.default_rng(1).random((100_000, exposure.EXPOSURE_UNIFORMS))
    smoker = np.arange(100_000) % 2 == 0
    levels = exposure.draw_levels(spec, smoker, u, 12.0)
    assert levels.entry.max() <= 350.0 and levels.entry.min() >= 300.0 - 1e-9
    assert np.allclose(levels.after_quit[smoker], 2.0 * levels.entry[smoker])
    assert np.array_equal(levels.after_quit[~smoker], levels.entry[~smoker])
    assert np.isinf(levels.quit_week[~smoker]).all() and (levels.quit_week[smoker] <= 12.0).all()


def test_fixed_dose_levels_are_dose_times_cd_ratio():
    """Fixed 400 mg/day: the level is 400 × C/D, C/D log-normal with median mean·e^{−σ²/2}: the median level of
    non-smokers is 400 × 2.22 × e^{−0.45²/2} (exact quantile of the inverse-CDF draw at u = 0.5)."""
    spec = ClozapineExposure(dosing="fixed", dose_mg_per_day=400)
    u = np.full((1, exposure.EXPOSURE_UNIFORMS), 0.5)
    level = exposure.draw_levels(spec, np.array([False]), u, 6.0).entry[0]
    assert level == pytest.approx(400 * 2.22 * math.exp(-(0.45**2) / 2))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"heterogeneity": {"rater_sd": 11.0}}, "heterogeneity.rater_sd"),
        (
            {"arms": [{"name": "c", "control": True}, {"name": "a", "effect": {"points": 3}, "responder_rate": 0.4}]},
            "arms[1]",
        ),
        (
            {"arms": [{"name": "c", "control": True, "responder_rate": 0.2}, {"name": "a", "effect": {"points": 3}}],
             "outcome": {"control_improvement": 5.0}},
            "outcome.control_improvement",
        ),
        (
            {"arms": [{"name": "c", "control": True},
                      {"name": "a", "effect": {"points": 3}, "time_course": {"lag_weeks": 6}}]},
            "arms[1].time_course.lag_weeks",
        ),
        (
            {"population": {"background": "not_trs"}, "clozapine": {"eligibility_min_level_ng_ml": 350}},
            "clozapine.eligibility_min_level_ng_ml",
        ),
        ({"clozapine": {"eligibility_min_level_ng_ml": 400}}, "clozapine"),
        ({"heterogeneity": {"smoker_exposure_ratio": 0.5}}, "heterogeneity.smoker_exposure_ratio"),
    ],
)
def test_world_rules_are_checked_at_load(overrides, field):
    with pytest.raises(ScenarioError) as caught:
        make_scenario(**overrides)
    assert any(problem.field.startswith(field) for problem in caught.value.problems), caught.value.problems
