"""Recruitment on the simpy clock: sites open, patients arrive (Poisson–gamma), are screened and randomised.

Site s opens at a time drawn uniformly in the activation window and then screens patients as a Poisson process
with rate λ_s ~ Gamma(shape = 1/cv², mean = rate_per_site_per_week) (Anisimov & Fedorov's accrual model); each
screened patient fails screening with probability f. Screen failures leave no trace but a count, so the process
is simulated at the level of randomised patients: before each randomised patient come F ~ Geometric(1 − f) − 1
failures, and the gap between randomised patients is the sum of 1 + F screening gaps, i.e. Gamma(1 + F, 1/λ_s)
(or (1 + F)/λ_s with fixed inter-arrival times). This is exact and costs one simpy event per randomised patient.
Recruitment stops the moment the target number has been randomised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from trialsim.engine.randomisation import block_sequences
from trialsim.spec.scenario import Recruitment


@dataclass
class Enrolment:
    """Randomised patients in order of randomisation, screening counts and an optional event log.

    ``log`` holds (week, event, site, patient index or −1) tuples when requested.
    """

    site: np.ndarray
    arm: np.ndarray
    week: np.ndarray
    screened: int
    site_open_week: np.ndarray
    log: list[tuple[float, str, int, int]] | None = field(default=None)

    @property
    def screen_failures(self) -> int:
        """Screened patients who were not randomised."""
        return self.screened - int(self.site.size)


def site_rates(recruitment: Recruitment, rng: np.random.Generator) -> np.ndarray:
    """Per-site screening rate (patients per week), gamma-distributed between sites."""
    mean, cv = recruitment.rate_per_site_per_week, recruitment.rate_cv
    if cv == 0:
        return np.full(recruitment.sites, mean)
    shape = 1.0 / cv**2
    return rng.gamma(shape, mean / shape, size=recruitment.sites)


def activation_weeks(recruitment: Recruitment, rng: np.random.Generator) -> np.ndarray:
    """Week at which each site opens, uniform within the activation window."""
    start, end = recruitment.activation_weeks
    return start + (end - start) * rng.random(recruitment.sites)


def _gaps(
    recruitment: Recruitment, rates: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Gaps (weeks) between successive randomised patients per site and the screenings each one took."""
    shape = (recruitment.sites, size)
    if recruitment.screen_failure > 0:
        screenings = rng.geometric(1.0 - recruitment.screen_failure, size=shape)
    else:
        screenings = np.ones(shape, dtype=np.int64)
    if recruitment.fixed_interarrival:
        gaps = screenings / rates[:, None]
    else:
        gaps = rng.standard_gamma(screenings) / rates[:, None]
    return gaps, screenings


def recruit(
    recruitment: Recruitment,
    ratio: list[int],
    target: int,
    rng: np.random.Generator,
    *,
    log: bool = False,
) -> Enrolment:
    """Run recruitment on a simpy clock until ``target`` patients are randomised."""
    env = simpy.Environment()
    opens = activation_weeks(recruitment, rng)
    rates = site_rates(recruitment, rng)
    # Enough pre-drawn gaps for any realistic site; a site that runs out draws another batch.
    batch = max(16, int(3 * target / recruitment.sites) + 16)
    gaps, screenings = _gaps(recruitment, rates, batch, rng)
    gap_lists = gaps.tolist()
    screenings_by_site = [[row] for row in screenings]
    sites: list[int] = []
    weeks: list[float] = []
    per_site = [0] * recruitment.sites
    events: list[tuple[float, str, int, int]] | None = [] if log else None
    stop = env.event()

    def site_process(site: int):
        yield env.timeout(opens[site])
        if events is not None:
            events.append((env.now, "site_open", site, -1))
        own = gap_lists[site]
        while True:
            for gap in own:
                yield env.timeout(gap)
                if stop.triggered:  # another site reached the target at this same instant
                    return
                sites.append(site)
                weeks.append(env.now)
                per_site[site] += 1
                if events is not None:
                    events.append((env.now, "randomised", site, len(sites) - 1))
                if len(sites) == target:
                    stop.succeed()
                    return
            more, more_screenings = _gaps(recruitment, rates[site : site + 1], batch, rng)
            screenings_by_site[site].append(more_screenings[0])
            own = more[0].tolist()

    for site in range(recruitment.sites):
        env.process(site_process(site))
    env.run(until=stop)

    site_arr = np.asarray(sites, dtype=np.int64)
    counts = np.asarray(per_site)
    sequences = block_sequences(ratio, recruitment.block_size or 2 * sum(ratio), counts, rng)
    rank = _rank_within_site(site_arr, recruitment.sites)
    arm = sequences[site_arr, rank] if site_arr.size else np.empty(0, dtype=np.int64)
    screened = sum(int(np.concatenate(rows)[: counts[s]].sum()) for s, rows in enumerate(screenings_by_site))
    return Enrolment(
        site=site_arr,
        arm=arm,
        week=np.asarray(weeks, dtype=float),
        screened=screened,
        site_open_week=opens,
        log=events,
    )


def _rank_within_site(site: np.ndarray, n_sites: int) -> np.ndarray:
    """0-based order of each patient among the patients of the same site (in randomisation order)."""
    order = np.argsort(site, kind="stable")
    counts = np.bincount(site, minlength=n_sites)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty_like(site)
    rank[order] = np.arange(site.size) - starts
    return rank
