"""The randomiser: permuted blocks stratified by site, under an allocation policy the interim monitor can change.

A policy is a whole-number composition of one block (how many of each arm per block). Each site randomises its
patients through its own sequence of independently permuted blocks; the k-th patient randomised at a site under
a policy gets the k-th entry of that site's sequence. The block keys of policy p come from region
``ALLOCATION + 16·p`` of the trial's stream in rounds of one block per site, so a site's sequence does not depend
on how many rounds are drawn. A policy change (arm dropped, response-adaptive shares) starts new blocks at every
site for the patients randomised after it.
"""

from __future__ import annotations

import numpy as np


def block_template(ratio: list[int] | np.ndarray, block_size: int) -> np.ndarray:
    """One block's arm indices in order: arm a appears ratio[a]·block_size/sum(ratio) times."""
    ratio = [int(r) for r in ratio]
    total = sum(ratio)
    if block_size % total != 0:
        raise ValueError(f"block_size {block_size} is not a multiple of sum(ratio) = {total}")
    return np.repeat(np.arange(len(ratio)), [r * (block_size // total) for r in ratio])


def composition(shares: np.ndarray, block_size: int) -> np.ndarray:
    """Whole-number arm counts of one block closest to ``shares`` (largest remainders; every arm with a positive
    share gets at least one place when the block allows)."""
    shares = np.asarray(shares, dtype=float)
    target = shares / shares.sum() * block_size
    counts = np.floor(target).astype(int)
    positive = shares > 0
    minimum = np.where(positive, 1, 0) if positive.sum() <= block_size else np.zeros_like(counts)
    counts = np.maximum(counts, minimum)
    while counts.sum() > block_size:  # the minimum places overshot: take from the arm most above its target
        spare = counts > minimum
        counts[np.argmax(np.where(spare, counts - target, -np.inf))] -= 1
    remainder = target - counts
    for a in np.argsort(-remainder, kind="stable")[: block_size - counts.sum()]:
        counts[a] += 1
    return counts


def permuted_blocks(template: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Arm sequences from uniform ``keys`` of shape (..., rounds, sites, block): each block is ``template``
    permuted by the order of its keys."""
    return template[np.argsort(keys, axis=-1)]


def block_arms(sequences: np.ndarray, site: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Arm of each patient from per-site block sequences (K, rounds, sites, block), the patient's site and its rank
    among its site's patients under the policy, arrays (K, N)."""
    block = sequences.shape[-1]
    trial = np.arange(sequences.shape[0])[:, None]
    return sequences[trial, rank // block, site, rank % block]


def rounds_for(rank: np.ndarray, block_size: int) -> int:
    """Rounds of blocks needed to cover ranks up to ``rank.max()``."""
    return int(rank.max(initial=-1)) // block_size + 1
