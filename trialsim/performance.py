"""Operating characteristics of a design from its simulated trials, each with a Monte Carlo standard error.

Proportions carry the binomial MCSE √(p(1 − p)/K); means the SE of the mean s/√K; RMSE the delta-method MCSE
of √MSE. Trials whose analysis was impossible (an arm with no completer) count as failures to succeed and are
excluded from estimate summaries; so are fits that failed their diagnostics (per-trial engines). Both are
counted beside the estimates.

Streaming: the trials of a design point arrive in blocks — at most :data:`BLOCK_TRIALS` rows of one design point
and effect mode, in trial order, the same blocks whether the rows come from memory or from a run directory's
parts, so the numbers are identical either way. Means and variances are merged block by block (Chan, Golub &
LeVeque), counts are integers, and exact quantiles (medians, 90th, 5th and 95th percentiles) keep one column of
floats per quantity and design point: memory grows with the trials of one design point only for those columns
(8 bytes per trial each), never with the whole table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

#: Rows per block of a design point and effect mode (also the row-group size of trials.parquet).
BLOCK_TRIALS = 16_384
#: Row order of a trials table: design point, effect mode ("assurance" before "point"), trial index.
ROW_ORDER = ["design_point", "effect_mode", "trial"]


def proportion_mcse(p: float, k: int) -> float:
    """Binomial Monte Carlo standard error of a proportion estimated from ``k`` trials."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / k) if k else float("nan")


def comparison_arms(table: pd.DataFrame) -> list[str]:
    """Active arms with a comparison in a trials table (columns ``{arm}.estimate``)."""
    return [c.removesuffix(".estimate") for c in table.columns if c.endswith(".estimate") and c.count(".") == 1]


