"""One trial's randomiser: the allocation policies in force over calendar time, and the arms they give.

Policy 0 is the scenario's allocation ratio in permuted blocks of ``recruitment.block_size``; the interim monitor
adds a policy when it drops arms or changes the shares (response-adaptive randomisation). A policy applies to the
patients randomised strictly after its start week; each site starts new blocks under it (ranks are counted per
site within the policy's window). See :mod:`trialsim.engine.allocation` for the block sequences.
"""

from __future__ import annotations

import numpy as np

from trialsim.engine.allocation import block_template, composition, permuted_blocks
from trialsim.engine.streams import TrialStreams, allocation_region


class Randomiser:
    """Allocation policies of one trial (block templates with their start weeks) and their block sequences."""

    def __init__(self, streams: TrialStreams, sites: int, ratio: list[int], block_size: int) -> None:
        self._streams, self._sites = streams, sites
        self.starts: list[float] = [-np.inf]
        self.templates: list[np.ndarray] = [block_template(ratio, block_size)]
        self._sequences: dict[int, np.ndarray] = {}

    def change(self, week: float, shares: np.ndarray, block_size: int) -> None:
        """From ``week`` on, allocate by ``shares`` (one per arm; 0 = closed) in blocks of ``block_size``."""
        counts = composition(shares, block_size)
        self.starts.append(float(week))
        self.templates.append(np.repeat(np.arange(counts.size), counts))

    def sequences(self, policy: int, rounds: int) -> np.ndarray:
        """(≥ rounds, sites, block) arms of ``policy``'s blocks per site (keys from the policy's own region)."""
        have = self._sequences.get(policy)
        if have is None or have.shape[0] < rounds:
            rounds = max(rounds, 2 * (0 if have is None else have.shape[0]))
            template = self.templates[policy]
            keys = self._streams.region(allocation_region(policy)).random((rounds, self._sites, template.size))
            self._sequences[policy] = have = permuted_blocks(template, keys)
        return have

    def policy_of(self, week: np.ndarray) -> np.ndarray:
        """Index of the policy in force for a patient randomised at ``week`` (the last one started before it)."""
        return np.searchsorted(np.asarray(self.starts), week, side="left") - 1

    def arms(self, week: np.ndarray, site: np.ndarray) -> np.ndarray:
        """Arms of patients randomised in this order (weeks non-decreasing) at these sites."""
        arm = np.empty(week.shape, dtype=np.int64)
        policy = self.policy_of(week)
        for p in np.unique(policy):
            mine = policy == p
            sites = site[mine]
            rank = _rank_within(sites, self._sites)
            sequence = self.sequences(int(p), int(rank.max(initial=0)) // self.templates[p].size + 1)
            block = sequence.shape[-1]
            arm[mine] = sequence[rank // block, sites, rank % block]
        return arm


def _rank_within(site: np.ndarray, sites: int) -> np.ndarray:
    """Each patient's 0-based position among the patients of the same site, in the given order."""
    order = np.argsort(site, kind="stable")
    counts = np.bincount(site, minlength=sites)
    first = np.cumsum(counts) - counts
    rank = np.empty_like(order)
    rank[order] = np.arange(site.size) - first[site[order]]
    return rank
