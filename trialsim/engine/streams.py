"""The random streams of one simulated trial: disjoint regions of one PCG64 stream seeded by the trial's child seed.

Region r starts 2⁶⁴·r outputs into the stream (``PCG64.advance``), far beyond anything a trial draws, so the
regions are independent in practice and each component draws from the start of its own region whatever the
others do. Every region is laid out so that its first values do not depend on how many are drawn (arrays filled
patient by patient, round by round): patient i of trial k is therefore the same person — site, arrival order,
potential outcomes — at every sample size (common random numbers across design points), and a point and an
assurance run share their patients. One PCG64 per trial costs ≈ 5 µs, a region switch ≈ 2 µs.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

#: Outputs between the starts of two regions.
REGION_SPACING = 2**64


class Region(IntEnum):
    """What each region of a trial's stream is for."""

    TRIAL = 0  # assurance effect draws, site effects, site opening weeks and rates
    ARRIVALS = 1  # screening gaps and screening outcomes, rows of (site, 2) per arrival round
    ALLOCATION = 2  # permuted-block keys of the initial allocation; later policies use ALLOCATION + 16·policy
    PATIENT_UNIFORMS = 3  # per-patient uniforms, one row per randomised patient (VariateLayout.uniform)
    PATIENT_NORMALS = 4  # per-patient normals (VariateLayout.normal)
    PATIENT_EXTRA = 5  # optional normals: subscales and rater noise (VariateLayout.extra)
    TRIAL_WORLD = 6  # trial-level world draws: the trial's control improvement (assurance)


class TrialStreams:
    """Generators positioned at the start of a region of one trial's stream."""

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self._bits = np.random.PCG64(seed)
        self._origin = self._bits.state
        self._generator = np.random.Generator(self._bits)

    def region(self, region: int) -> np.random.Generator:
        """The trial's generator moved to the start of ``region``. It is shared: finish drawing from one region
        before asking for another (or use :meth:`fork` for a generator that keeps its own position)."""
        self._bits.state = self._origin
        self._bits.advance(int(region) * REGION_SPACING)
        return self._generator

    def fork(self, region: int) -> np.random.Generator:
        """An independent generator at the start of ``region`` (for draws interleaved with other regions)."""
        bits = np.random.PCG64(0)
        bits.state = self._origin
        bits.advance(int(region) * REGION_SPACING)
        return np.random.Generator(bits)


def allocation_region(policy: int) -> int:
    """Region of the permuted-block keys of allocation policy ``policy`` (0 = initial, k = after the k-th change)."""
    return Region.ALLOCATION + 16 * policy
