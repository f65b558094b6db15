"""Clozapine initiation: blood-monitoring schedules and the timing of clozapine-specific adverse events.

A schedule is a list of phases (every_weeks, until_week); tests fall at start + k·every_weeks (k ≥ 1) within
each phase, weeks since the start of clozapine. Presets:

- ``non_us_label``: weekly for the first 18 weeks, then at least every 4 weeks (other-country clozapine label,
  e.g. MIMS Malaysia);
- ``us_label``: weekly for 6 months, every 2 weeks for the next 6 months, then monthly (Clozaril US label, as
  under the REMS; the REMS ended on 24 February 2025 while the label keeps advising ANC monitoring).

Onsets (weeks since the start of clozapine): neutropenia (any and severe, nested: the same uniform decides both,
severe ⊂ any) ~ Gamma(2, peak), whose mode is the peak (one month of exposure, Myles et al., Acta Psychiatr Scand
2018) and whose tail after a year is negligible (Gamma(2) shape: ASSUMPTION); myocarditis uniform on days 14–22
(Ronaldson et al., J Clin Psychiatry 2010). A severe neutropenia is found at the first scheduled test at or after
its onset and stops clozapine; myocarditis stops it at onset (it is symptomatic).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaincinv

from trialsim.spec.scenario import Monitoring, MonitoringPhase

#: Weeks per month in the US label's "6 months" and "12 months" (26 and 52 weeks; monthly = every 4 weeks).
PRESETS: dict[str, list[MonitoringPhase]] = {
    "non_us_label": [MonitoringPhase(every_weeks=1, until_week=18), MonitoringPhase(every_weeks=4)],
    "us_label": [
        MonitoringPhase(every_weeks=1, until_week=26),
        MonitoringPhase(every_weeks=2, until_week=52),
        MonitoringPhase(every_weeks=4),
    ],
}
#: Adverse events timed by this module in monitored arms, and the dropout reason of those that stop clozapine.
TIMED_EVENTS = ("neutropenia", "severe_neutropenia", "myocarditis")
STOPS = {"severe_neutropenia": "neutropenia", "myocarditis": "myocarditis"}
#: Gamma shape of the neutropenia onset (ASSUMPTION; mode = (shape − 1)·scale = the peak week).
NEUTROPENIA_ONSET_SHAPE = 2.0


def phases(monitoring: Monitoring) -> list[tuple[float, float, float]]:
    """(start, end, every) weeks of each phase of the arm's schedule."""
    schedule = PRESETS[monitoring.schedule] if isinstance(monitoring.schedule, str) else monitoring.schedule
    out, start = [], 0.0
    for phase in schedule:
        end = np.inf if phase.until_week is None else phase.until_week
        out.append((start, end, phase.every_weeks))
        start = end
    return out


def tests_by(monitoring: Monitoring, weeks: np.ndarray) -> np.ndarray:
    """Number of scheduled blood tests in (0, weeks]."""
    weeks = np.asarray(weeks, dtype=float)
    count = np.zeros_like(weeks)
    for start, end, every in phases(monitoring):
        count += np.floor(np.maximum(np.minimum(weeks, end) - start, 0.0) / every)
    return count


def next_test(monitoring: Monitoring, weeks: np.ndarray) -> np.ndarray:
    """The first scheduled test at or after ``weeks``."""
    weeks = np.asarray(weeks, dtype=float)
    found = np.full(weeks.shape, np.inf)
    for start, end, every in reversed(phases(monitoring)):
        k = np.maximum(np.ceil((weeks - start) / every), 1.0)
        candidate = start + k * every
        found = np.where(candidate <= end, np.minimum(found, candidate), found)
    return found


def neutropenia_onset(monitoring: Monitoring, uniforms: np.ndarray) -> np.ndarray:
    """Weeks from the start of clozapine to a neutropenia, Gamma(2, peak/(2 − 1)) quantiles of ``uniforms``."""
    scale = monitoring.neutropenia_peak_weeks / (NEUTROPENIA_ONSET_SHAPE - 1.0)
    return scale * gammaincinv(NEUTROPENIA_ONSET_SHAPE, uniforms)


def myocarditis_onset(monitoring: Monitoring, uniforms: np.ndarray) -> np.ndarray:
    """Weeks from the start of clozapine to myocarditis, uniform on the onset window (days)."""
    first, last = monitoring.myocarditis_onset_days
    return (first + (last - first) * uniforms) / 7.0
