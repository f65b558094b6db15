"""The seam between the engine and the analyses: one simulated trial's observed data.

The engine produces a :class:`TrialData`; every analysis (conjugate, PyMC, frequentist) reads only this,
never simpy objects. Sign convention: PANSS is a symptom score, so a *reduction* is improvement; a
treatment effect is reported as (mean change in control) − (mean change in arm), positive = improvement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TrialData:
    """Observed data of one simulated trial (one row per randomised patient).

    Attributes:
        arm_names: names of the arms, in scenario order.
        control: index of the control arm in ``arm_names``.
        visit_weeks: nominal visit weeks, first one is baseline (0).
        endpoint_visit: index into ``visit_weeks`` of the primary endpoint.
        site: site index per patient (0-based).
        arm: arm index per patient.
        randomised_week: calendar time of randomisation (weeks since the first site could open).
        baseline: baseline PANSS total (points).
        panss: observed PANSS total per visit, shape (patients, visits); NaN once the patient dropped out.
        visit_time: calendar time of each visit (weeks since study start), NaN when not attended.
        dropout_week: weeks from randomisation to dropout; ``inf`` when the patient completed.
        dropout_reason: '' for completers, otherwise the reason ('withdrawal', ...).
        covariates: further per-patient columns (age, female, smoker, panss_positive, ...).
        end_week: calendar time at which the last patient finished their last visit.
    """

    arm_names: tuple[str, ...]
    control: int
    visit_weeks: np.ndarray
    endpoint_visit: int
    site: np.ndarray
    arm: np.ndarray
    randomised_week: np.ndarray
    baseline: np.ndarray
    panss: np.ndarray
    visit_time: np.ndarray
    dropout_week: np.ndarray
    dropout_reason: np.ndarray
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    end_week: float = float("nan")
    panss_positive: np.ndarray | None = None
    panss_negative: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of randomised patients."""
        return int(self.arm.shape[0])

    @property
    def endpoint_observed(self) -> np.ndarray:
        """Boolean mask of patients whose primary-endpoint visit was observed (completers)."""
        return ~np.isnan(self.panss[:, self.endpoint_visit])

    @property
    def change_at_endpoint(self) -> np.ndarray:
        """Change from baseline at the primary endpoint (PANSS points, negative = improvement); NaN if missing."""
        return self.panss[:, self.endpoint_visit] - self.baseline

    def to_frame(self) -> pd.DataFrame:
        """Tidy per-patient table: one row per patient, visit columns ``panss_w{week}`` and ``time_w{week}``."""
        columns: dict[str, np.ndarray] = {
            "patient": np.arange(self.n),
            "site": self.site,
            "arm": np.asarray(self.arm_names, dtype=object)[self.arm],
            "randomised_week": self.randomised_week,
            "baseline_panss": self.baseline,
        }
        columns.update(self.covariates)
        for j, week in enumerate(self.visit_weeks):
            label = f"{week:g}"
            columns[f"time_w{label}"] = self.visit_time[:, j]
            columns[f"panss_w{label}"] = self.panss[:, j]
            for name, values in (("positive", self.panss_positive), ("negative", self.panss_negative)):
                if values is not None:
                    columns[f"{name}_w{label}"] = values[:, j]
        columns["dropout_week"] = self.dropout_week
        columns["dropout_reason"] = self.dropout_reason
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class TrialBatch:
    """K simulated trials of one design point, N randomised patients each, stacked for vectorised analysis.

    Per-patient arrays have shape (K, N); ``panss`` and ``visit_time`` (K, N, visits). Fields mean the same as
    in :class:`TrialData`; ``screened`` is the number of patients screened per trial.
    """

    arm_names: tuple[str, ...]
    control: int
    visit_weeks: np.ndarray
    endpoint_visit: int
    site: np.ndarray
    arm: np.ndarray
    randomised_week: np.ndarray
    baseline: np.ndarray
    panss: np.ndarray
    visit_time: np.ndarray
    dropout_week: np.ndarray
    dropout_reason: str
    covariates: dict[str, np.ndarray]
    end_week: np.ndarray
    screened: np.ndarray
    panss_positive: np.ndarray | None = None
    panss_negative: np.ndarray | None = None
    dropout_code: np.ndarray | None = None
    dropout_reasons: tuple[str, ...] = ("", "withdrawal")
    true_effect: np.ndarray | None = None  # (K, arms, 3): total, positive, negative (points, marginal)
    start_delay: np.ndarray | None = None
    adverse_events: dict[str, np.ndarray] = field(default_factory=dict)
    on_study_weeks: np.ndarray | None = None
    leaves_week: np.ndarray | None = None  # (K, N) calendar week each patient leaves the study
    turned_away: np.ndarray | None = None  # (K,) patients turned away by full sites
    randomised: np.ndarray | None = None  # (K, N) False for rows of patients never randomised (a stopped trial)
    site_open_week: np.ndarray | None = None  # (K, sites)

    @property
    def trials(self) -> int:
        """Number of trials K."""
        return int(self.arm.shape[0])

    @property
    def endpoint_observed(self) -> np.ndarray:
        """(K, N) mask of completers (primary-endpoint visit observed)."""
        return ~np.isnan(self.panss[..., self.endpoint_visit])

    @property
    def change_at_endpoint(self) -> np.ndarray:
        """(K, N) change from baseline at the primary endpoint (points); NaN when missing."""
        return self.panss[..., self.endpoint_visit] - self.baseline

    def reasons(self) -> np.ndarray:
        """(K, N) dropout reason per patient ('' for completers)."""
        if self.dropout_code is None:
            return np.where(np.isfinite(self.dropout_week), self.dropout_reason, "")
        return np.asarray(self.dropout_reasons, dtype=object)[self.dropout_code]

    def score(self, measure: str) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, observed values per visit) of ``total``, ``positive`` or ``negative``."""
        values = {"total": self.panss, "positive": self.panss_positive, "negative": self.panss_negative}[measure]
        if values is None:
            raise ValueError(f"this batch has no {measure} subscale")
        return values[..., 0], values

    def in_arm(self, arm: int) -> np.ndarray:
        """(K, N) mask of randomised patients of ``arm``."""
        mine = self.arm == arm
        return mine if self.randomised is None else mine & self.randomised

    def trial(self, k: int) -> TrialData:
        """Trial ``k`` as a :class:`TrialData`: its randomised patients only."""
        rows = slice(None) if self.randomised is None else self.randomised[k]
        pick = lambda values: None if values is None else values[k][rows]  # noqa: E731
        covariates = {name: pick(values) for name, values in self.covariates.items()}
        for name, values in self.adverse_events.items():
            covariates[f"ae_{name}"] = pick(values)
        if self.start_delay is not None:
            covariates["treatment_start_delay_weeks"] = pick(self.start_delay)
        return TrialData(
            arm_names=self.arm_names,
            control=self.control,
            visit_weeks=self.visit_weeks,
            endpoint_visit=self.endpoint_visit,
            site=pick(self.site),
            arm=pick(self.arm),
            randomised_week=pick(self.randomised_week),
            baseline=pick(self.baseline),
            panss=pick(self.panss),
            visit_time=pick(self.visit_time),
            dropout_week=pick(self.dropout_week),
            dropout_reason=self.reasons()[k][rows],
            covariates=covariates,
            end_week=float(self.end_week[k]),
            panss_positive=pick(self.panss_positive),
            panss_negative=pick(self.panss_negative),
        )
