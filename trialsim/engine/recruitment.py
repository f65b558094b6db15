"""Recruitment on the simpy clock: sites open, patients are screened (Poisson–gamma) and randomised.

Site s opens at a time drawn uniformly in the activation window and then screens patients as a Poisson process
with rate λ_s ~ Gamma(shape = 1/cv², mean = rate_per_site_per_week) (Anisimov & Fedorov's accrual model); each
screened patient fails screening with probability f, so randomisations at a site form a thinned Poisson process.
Screening times are drawn vectorised per site (one RNG call per batch, not per patient); the recruitment process
then walks the simpy clock from one randomisation to the next — one event per randomised patient — and stops
the moment the target number has been randomised. Arms come from each site's permuted blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from trialsim.engine.randomisation import block_sequences
from trialsim.spec.scenario import Recruitment


@dataclass
class Enrolment:
    """Randomised patients in order of randomisation, the number screened and an optional event log.

    ``log`` holds (week, event, site, patient index or −1) tuples when requested. With treatment resources
    (``trialsim.engine.delivery``), ``start_delay`` is each patient's wait in weeks from randomisation to the
    start of their treatment course (0 without a course) and ``turned_away`` the patients not randomised because
    their site's slots were full (``on_shortage: cap_enrolment``).
    """

    site: np.ndarray
    arm: np.ndarray
    week: np.ndarray
    screened: int
    site_open_week: np.ndarray
    log: list[tuple[float, str, int, int]] | None = None
    start_delay: np.ndarray | None = None
    turned_away: int = 0

    @property
    def screen_failures(self) -> int:
        """Screened patients who failed screening (until recruitment stopped); turned-away patients passed it."""
        return self.screened - int(self.site.size) - self.turned_away


def site_rates(recruitment: Recruitment, rng: np.random.Generator) -> np.ndarray:
    """Per-site screening rate (patients per week), gamma-distributed between sites."""
    mean, cv = recruitment.rate_per_site_per_week, recruitment.rate_cv
    if cv < 1e-6:  # identical sites (a gamma with a vanishing CV is a point mass)
        return np.full(recruitment.sites, mean)
    shape = 1.0 / cv**2
    return rng.gamma(shape, mean / shape, size=recruitment.sites)


def activation_weeks(recruitment: Recruitment, rng: np.random.Generator) -> np.ndarray:
    """Week at which each site opens, uniform within the activation window."""
    start, end = recruitment.activation_weeks
    return start + (end - start) * rng.random(recruitment.sites)


def _screenings(
    recruitment: Recruitment, rates: np.ndarray, start: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Next ``size`` screening times per site after ``start`` (weeks) and whether each screened patient passes."""
    shape = (rates.size, size)
    gaps = np.ones(shape) if recruitment.fixed_interarrival else rng.standard_exponential(shape)
    times = start[:, None] + np.cumsum(gaps / rates[:, None], axis=1)
    passes = rng.random(shape) >= recruitment.screen_failure
    return times, passes


def randomisation_times(
    recruitment: Recruitment, rates: np.ndarray, opens: np.ndarray, target: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The first ``target`` randomisations over all sites.

    Returns (weeks, site, rank of the patient within its site, number screened until the last randomisation).
    Batches of screenings are added until every site's drawn horizon passes the target-th randomisation, so
    the merge over sites is exact.
    """
    batch = max(16, int(2.5 * target / (recruitment.sites * (1.0 - recruitment.screen_failure))) + 16)
    times, passes = _screenings(recruitment, rates, opens, batch, rng)
    while True:
        horizon = times[:, -1].min()
        if np.count_nonzero(passes & (times <= horizon)) >= target:
            break
        more_times, more_passes = _screenings(recruitment, rates, times[:, -1], batch, rng)
        times, passes = np.hstack([times, more_times]), np.hstack([passes, more_passes])
    randomised = np.where(passes, times, np.inf).ravel()
    # The target earliest randomisations, in time order; simultaneous ones in site order (flat index).
    order = np.argpartition(randomised, target - 1)[:target]
    order = order[np.lexsort((order, randomised[order]))]
    weeks = randomised[order]
    site = order // times.shape[1]
    rank = np.cumsum(passes, axis=1).ravel()[order] - 1
    screened = int(np.count_nonzero(times <= weeks[-1]))
    return weeks, site, rank, screened


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
    weeks, site, rank, screened = randomisation_times(recruitment, rates, opens, target, rng)
    counts = np.bincount(site, minlength=recruitment.sites)
    arm = block_sequences(ratio, recruitment.block_size or 2 * sum(ratio), counts, rng)[site, rank]
    events: list[tuple[float, str, int, int]] | None = [] if log else None

    def recruitment_process():
        timeout, now = env.timeout, 0.0
        for week in weeks.tolist():
            yield timeout(week - now)
            now = week

    def logged_recruitment_process():
        for patient, week in enumerate(weeks.tolist()):
            yield env.timeout(week - env.now)
            events.append((env.now, "randomised", int(site[patient]), patient))

    if events is not None:
        for s, week in enumerate(opens.tolist()):
            env.timeout(week).callbacks.append(lambda _, s=s: events.append((env.now, "site_open", s, -1)))
    env.run(env.process(logged_recruitment_process() if log else recruitment_process()))
    return Enrolment(site=site, arm=arm, week=weeks, screened=screened, site_open_week=opens, log=events)
