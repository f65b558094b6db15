"""Sites open and screen patients: the Poisson–gamma arrival stream of each trial, drawn vectorised.

Site s opens at a week drawn uniformly in the activation window and then screens patients as a Poisson process
with rate λ_s ~ Gamma(shape = 1/cv², mean = rate_per_site_per_week) (the accrual model of Anisimov & Fedorov
2007); each screened patient fails screening with probability f, so randomisable arrivals at a site form a thinned
Poisson process. The screenings of all sites are drawn as one merged sequence from the trial's ``ARRIVALS``
region (see :func:`_poisson_arrivals`), so the randomisable arrivals of a trial are a prefix of one infinite
sequence: the first N are the same patients for every N. Nothing here reacts to anything else, so it needs no
clock: the engine reveals the stream as its clock passes (and a site whose slots are full turns arrivals away,
:mod:`trialsim.engine.delivery`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trialsim.engine.streams import Region, TrialStreams
from trialsim.spec.scenario import Recruitment


@dataclass(frozen=True)
class SiteDraws:
    """Per trial and site: opening week and screening rate (patients per week), arrays (K, sites)."""

    open_week: np.ndarray
    rate: np.ndarray


def draw_sites(recruitment: Recruitment, generators: list[np.random.Generator]) -> SiteDraws:
    """Opening weeks (uniform in the activation window) and gamma-distributed rates, one row per trial, from
    generators positioned in each trial's ``TRIAL`` region."""
    start, end = recruitment.activation_weeks
    sites, mean, cv = recruitment.sites, recruitment.rate_per_site_per_week, recruitment.rate_cv
    opens, rates = [], []
    for rng in generators:
        opens.append(start + (end - start) * rng.random(sites))
        if cv < 1e-6:  # identical sites (a gamma with a vanishing CV is a point mass)
            rates.append(np.full(sites, mean))
        else:
            shape = 1.0 / cv**2
            rates.append(rng.gamma(shape, mean / shape, size=sites))
    return SiteDraws(np.asarray(opens), np.asarray(rates))


@dataclass(frozen=True)
class Arrivals:
    """Randomisable arrivals (patients who pass screening) of K trials, in order of arrival, arrays (K, M).

    Simultaneous arrivals are ordered by site, then by their order at the site. ``rank`` is the patient's
    position among the randomisable arrivals of its site (0-based). ``screening_week`` holds every screening
    drawn, failures included (+inf padding), to count the patients screened by a given week.
    """

    week: np.ndarray
    site: np.ndarray
    rank: np.ndarray
    screening_week: np.ndarray

    def screened_by(self, week: np.ndarray, trials: np.ndarray | None = None) -> np.ndarray:
        """Patients screened up to and including ``week``, one week per trial (of ``trials``, default all)."""
        screening = self.screening_week if trials is None else self.screening_week[trials]
        return np.count_nonzero(screening <= np.asarray(week, dtype=float)[:, None], axis=1)


def draw_arrivals(
    recruitment: Recruitment, streams: list[TrialStreams], sites: SiteDraws, count: int
) -> Arrivals:
    """The first ``count`` randomisable arrivals of every trial."""
    if recruitment.fixed_interarrival:
        return _fixed_arrivals(recruitment, streams, sites, count)
    return _poisson_arrivals(recruitment, streams, sites, count)


def _flat_search(edges: np.ndarray, values: np.ndarray, side: str = "right") -> np.ndarray:
    """Row-wise ``np.searchsorted(edges[k], values[k])`` for 2-D arrays, in one call (rows offset apart)."""
    span = max(float(np.nanmax(edges, initial=0.0)), float(np.nanmax(values, initial=0.0))) + 1.0
    offset = span * np.arange(edges.shape[0])[:, None]
    found = np.searchsorted((edges + offset).ravel(), (values + offset).ravel(), side=side).reshape(values.shape)
    return found - edges.shape[1] * np.arange(edges.shape[0])[:, None]


