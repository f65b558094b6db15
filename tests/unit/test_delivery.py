"""Treatment-delivery resources: exact queueing timelines, capacity policies, resource use and reproducibility."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import make_scenario
from trialsim.engine.delivery import (
    course_end_weeks,
    resource_use,
    sessions_by,
    site_slots,
    uses_resources,
)
from trialsim.engine.trial import simulate_trial

TMS = {"resource": "tms", "schedule": [{"weeks": 4, "per_week": 5}]}
ECT = {"resource": "ect", "schedule": [{"weeks": 4, "per_week": 3}, {"weeks": 4, "per_week": 2}]}
DEGENERATE = {  # one site opening at 0.5, a patient every week from 1.5, no screen failures
    "sites": 1,
    "activation_weeks": [0.5, 0.5],
    "rate_per_site_per_week": 1.0,
    "rate_cv": 0.0,
    "fixed_interarrival": True,
}


def sham_controlled(on_shortage="wait", units=1, recruitment=None, sample_size=40, control_treated=True):
    """rTMS versus sham on the same chairs; each chair gives 1 session a day, 5 days a week → 1 slot per chair."""
    return make_scenario(
        arms=[
            {"name": "sham", "control": True, **({"treatment": TMS} if control_treated else {})},
            {"name": "rtms", "effect": {"points": 6.0}, "treatment": TMS},
        ],
        resources={
            "tms": {"units_per_site": units, "sessions_per_day": 1, "days_per_week": 5, "on_shortage": on_shortage}
        },
        recruitment=recruitment or {"sites": 3, "rate_per_site_per_week": 1.0},
        sample_size=sample_size,
    )


def ect_trial(session_hours=1.5):
    return make_scenario(
        arms=[{"name": "tau", "control": True}, {"name": "ect", "effect": {"points": 6.0}, "treatment": ECT}],
        resources={"ect": {"sessions_per_day": 6, "session_hours": session_hours}},
    )


def enrol(scenario, n, seed=0):
    """One simulated trial's enrolment: site, arm, week, start_delay per randomised patient, counts and the
    recruitment and course events of its timeline (site openings, randomisations, turn-aways, courses)."""
    data, timeline = simulate_trial(scenario, n, np.random.SeedSequence(seed))
    recruitment_events = ("site_open", "randomised", "turned_away", "course_start", "course_end")
    return SimpleNamespace(
        site=data.site,
        arm=data.arm,
        week=data.randomised_week,
        start_delay=data.covariates.get("treatment_start_delay_weeks", np.zeros(data.n)),
        turned_away=timeline.turned_away,
        screened=timeline.screened,
        site_open_week=timeline.site_open_week,
        log=[e for e in timeline.events if e[1] in recruitment_events],
    )


def test_slots_use_the_peak_frequency_over_all_arms_of_a_resource():
    scenario = make_scenario(
        arms=[
            {"name": "sham", "control": True, "treatment": {**TMS, "schedule": [{"weeks": 4, "per_week": 2}]}},
            {"name": "rtms", "effect": {"points": 6.0}, "treatment": TMS},
        ],
        resources={"tms": {"units_per_site": 2, "sessions_per_day": 5}, "spare": {"sessions_per_day": 1}},
    )
    assert uses_resources(scenario) and not uses_resources(make_scenario())
    assert site_slots(scenario) == {"tms": 10}  # 2 × 5 × 5 sessions a week / peak 5 a week; unused "spare" left out
    assert site_slots(ect_trial()) == {"ect": 10}  # 1 × 6 × 5 / 3


@pytest.mark.parametrize("on_shortage", ["wait", "cap_enrolment"])
def test_ample_capacity_nobody_waits(on_shortage):
    scenario = sham_controlled(on_shortage, units=30, sample_size=60)
    enrolment = enrol(scenario, 60, 4)
    assert enrolment.start_delay.shape == (60,) and np.all(enrolment.start_delay == 0)
    assert enrolment.turned_away == 0 and enrolment.site.size == 60


def test_wait_policy_randomises_exactly_as_recruit():
    """With ``wait`` nobody is turned away: the same patients, sites and arms as without the resource."""
    scenario = sham_controlled("wait", units=1, sample_size=50)
    plain = enrol(scenario.model_copy(update={"resources": {}, "arms": [
        arm.model_copy(update={"treatment": None}) for arm in scenario.arms]}), 50, 8)
    delivered = enrol(scenario, 50, 8)
    for field in ("site", "arm", "week", "site_open_week"):
        np.testing.assert_array_equal(getattr(delivered, field), getattr(plain, field))
    assert delivered.screened == plain.screened and delivered.turned_away == 0


def test_wait_below_demand_follows_the_fifo_queue():
    """One slot per site, 4-week courses, a patient a week: waits are positive and grow, and each site's course
    starts obey the single-server recursion start_k = max(randomised_k, start_{k−1} + 4)."""
    scenario = sham_controlled("wait", units=1, sample_size=60)
    enrolment = enrol(scenario, 60, 1)
    delay = enrolment.start_delay
    assert np.all(delay >= 0) and np.count_nonzero(delay > 0) > 30
    for s in range(3):
        at_site = enrolment.site == s
        randomised, wait = enrolment.week[at_site], delay[at_site]
        start, previous_end = randomised + wait, -np.inf
        for k in range(randomised.size):
            assert start[k] == pytest.approx(max(randomised[k], previous_end))
            previous_end = start[k] + 4.0
        quarter = wait.size // 4
        assert wait[-quarter:].mean() > wait[:quarter].mean() + 4


def test_cap_enrolment_below_demand_slows_recruitment():
    ample = enrol(sham_controlled("cap_enrolment", units=30, sample_size=40), 40, 2)
    tight = enrol(sham_controlled("cap_enrolment", units=1, sample_size=40), 40, 2)
    assert tight.turned_away > 0 and ample.turned_away == 0
    assert tight.week[-1] > ample.week[-1] + 40  # ~1 patient per site per 4 weeks instead of ~1 per week
    assert np.all(tight.start_delay == 0) and tight.site.size == 40
    assert tight.screened >= 40 + tight.turned_away
    assert sum(1 for e in tight.log if e[1] == "turned_away") == tight.turned_away


def test_cap_enrolment_gates_on_busy_slots_only():
    """Only the active arm uses the chair: a site turns patients away exactly while its one chair is in use."""
    scenario = sham_controlled("cap_enrolment", units=1, sample_size=60, control_treated=False)
    enrolment = enrol(scenario, 60, 5)
    assert enrolment.turned_away > 0
    busy = [0, 0, 0]
    for _, event, site, patient in enrolment.log:
        if event == "course_start":
            busy[site] += 1
            assert busy[site] == 1 and enrolment.arm[patient] == 1
        elif event == "course_end":
            busy[site] -= 1
        elif event == "turned_away":
            assert busy[site] == 1
        elif event == "randomised":
            assert busy[site] == 0
    weeks = [e[0] for e in enrolment.log]
    assert weeks == sorted(weeks)
    for s in range(3):  # default permuted blocks of 4 per site: never more than 2 apart
        arms = enrolment.arm[enrolment.site == s]
        assert np.abs(np.cumsum(np.where(arms == 1, 1, -1))).max() <= 2


def test_exact_queue_one_slot_wait():
    """1 slot, weekly arrivals from w0 = 1.5, 4-week courses in both arms: patient k starts at w0 + 4k (wait 3k).

    At 5.5 patient 0's course ends as patient 4 arrives: the freed slot goes to the head of the queue (patient 1)
    before patient 4 is randomised and queues.
    """
    scenario = sham_controlled("wait", recruitment=DEGENERATE, sample_size=6)
    enrolment = enrol(scenario, 6, 3)
    np.testing.assert_array_equal(enrolment.week, 1.5 + np.arange(6))
    np.testing.assert_array_equal(enrolment.start_delay, 3.0 * np.arange(6))
    assert enrolment.turned_away == 0 and enrolment.screened == 6
    assert enrolment.log == [
        (0.5, "site_open", 0, -1),
        (1.5, "randomised", 0, 0),
        (1.5, "course_start", 0, 0),
        (2.5, "randomised", 0, 1),
        (3.5, "randomised", 0, 2),
        (4.5, "randomised", 0, 3),
        (5.5, "course_end", 0, 0),
        (5.5, "course_start", 0, 1),
        (5.5, "randomised", 0, 4),
        (6.5, "randomised", 0, 5),
        (9.5, "course_end", 0, 1),
        (9.5, "course_start", 0, 2),
        (13.5, "course_end", 0, 2),
        (13.5, "course_start", 0, 3),
        (17.5, "course_end", 0, 3),
        (17.5, "course_start", 0, 4),
        (21.5, "course_end", 0, 4),
        (21.5, "course_start", 0, 5),
        (25.5, "course_end", 0, 5),
    ]


def test_exact_cap_enrolment_one_slot():
    """1 slot, weekly arrivals from 1.5, 4-week courses: randomised at 1.5, 5.5, 9.5 with 3 turned away between.

    Tie rule: the arrival at 5.5, exactly when the slot frees, is accepted (course ends are processed first).
    """
    scenario = sham_controlled("cap_enrolment", recruitment=DEGENERATE)
    enrolment = enrol(scenario, 3, 3)
    np.testing.assert_array_equal(enrolment.week, [1.5, 5.5, 9.5])
    np.testing.assert_array_equal(enrolment.start_delay, [0.0, 0.0, 0.0])
    assert enrolment.turned_away == 6 and enrolment.screened == 9
    away = [(w, "turned_away", 0, -1) for w in (2.5, 3.5, 4.5)]
    away_later = [(w, "turned_away", 0, -1) for w in (6.5, 7.5, 8.5)]
    assert enrolment.log == [
        (0.5, "site_open", 0, -1),
        (1.5, "randomised", 0, 0),
        (1.5, "course_start", 0, 0),
        *away,
        (5.5, "course_end", 0, 0),
        (5.5, "randomised", 0, 1),
        (5.5, "course_start", 0, 1),
        *away_later,
        (9.5, "course_end", 0, 1),
        (9.5, "randomised", 0, 2),
        (9.5, "course_start", 0, 2),
        (13.5, "course_end", 0, 2),
    ]


def test_sessions_by_matches_the_scalar_schema_method():
    scenario = ect_trial()
    treatment = scenario.arms[1].treatment
    weeks = np.linspace(-2.0, 10.0, 49)
    np.testing.assert_allclose(sessions_by(treatment, weeks), [treatment.sessions_by(w) for w in weeks])
    assert sessions_by(treatment, np.array([8.0, 100.0])).tolist() == [20.0, 20.0]


def test_resource_use_counts_completed_prorated_and_delayed_courses():
    scenario = ect_trial(session_hours=1.5)
    arm = np.array([[0, 1, 1, 1], [1, 1, 0, 0]])
    delay = np.array([[0.0, 0.0, 0.0, 2.0], [0.0, 5.0, 0.0, 0.0]])
    on_treatment = np.array([[12.0, 12.0, 6.0, 6.0], [1.0, 4.0, 12.0, 12.0]])
    use = resource_use(scenario, arm, delay, on_treatment)
    assert sorted(use) == [
        "ect.max_wait_weeks",
        "ect.mean_wait_weeks",
        "ect.patients_waiting",
        "ect.sessions",
        "ect.unit_hours",
    ]
    # trial 0: control 0; completer 20 = 4×3 + 4×2; left at week 6: 4×3 + 2×2 = 16; delayed 2, left at 6: 4×3 = 12
    # trial 1: left after 1 week: 3; delayed 5 weeks but left at 4: 0
    np.testing.assert_allclose(use["ect.sessions"], [48.0, 3.0])
    np.testing.assert_allclose(use["ect.unit_hours"], [72.0, 4.5])
    np.testing.assert_array_equal(use["ect.patients_waiting"], [1, 1])
    np.testing.assert_allclose(use["ect.mean_wait_weeks"], [2.0 / 3.0, 2.5])
    np.testing.assert_allclose(use["ect.max_wait_weeks"], [2.0, 5.0])
    np.testing.assert_allclose(course_end_weeks(scenario, arm, delay), [[0.0, 8.0, 8.0, 10.0], [8.0, 13.0, 0.0, 0.0]])


def test_resource_use_of_a_simulated_enrolment():
    """Completers of a sham-controlled rTMS trial each get 20 sessions; waits match the enrolment's delays."""
    scenario = sham_controlled("wait", units=1, sample_size=30)
    enrolment = enrol(scenario, 30, 6)
    delay = enrolment.start_delay[None, :]
    use = resource_use(scenario, enrolment.arm[None, :], delay, delay + 6.0)
    assert use["tms.sessions"].tolist() == [600.0] and use["tms.unit_hours"].tolist() == [600.0]
    assert use["tms.patients_waiting"][0] == np.count_nonzero(enrolment.start_delay > 0)
    assert use["tms.mean_wait_weeks"][0] == pytest.approx(enrolment.start_delay.mean())
    assert use["tms.max_wait_weeks"][0] == enrolment.start_delay.max()


@pytest.mark.parametrize("on_shortage", ["wait", "cap_enrolment"])
def test_same_seed_same_enrolment(on_shortage):
    scenario = sham_controlled(
        on_shortage,
        units=1,
        sample_size=40,
        recruitment={"sites": 4, "rate_per_site_per_week": 1.5, "screen_failure": 0.3, "block_size": 4},
    )
    first, second = (enrol(scenario, 40, 11) for _ in range(2))
    for field in ("site", "arm", "week", "site_open_week", "start_delay"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert (first.screened, first.turned_away, first.log) == (second.screened, second.turned_away, second.log)
    other = enrol(scenario, 40, 12)
    assert not np.array_equal(first.week, other.week)
    for s in range(4):  # permuted blocks of 4 per site: never more than 2 apart
        arms = first.arm[first.site == s]
        assert np.abs(np.cumsum(np.where(arms == 1, 1, -1))).max() <= 2
