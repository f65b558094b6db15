"""Same seed → same numbers, whatever the number of workers or the chunk size; no global RNG state touched."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_scenario
from trialsim.chunk import trial_seed
from trialsim.runner import run_trials, simulate
from trialsim.spec.loading import load_design


@pytest.fixture(scope="module")
def scenario():
    return make_scenario(
        sample_size=[30, 50],
        dropout={"fraction": 0.2},
        visit_window_days=2,
        recruitment={"sites": 4, "rate_per_site_per_week": 1.0, "screen_failure": 0.2},
    )


def test_same_seed_same_parquet(scenario, vague_plan, tmp_path):
    first = simulate(scenario, vague_plan, 60, seed=123, workers=1)
    second = simulate(scenario, vague_plan, 60, seed=123, workers=1)
    first.save(tmp_path / "a")
    second.save(tmp_path / "b")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "trials.parquet"), pd.read_parquet(tmp_path / "b" / "trials.parquet")
    )
    assert first.summary["design_points"] == second.summary["design_points"]


def test_different_seed_different_numbers(scenario, vague_plan):
    a, _ = run_trials(scenario, vague_plan, 20, seed=1, workers=1)
    b, _ = run_trials(scenario, vague_plan, 20, seed=2, workers=1)
    assert not np.allclose(a["drug.estimate"], b["drug.estimate"])


@pytest.mark.parametrize(("workers", "chunk_size"), [(1, 7), (2, 13), (2, 60), (3, 1)])
def test_workers_and_chunks_do_not_matter(scenario, vague_plan, workers, chunk_size):
    """Bit for bit: every trial's numbers depend on its own seed only."""
    reference, _ = run_trials(scenario, vague_plan, 60, seed=99, workers=1, chunk_size=60)
    other, _ = run_trials(scenario, vague_plan, 60, seed=99, workers=workers, chunk_size=chunk_size)
    pd.testing.assert_frame_equal(reference, other, check_exact=True)


def test_adaptive_chunks_have_the_same_columns():
    """Chunks of one trial each (some stopping at the first look, some reaching the last) give the same columns,
    in the same order, as one chunk: the columns follow the plan, not the data."""
    scenario, plan = load_design("three_arm_adaptive")
    one, _ = run_trials(scenario, plan, 24, seed=5, workers=1, chunk_size=24)
    single, _ = run_trials(scenario, plan, 24, seed=5, workers=2, chunk_size=1)
    pd.testing.assert_frame_equal(one, single, check_exact=True)


def test_trial_seed_equals_spawn():
    spawned = np.random.SeedSequence(5).spawn(4)[3]
    assert trial_seed(5, 3).generate_state(4).tolist() == spawned.generate_state(4).tolist()


def test_global_random_state_untouched(scenario, vague_plan):
    np_state = np.random.get_state()
    py_state = random.getstate()
    run_trials(scenario, vague_plan, 10, seed=1, workers=1)
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert random.getstate() == py_state


def test_seed_recorded_when_not_given(scenario, vague_plan):
    results = simulate(scenario, vague_plan, 5, seed=None, workers=1)
    seed = results.summary["seed"]
    assert isinstance(seed, int) and seed > 0
    again = simulate(scenario, vague_plan, 5, seed=seed, workers=1)
    pd.testing.assert_frame_equal(results.trials, again.trials)
