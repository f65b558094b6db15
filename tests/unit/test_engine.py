"""Engine timelines with degenerate inputs (exact event sequences) and block-randomisation balance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_scenario
from trialsim.engine.allocation import block_template, composition, permuted_blocks
from trialsim.engine.trial import simulate_trial


def degenerate(**recruitment):
    """One site, fixed arrivals once a week, no screen failures, no dropout, no visit jitter."""
    rec = {
        "sites": 1,
        "activation_weeks": [0.5, 0.5],
        "rate_per_site_per_week": 1.0,
        "rate_cv": 0.0,
        "fixed_interarrival": True,
    }
    rec.update(recruitment)
    return make_scenario(recruitment=rec, visits_weeks=[0, 2, 4], primary_endpoint={"week": 4}, sample_size=4)


def test_exact_event_sequence_one_site():
    """Site opens at 0.5; patients randomised at 1.5, 2.5, 3.5, 4.5; visits 2 and 4 weeks later; end at 8.5."""
    scenario = degenerate()
    data, timeline = simulate_trial(scenario, 4, np.random.SeedSequence(7))
    expected = [
        (0.5, "site_open", 0, -1),
        (1.5, "randomised", 0, 0),
        (2.5, "randomised", 0, 1),
        (3.5, "randomised", 0, 2),
        (3.5, "visit_w2", 0, 0),
        (4.5, "randomised", 0, 3),
        (4.5, "visit_w2", 0, 1),
        (5.5, "visit_w2", 0, 2),
        (5.5, "visit_w4", 0, 0),
        (5.5, "completed", 0, 0),
        (6.5, "visit_w2", 0, 3),
        (6.5, "visit_w4", 0, 1),
        (6.5, "completed", 0, 1),
        (7.5, "visit_w4", 0, 2),
        (7.5, "completed", 0, 2),
        (8.5, "visit_w4", 0, 3),
        (8.5, "completed", 0, 3),
    ]
    log = timeline.events
    recruitment_log = [e for e in log if e[1] in ("site_open", "randomised")]
    follow_up = sorted((e for e in log if e[1] not in ("site_open", "randomised")), key=lambda e: e[3])
    assert recruitment_log == expected[:1] + [e for e in expected if e[1] == "randomised"]
    assert [e[0] for e in log] == sorted(e[0] for e in log)
    assert sorted(log, key=lambda e: (e[0], e[3], e[1])) == sorted(expected, key=lambda e: (e[0], e[3], e[1]))
    assert len(follow_up) == 12
    assert data.end_week == 8.5
    np.testing.assert_array_equal(data.randomised_week, [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(data.visit_time[:, 2], [5.5, 6.5, 7.5, 8.5])
    assert timeline.screened == 4 and timeline.screen_failures == 0
    assert np.all(np.isinf(data.dropout_week)) and not np.isnan(data.panss).any()


def test_two_sites_open_together_and_stop_at_target():
    """Two identical sites opening at week 1: two randomisations per week, recruitment stops at exactly N."""
    scenario = degenerate(sites=2, activation_weeks=[1.0, 1.0])
    data, _ = simulate_trial(scenario, 5, np.random.SeedSequence(3))
    np.testing.assert_array_equal(data.randomised_week, [2.0, 2.0, 3.0, 3.0, 4.0])
    np.testing.assert_array_equal(data.site, [0, 1, 0, 1, 0])
    assert data.n == 5
    assert data.end_week == 8.0  # last patient randomised at 4 + last visit at 4 weeks


def test_screen_failures_stretch_fixed_arrivals():
    """With screening failures, randomised gaps are whole multiples of the fixed screening gap."""
    scenario = degenerate(screen_failure=0.5)
    data, timeline = simulate_trial(scenario, 4, np.random.SeedSequence(11))
    gaps = np.diff(np.concatenate([[0.5], data.randomised_week]))
    np.testing.assert_allclose(gaps, np.round(gaps))
    assert timeline.screened == round(gaps.sum())
    assert timeline.screen_failures == timeline.screened - 4


def test_dropout_masks_later_visits():
    scenario = make_scenario(dropout={"fraction": 0.5}, sample_size=200)
    data, _ = simulate_trial(scenario, 200, np.random.SeedSequence(5))
    dropped = np.isfinite(data.dropout_week)
    assert dropped.any() and (~dropped).any()
    rel = data.visit_weeks[None, :]
    # a visit is observed exactly when it falls before dropout
    expected_observed = rel < data.dropout_week[:, None]
    expected_observed[:, 0] = True
    np.testing.assert_array_equal(~np.isnan(data.panss), expected_observed)
    assert set(data.dropout_reason[dropped]) == {"withdrawal"} and set(data.dropout_reason[~dropped]) == {""}


def test_per_patient_table():
    scenario = make_scenario(dropout={"fraction": 0.3}, visit_window_days=3)
    data, _ = simulate_trial(scenario, 40, np.random.SeedSequence(1))
    frame = data.to_frame()
    assert len(frame) == 40
    for column in (
        "site",
        "arm",
        "randomised_week",
        "baseline_panss",
        "panss_w6",
        "time_w6",
        "dropout_week",
        "dropout_reason",
        "age",
        "female",
        "smoker",
        "panss_positive",
        "panss_negative",
    ):
        assert column in frame.columns
    assert set(frame["arm"]) == {"placebo", "drug"}
    assert (frame["baseline_panss"] >= 80).all() and (frame["panss_w6"].dropna() >= 30).all()
    # visit-window jitter stays within ±3 days of the nominal week
    offset = frame["time_w6"] - frame["randomised_week"] - 6
    assert (offset.dropna().abs() <= 3 / 7 + 1e-12).all() and offset.dropna().std() > 0


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    multiple=st.integers(1, 3),
    patients=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
)
def test_block_randomisation_stays_within_one_block(ratio, multiple, patients, seed):
    """After every patient, each arm's count is within one block's share of its target; exact at block ends."""
    block = sum(ratio) * multiple
    rounds = patients // block + 1
    keys = np.random.default_rng(seed).random((rounds, 1, block))
    sequence = permuted_blocks(block_template(ratio, block), keys)[:, 0, :].ravel()[:patients]
    share = np.asarray(ratio) / sum(ratio)
    counts = np.zeros(len(ratio))
    for n, arm in enumerate(sequence, start=1):
        counts[arm] += 1
        assert np.all(np.abs(counts - share * n) <= share * block + 1e-9)
        if n % block == 0:
            np.testing.assert_allclose(counts, share * n)


def test_block_randomisation_is_stratified_by_site():
    scenario = make_scenario(recruitment={"sites": 4, "rate_per_site_per_week": 2.0, "block_size": 4}, sample_size=200)
    data, _ = simulate_trial(scenario, 200, np.random.SeedSequence(9))
    for site in range(4):
        arms = data.arm[data.site == site]
        imbalance = np.abs(np.cumsum(np.where(arms == 1, 1, -1)))
        assert imbalance.max() <= 2  # block of 4 with 1:1 → never more than 2 apart


def test_unequal_allocation_ratio():
    scenario = make_scenario(allocation=[1, 2], recruitment={"sites": 1, "rate_per_site_per_week": 1.0}, sample_size=60)
    data, _ = simulate_trial(scenario, 60, np.random.SeedSequence(2))
    assert np.bincount(data.arm).tolist() == [20, 40]


@pytest.mark.parametrize("inclusion", [70.0, 80.0, 150.0])
def test_baseline_truncation(inclusion):
    from trialsim.world.population import BASELINE_UNIFORMS, draw_baseline

    scenario = make_scenario(population={"inclusion_min_panss": inclusion})
    base = draw_baseline(scenario.population, np.random.default_rng(1).random((5000, BASELINE_UNIFORMS)))
    assert base.panss_total.min() >= inclusion and base.panss_total.max() <= 210
    assert base.panss_positive.min() >= 7 and base.panss_positive.max() <= 49
    # subscales correlate positively with the total (correlation 0.6 before truncation)
    assert np.corrcoef(base.panss_total, base.panss_positive)[0, 1] > 0.2


@pytest.mark.parametrize(("shares", "block", "expected"), [
    ([1, 1, 1], 6, [2, 2, 2]),
    ([0.5, 0.3, 0.2], 10, [5, 3, 2]),
    ([0.9, 0.05, 0.05], 4, [2, 1, 1]),  # every open arm keeps a place
    ([1, 0, 1], 6, [3, 0, 3]),  # a closed arm gets none
    ([0.45, 0.45, 0.1], 5, [2, 2, 1]),
])
def test_block_composition(shares, block, expected):
    counts = composition(np.asarray(shares, dtype=float), block)
    assert counts.tolist() == expected and counts.sum() == block