def _poisson_arrivals(
    recruitment: Recruitment, streams: list[TrialStreams], sites: SiteDraws, count: int
) -> Arrivals:
    """Screenings of all sites as one Poisson process (superposition): with sites sorted by opening week, the
    cumulative intensity Λ(t) = Σ_s λ_s·max(0, t − open_s) is piecewise linear, the j-th screening is at
    Λ⁻¹(E_1 + … + E_j) (unit exponentials, time rescaling), at site s with probability λ_s / Σ_open λ (thinning);
    the same law as independent per-site Poisson processes. Each screening uses three uniforms of the ARRIVALS
    region (gap, site, screening outcome) in order, so the first j screenings are the same whatever the number
    drawn; enough are drawn for ``count`` to pass screening (more if a trial falls short)."""
    trials, n_sites = len(streams), recruitment.sites
    screenings = int(math.ceil(1.2 * count / (1.0 - recruitment.screen_failure))) + 16
    while True:  # rarely more than once: a trial short of passes redraws twice as many (the same values first)
        u = np.stack([t.region(Region.ARRIVALS).random((screenings, 3)) for t in streams])
        passes = u[..., 2] >= recruitment.screen_failure
        if np.all(np.count_nonzero(passes, axis=1) >= count):
            break
        screenings *= 2
    order = np.argsort(sites.open_week, axis=1, kind="stable")
    opens = np.take_along_axis(sites.open_week, order, axis=1)
    rate_open = np.cumsum(np.take_along_axis(sites.rate, order, axis=1), axis=1)  # total rate once i+1 sites open
    intensity = np.concatenate([np.zeros((trials, 1)), np.cumsum(rate_open[:, :-1] * np.diff(opens, axis=1), 1)], 1)
    target = np.cumsum(-np.log1p(-u[..., 0]), axis=1)
    segment = np.clip(_flat_search(intensity, target) - 1, 0, n_sites - 1)
    take = lambda a: np.take_along_axis(a, segment, axis=1)  # noqa: E731
    weeks = take(opens) + (target - take(intensity)) / take(rate_open)
    pick = np.minimum(_flat_search(rate_open, u[..., 1] * take(rate_open)), segment)
    site = np.take_along_axis(order, pick, axis=1)
    return _first_passing(weeks, site, passes, n_sites, count)


def _fixed_arrivals(recruitment: Recruitment, streams: list[TrialStreams], sites: SiteDraws, count: int) -> Arrivals:
    """Deterministic screenings every 1/λ_s weeks at each open site (for testing and planning); outcomes from the
    ARRIVALS region in rounds of one screening per site. Simultaneous screenings are in site order."""
    trials, n_sites = len(streams), recruitment.sites
    passing = sites.rate.sum(axis=1) * (1.0 - recruitment.screen_failure)
    horizon = sites.open_week.max(axis=1) + count / passing + 1.0
    rounds = int(np.max(np.ceil(sites.rate * (horizon[:, None] - sites.open_week)))) + 2
    while True:
        u = np.stack([t.region(Region.ARRIVALS).random((rounds, n_sites)) for t in streams])
        weeks = sites.open_week[:, None, :] + np.arange(1, rounds + 1)[None, :, None] / sites.rate[:, None, :]
        passes = u >= recruitment.screen_failure
        flat_weeks = weeks.reshape(trials, -1)
        eligible = np.where(passes.reshape(trials, -1), flat_weeks, np.inf)
        kth = np.partition(eligible, count - 1, axis=1)[:, count - 1]
        if np.all(kth <= weeks[:, -1, :].min(axis=1)):
            break
        rounds *= 2
    # Time order, ties in site order: sort by (week, site).
    site = np.broadcast_to(np.arange(n_sites), weeks.shape).reshape(trials, -1)
    order = np.lexsort((site, flat_weeks), axis=1)
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return _first_passing(take(flat_weeks), take(site), take(passes.reshape(trials, -1)), n_sites, count)


def _first_passing(weeks: np.ndarray, site: np.ndarray, passes: np.ndarray, n_sites: int, count: int) -> Arrivals:
    """The first ``count`` screenings that pass, in time order, with each one's rank among its site's passes."""
    trials = weeks.shape[0]
    # The first `count` passing screenings of each row, in time order (every row has at least `count`).
    keep = passes & (np.cumsum(passes, axis=1) <= count)
    first = np.nonzero(keep)[1].reshape(trials, count)
    chosen_site = np.take_along_axis(site, first, axis=1)
    by_site = np.argsort(chosen_site, axis=1, kind="stable")
    cell = (np.arange(trials)[:, None] * n_sites + chosen_site).ravel()
    counts = np.bincount(cell, minlength=trials * n_sites).reshape(trials, n_sites)
    start = np.cumsum(counts, axis=1) - counts
    sorted_site = np.take_along_axis(chosen_site, by_site, axis=1)
    rank = np.empty_like(by_site)
    np.put_along_axis(rank, by_site, np.arange(count)[None, :] - np.take_along_axis(start, sorted_site, axis=1), 1)
    return Arrivals(
        week=np.take_along_axis(weeks, first, axis=1),
        site=chosen_site,
        rank=rank,
        screening_week=np.where(np.isfinite(weeks), weeks, np.inf),
    )
