"""Permuted-block randomisation, stratified by site."""

from __future__ import annotations

import numpy as np


def block_template(ratio: list[int], block_size: int) -> np.ndarray:
    """One block's arm indices in order: arm a appears ratio[a]·block_size/sum(ratio) times."""
    total = sum(ratio)
    if block_size % total != 0:
        raise ValueError(f"block_size {block_size} is not a multiple of sum(ratio) = {total}")
    return np.repeat(np.arange(len(ratio)), [r * (block_size // total) for r in ratio])


def block_sequences(ratio: list[int], block_size: int, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arm sequence per stratum, shape (strata, ≥ max(counts)): independent permuted blocks in each row.

    Within a stratum, after any number of patients the allocation departs from the target ratio by less than
    one block.
    """
    template = block_template(ratio, block_size)
    blocks = max(1, -(-int(np.max(counts, initial=0)) // block_size))
    keys = rng.random((counts.size * blocks, block_size))
    return template[np.argsort(keys, axis=1)].reshape(counts.size, blocks * block_size)