class Moments:
    """Count, mean and sum of squared deviations of a stream of values, merged block by block."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        if not values.size:
            return
        n_block, mean_block = values.size, float(values.mean())
        m2_block = float(((values - mean_block) ** 2).sum())
        if self.n == 0:
            self.n, self.mean, self.m2 = n_block, mean_block, m2_block
            return
        n = self.n + n_block
        delta = mean_block - self.mean
        self.mean += delta * n_block / n
        self.m2 += m2_block + delta**2 * self.n * n_block / n
        self.n = n

    @property
    def value(self) -> float:
        return self.mean if self.n else float("nan")

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else float("nan")

    @property
    def se(self) -> float:
        return self.sd / math.sqrt(self.n) if self.n > 1 else float("nan")


class Column:
    """All values of one quantity at one design point, for exact quantiles (8 bytes per value)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        # A copy: a column of a block can be a view keeping the whole block's memory alive.
        self.parts.append(np.array(values, dtype=float))

    def values(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.empty(0)


class Distribution:
    """Moments and the column of one quantity: mean (with MCSE), SD and exact quantiles."""

    def __init__(self) -> None:
        self.moments, self.column = Moments(), Column()

    def add(self, values: np.ndarray) -> None:
        self.moments.add(values)
        self.column.add(values)

    def spread(self) -> dict[str, float]:
        """Mean, its MCSE, median and 90th percentile."""
        values = self.column.values()
        return {
            "mean": self.moments.value,
            "mean_mcse": self.moments.se,
            "median": float(np.median(values)),
            "p90": float(np.quantile(values, 0.9)),
        }

    def interval(self) -> dict[str, float]:
        """Mean, SD and the 5th and 95th percentiles."""
        values = self.column.values()
        if not values.size:
            return {"mean": float("nan"), "sd": float("nan"), "q05": float("nan"), "q95": float("nan")}
        return {
            "mean": self.moments.value,
            "sd": self.moments.sd if values.size > 1 else 0.0,
            "q05": float(np.quantile(values, 0.05)),
            "q95": float(np.quantile(values, 0.95)),
        }


def _trusted(rows: pd.DataFrame, arm: str) -> np.ndarray:
    """Trials whose analysis of ``arm`` can be summarised: valid, and (per-trial engines) passed its diagnostics."""
    used = rows["analysis_valid"].to_numpy(dtype=bool)
    if f"{arm}.diagnostics_ok" in rows:
        used = used & rows[f"{arm}.diagnostics_ok"].to_numpy(dtype=bool)
    return used


class ComparisonStats:
    """One active-vs-control comparison at one design point (effects at their point values)."""

    def __init__(self, arm: str, control: str) -> None:
        self.arm, self.control = arm, control
        self.k = self.successes = self.valid = self.covered = 0
        self.diagnosed = False
        self.truth, self.estimate, self.error, self.squared = Moments(), Moments(), Moments(), Moments()
        self.by_look: dict[int, tuple[list[int], Moments, Moments]] = {}

    def add(self, rows: pd.DataFrame) -> None:
        arm = self.arm
        valid = rows["analysis_valid"].to_numpy(dtype=bool)
        used = _trusted(rows, arm)
        truth = rows[f"{arm}.true_effect"].to_numpy(dtype=float)
        estimate = rows[f"{arm}.estimate"].to_numpy(dtype=float)
        error = estimate[used] - truth[used]
        self.diagnosed = f"{arm}.diagnostics_ok" in rows
        self.k += len(rows)
        self.successes += int(rows[f"{arm}.success"].to_numpy(dtype=bool).sum())
        self.valid += int(valid.sum())
        low, high = rows[f"{arm}.ci_low"].to_numpy()[used], rows[f"{arm}.ci_high"].to_numpy()[used]
        self.covered += int(((low <= truth[used]) & (truth[used] <= high)).sum())
        self.truth.add(truth)
        self.estimate.add(estimate[used])
        self.error.add(error)
        self.squared.add(error**2)
        if "stop_look" in rows:
            finite = used & np.isfinite(estimate)
            looks = rows["stop_look"].to_numpy()
            for look in np.unique(looks):
                at = looks == look
                count, estimates, errors = self.by_look.setdefault(int(look), ([0], Moments(), Moments()))
                count[0] += int(at.sum())
                estimates.add(estimate[at & finite])
                errors.add(estimate[at & finite] - truth[at & finite])

    def summary(self) -> dict[str, Any]:
        k, kv = self.k, self.estimate.n
        power = self.successes / k if k else float("nan")
        mse = self.squared.value
        rmse = math.sqrt(mse) if kv else float("nan")
        coverage = self.covered / kv if kv else float("nan")
        out = {
            "arm": self.arm,
            "control": self.control,
            "true_effect": self.truth.value,
            "power": power,
            "power_mcse": proportion_mcse(power, k),
            "mean_estimate": self.estimate.value,
            "bias": self.error.value,
            "bias_mcse": self.error.se,
            "rmse": rmse,
            "rmse_mcse": self.squared.se / (2 * rmse) if kv > 1 and rmse > 0 else float("nan"),
            "coverage": coverage,
            "coverage_mcse": proportion_mcse(coverage, kv),
            "analyses_impossible": k - self.valid,
        }
        if self.diagnosed:
            out["failed_fits"] = self.valid - kv
        if self.by_look:
            out["estimate_by_stopping_look"] = [
                {
                    "stop_look": look,
                    "trials": count[0],
                    "mean_estimate": estimates.value,
                    "bias": errors.value,
                    "bias_mcse": errors.se,
                }
                for look, (count, estimates, errors) in sorted(self.by_look.items())
            ]
        return out


class AssuranceStats:
    """One comparison with true effects drawn from the design prior: assurance and the effect distributions."""

    def __init__(self, arm: str) -> None:
        self.arm = arm
        self.k = self.successes = self.positive = self.success_positive = 0
        self.truth, self.estimate = Distribution(), Distribution()

    def add(self, rows: pd.DataFrame) -> None:
        arm = self.arm
        success = rows[f"{arm}.success"].to_numpy(dtype=bool)
        truth = rows[f"{arm}.true_effect"].to_numpy(dtype=float)
        estimate = rows[f"{arm}.estimate"].to_numpy(dtype=float)
        self.k += len(rows)
        self.successes += int(success.sum())
        self.positive += int((truth > 0).sum())
        self.success_positive += int((success & (truth > 0)).sum())
        self.truth.add(truth[np.isfinite(truth)])
        self.estimate.add(estimate[_trusted(rows, arm) & np.isfinite(estimate)])

    def summary(self) -> dict[str, Any]:
        assurance = self.successes / self.k
        return {
            "assurance": assurance,
            "assurance_mcse": proportion_mcse(assurance, self.k),
            "true_effect_distribution": self.truth.interval(),
            "estimate_distribution": self.estimate.interval(),
            "success_given_true_effect_positive": self.success_positive / self.positive
            if self.positive
            else float("nan"),
        }


class AdaptiveStats:
    """Interim looks of an adaptive design: per look the probability it happened and of stopping there for
    efficacy or futility (and cumulatively), N and weeks at each look; N and duration at stopping; allocation."""

    def __init__(self, arms: list[str]) -> None:
        self.arms = arms
        self.k = self.stopped = 0
        self.looks: list[dict[str, Any]] = []
        self.n_randomised, self.n_at_stop, self.duration = Distribution(), Distribution(), Distribution()
        self.randomised_per_arm = np.zeros(len(arms))

    def add(self, rows: pd.DataFrame) -> None:
        self.k += len(rows)
        stop_look = rows["stop_look"].to_numpy()
        reason = rows["stop_reason"].to_numpy()
        index = 1
        while f"look{index}.cutoff_week" in rows:
            if len(self.looks) < index:
                self.looks.append({"reached": 0, "efficacy": 0, "futility": 0, "week": Moments(),
                                   "n_randomised": Moments(), "n_completed": Moments()})
            look, tag = self.looks[index - 1], f"look{index}"
            reached = rows[f"{tag}.cutoff_week"].notna().to_numpy()
            look["reached"] += int(reached.sum())
            look["efficacy"] += int(((stop_look == index) & (reason == "efficacy")).sum())
            look["futility"] += int(((stop_look == index) & (reason == "futility")).sum())
            look["week"].add(rows[f"{tag}.cutoff_week"].to_numpy(dtype=float)[reached])
            look["n_randomised"].add(rows[f"{tag}.n_randomised"].to_numpy(dtype=float)[reached])
            look["n_completed"].add(rows[f"{tag}.n_completed"].to_numpy(dtype=float)[reached])
            index += 1
        stopped = stop_look > 0
        n_randomised = rows["n_randomised"].to_numpy(dtype=float)
        self.stopped += int(stopped.sum())
        self.n_randomised.add(n_randomised)
        self.n_at_stop.add(n_randomised[stopped])
        self.duration.add(rows["duration_weeks"].to_numpy(dtype=float))
        self.randomised_per_arm += rows[[f"{arm}.n_randomised" for arm in self.arms]].to_numpy(dtype=float).sum(axis=0)

    def summary(self) -> dict[str, Any]:
        k = self.k
        looks, cumulative = [], 0.0
        for index, look in enumerate(self.looks, start=1):
            efficacy, futility = look["efficacy"] / k, look["futility"] / k
            cumulative += efficacy + futility
            looks.append(
                {
                    "look": index,
                    "reached": look["reached"] / k,
                    "stop_efficacy": efficacy,
                    "stop_efficacy_mcse": proportion_mcse(efficacy, k),
                    "stop_futility": futility,
                    "stop_futility_mcse": proportion_mcse(futility, k),
                    "stopped_by_now": cumulative,
                    "stopped_by_now_mcse": proportion_mcse(cumulative, k),
                    "week": look["week"].value,
                    "n_randomised": look["n_randomised"].value,
                    "n_completed": look["n_completed"].value,
                }
            )
        share = self.randomised_per_arm / max(self.randomised_per_arm.sum(), 1.0)
        return {
            "looks": looks,
            "stopped_early": self.stopped / k,
            "stopped_early_mcse": proportion_mcse(self.stopped / k, k),
            "n_randomised": self.n_randomised.spread(),
            "n_at_stop": self.n_at_stop.spread() if self.stopped else None,
            "duration_weeks": self.duration.spread(),
            "allocation": {arm: float(value) for arm, value in zip(self.arms, share)},
        }


class DesignPointStats:
    """Operating characteristics of one design point, accumulated over blocks of its trials (both effect modes)."""

    MEANS = {
        "expected_n": "n_randomised",
        "expected_completers": "n_completed",
        "expected_screened": "n_screened",
        "expected_turned_away": "n_turned_away",
        "dropout_fraction": "dropout_fraction",
    }
    RESOURCE_METRICS = ("sessions", "unit_hours", "patients_waiting", "mean_wait_weeks", "max_wait_weeks")

    def __init__(self, control: str, arms: list[str] | None) -> None:
        self.control, self.arms = control, arms
        self.sample_size: int | None = None
        self.k = 0
        self.means = {name: Moments() for name in self.MEANS}
        self.recruitment, self.duration = Column(), Column()
        self.counts: dict[str, int] = {}
        self.comparisons: dict[str, ComparisonStats] = {}
        self.assurance: dict[str, AssuranceStats] = {}
        self.any_success = {"point": [0, 0], "assurance": [0, 0]}
        self.diagnostics: list[int] | None = None
        self.resources: dict[str, Moments] = {}
        self.monitoring: dict[str, Moments] = {}
        self.responder_rates: dict[str, tuple[Moments, float]] = {}
        self.adaptive: AdaptiveStats | None = None

    def add(self, rows: pd.DataFrame) -> None:
        """Add a block of trials of this design point (one effect mode)."""
        if not len(rows):
            return
        if self.arms is None:
            self.arms = [c.removesuffix(".n_randomised") for c in rows.columns
                         if c.endswith(".n_randomised") and c.count(".") == 1]
        mode = rows["effect_mode"].iloc[0] if "effect_mode" in rows else "point"
        actives = comparison_arms(rows)
        if len(actives) > 1:
            tally = self.any_success[mode]
            tally[0] += len(rows)
            tally[1] += int(rows[[f"{arm}.success" for arm in actives]].to_numpy(dtype=bool).any(axis=1).sum())
        if mode == "assurance":
            for arm in actives:
                self.assurance.setdefault(arm, AssuranceStats(arm)).add(rows)
            return
        self.sample_size = int(rows["sample_size"].iloc[0])
        self.k += len(rows)
        for name, column in self.MEANS.items():
            self.means[name].add(rows[column].to_numpy(dtype=float) if column in rows else np.zeros(len(rows)))
        self.recruitment.add(rows["recruitment_weeks"].to_numpy(dtype=float))
        self.duration.add(rows["duration_weeks"].to_numpy(dtype=float))
        for arm in self.arms:
            for column in [f"{arm}.n_randomised"] + [c for c in rows.columns
                                                     if c.startswith((f"{arm}.dropout_", f"{arm}.ae_"))]:
                self.counts[column] = self.counts.get(column, 0) + int(rows[column].sum())
            if f"{arm}.monitoring_visits" in rows:
                self.monitoring.setdefault(arm, Moments()).add(rows[f"{arm}.monitoring_visits"].to_numpy(dtype=float))
            if f"{arm}.responders" in rows:
                # Each trial's responder rate among the arm's completers (trials without a completer left out).
                completers = rows[f"{arm}.n_completed"].to_numpy(dtype=float)
                rates = rows[f"{arm}.responders"].to_numpy(dtype=float)[completers > 0] / completers[completers > 0]
                truth = float(rows[f"{arm}.true_responder_rate"].iloc[0])
                self.responder_rates.setdefault(arm, (Moments(), truth))[0].add(rates)
        for arm in actives:
            self.comparisons.setdefault(arm, ComparisonStats(arm, self.control)).add(rows)
        diagnostics = [c for c in rows.columns if c.endswith(".diagnostics_ok")]
        if diagnostics:
            self.diagnostics = self.diagnostics or [0, 0]
            self.diagnostics[0] += int((~rows[diagnostics].to_numpy(dtype=bool).all(axis=1)).sum())
            raised = [c.replace("diagnostics_ok", "fit_failed") for c in diagnostics]
            self.diagnostics[1] += int(rows[raised].to_numpy(dtype=bool).any(axis=1).sum())
        for column in rows.columns:
            if column.endswith(".sessions"):
                name = column.removesuffix(".sessions")
                for metric in self.RESOURCE_METRICS:
                    if f"{name}.{metric}" in rows:
                        self.resources.setdefault(f"{name}.{metric}", Moments()).add(
                            rows[f"{name}.{metric}"].to_numpy(dtype=float)
                        )
        if "stop_look" in rows:
            self.adaptive = self.adaptive or AdaptiveStats(self.arms)
            self.adaptive.add(rows)

    def _per_arm(self, kind: str) -> dict[str, dict[str, float]]:
        """Mean count per trial divided by patients randomised in the arm, for columns ``{arm}.{kind}_{name}``."""
        out: dict[str, dict[str, float]] = {}
        for arm in self.arms or []:
            prefix = f"{arm}.{kind}_"
            randomised = self.counts[f"{arm}.n_randomised"]
            out[arm] = {
                column.removeprefix(prefix): total / randomised if randomised else float("nan")
                for column, total in self.counts.items()
                if column.startswith(prefix)
            }
        return out

    def summary(self) -> dict[str, Any]:
        comparisons = []
        for arm, stats in self.comparisons.items():
            comparison = stats.summary()
            looks = comparison.pop("estimate_by_stopping_look", None)
            if arm in self.assurance:
                comparison.update(self.assurance[arm].summary())
            if looks is not None:
                comparison["estimate_by_stopping_look"] = looks
            comparisons.append(comparison)
        recruitment, duration = self.recruitment.values(), self.duration.values()
        summary: dict[str, Any] = {
            "sample_size": self.sample_size,
            "trials": self.k,
            **{name: moments.value for name, moments in self.means.items()},
            "recruitment_weeks": {"median": float(np.median(recruitment)), "p90": float(np.quantile(recruitment, 0.9))},
            "duration_weeks": {"median": float(np.median(duration)), "p90": float(np.quantile(duration, 0.9))},
            "dropout_by_reason": self._per_arm("dropout"),
            "adverse_events": _not_recorded_as_none(self._per_arm("ae")),
            "comparisons": comparisons,
        }
        for mode, key in (("point", "any_success"), ("assurance", "any_success_assurance")):
            trials, successes = self.any_success[mode]
            if trials:
                summary[key] = successes / trials
                summary[f"{key}_mcse"] = proportion_mcse(successes / trials, trials)
        if self.diagnostics is not None:
            summary["failed_diagnostics"] = self.diagnostics[0] / self.k
            summary["failed_diagnostics_count"] = self.diagnostics[0]
            summary["fits_failed"] = self.diagnostics[1]
        resources: dict[str, dict[str, float]] = {}
        for key, moments in self.resources.items():
            name, metric = key.rsplit(".", 1)
            resources.setdefault(name, {})[metric] = moments.value
        if resources:
            summary["resources"] = resources
        if self.adaptive is not None:
            summary["adaptive"] = self.adaptive.summary()
        if self.monitoring:
            summary["monitoring_visits"] = {arm: moments.value for arm, moments in self.monitoring.items()}
        if self.responder_rates:
            # Mean over trials of each trial's rate with its MCSE s/√K, and the world model's complete-data truth.
            summary["responder_rates"] = {
                arm: {"rate": moments.value, "rate_mcse": moments.se, "true_rate": truth}
                for arm, (moments, truth) in self.responder_rates.items()
            }
        return summary


def _not_recorded_as_none(per_arm: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Every adverse event simulated for some arm, per arm; None (JSON null, "not recorded") where the arm's
    evidence records no incidence — unknown, not 0."""
    names = sorted({name for events in per_arm.values() for name in events})
    return {arm: {name: events.get(name) for name in names} for arm, events in per_arm.items()}


def summarise_blocks(
    blocks: Iterable[pd.DataFrame], control: str, arms: list[str] | None = None
) -> list[dict[str, Any]]:
    """Operating characteristics of every design point from blocks of trials in :data:`ROW_ORDER` (one design
    point after another; see :func:`table_blocks`). Only one design point is held at a time."""
    points: list[dict[str, Any]] = []
    current: DesignPointStats | None = None
    point = None
    for block in blocks:
        block_point = int(block["design_point"].iloc[0])
        if block_point != point:
            if current is not None:
                points.append(current.summary())
            current, point = DesignPointStats(control, arms), block_point
        current.add(block)
    if current is not None:
        points.append(current.summary())
    return points


def table_blocks(table: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """Blocks of an in-memory trials table: rows of one design point and effect mode, at most
    :data:`BLOCK_TRIALS` each, in :data:`ROW_ORDER`."""
    if "effect_mode" not in table:
        table = table.assign(effect_mode="point")
    table = table.sort_values(ROW_ORDER, kind="stable")
    for _, rows in table.groupby(["design_point", "effect_mode"], sort=True):
        for start in range(0, len(rows), BLOCK_TRIALS):
            yield rows.iloc[start : start + BLOCK_TRIALS]


def check_performance(table: pd.DataFrame, control: str, arms: list[str] | None = None) -> list[dict[str, Any]]:
    """Operating characteristics of every design point in a trials table, in design-point order (``arms``: the
    scenario's arm names; default: read from the ``{arm}.n_randomised`` columns)."""
    return summarise_blocks(table_blocks(table), control, arms)


def performance_frame(design_points: list[dict[str, Any]]) -> pd.DataFrame:
    """Flat table: one row per design point and comparison (for printing and comparing)."""
    records = []
    for point in design_points:
        for comparison in point["comparisons"]:
            records.append(
                {
                    "sample_size": point["sample_size"],
                    **_flatten(comparison),
                    "expected_n": point["expected_n"],
                    "expected_completers": point["expected_completers"],
                    "dropout_fraction": point["dropout_fraction"],
                    "duration_median_weeks": point["duration_weeks"]["median"],
                    "duration_p90_weeks": point["duration_weeks"]["p90"],
                }
            )
    return pd.DataFrame(records)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One level of nested dicts becomes ``outer.inner`` keys."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat
