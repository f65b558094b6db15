"""Operating characteristics of a design from its simulated trials, each with a Monte Carlo standard error.

Proportions carry the binomial MCSE √(p(1 − p)/K); means the SE of the mean s/√K; RMSE the delta-method MCSE
of √MSE. Trials whose analysis was impossible (an arm with no completer) count as failures to succeed and are
excluded from estimate summaries; their number is reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def proportion_mcse(p: float, k: int) -> float:
    """Binomial Monte Carlo standard error of a proportion estimated from ``k`` trials."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / k) if k else float("nan")


def comparison_arms(table: pd.DataFrame) -> list[str]:
    """Active arms with a comparison in a trials table (columns ``{arm}.estimate``)."""
    return [c.removesuffix(".estimate") for c in table.columns if c.endswith(".estimate") and c.count(".") == 1]


def summarise_comparison(rows: pd.DataFrame, arm: str, control: str) -> dict[str, Any]:
    """Power, estimate quality and coverage of one active-vs-control comparison at one design point."""
    k = len(rows)
    success = rows[f"{arm}.success"].to_numpy(dtype=bool)
    valid = rows["analysis_valid"].to_numpy(dtype=bool)
    truth = rows[f"{arm}.true_effect"].to_numpy(dtype=float)
    estimate = rows[f"{arm}.estimate"].to_numpy(dtype=float)[valid]
    error = estimate - truth[valid]
    covered = (rows[f"{arm}.ci_low"].to_numpy()[valid] <= truth[valid]) & (
        truth[valid] <= rows[f"{arm}.ci_high"].to_numpy()[valid]
    )
    kv = int(valid.sum())
    power = float(success.mean())
    mse = float(np.mean(error**2)) if kv else float("nan")
    rmse = math.sqrt(mse) if kv else float("nan")
    mse_se = float(np.std(error**2, ddof=1) / math.sqrt(kv)) if kv > 1 else float("nan")
    coverage = float(covered.mean()) if kv else float("nan")
    return {
        "arm": arm,
        "control": control,
        "true_effect": float(np.mean(truth)),
        "power": power,
        "power_mcse": proportion_mcse(power, k),
        "mean_estimate": float(np.mean(estimate)) if kv else float("nan"),
        "bias": float(np.mean(error)) if kv else float("nan"),
        "bias_mcse": float(np.std(error, ddof=1) / math.sqrt(kv)) if kv > 1 else float("nan"),
        "rmse": rmse,
        "rmse_mcse": mse_se / (2 * rmse) if kv > 1 and rmse > 0 else float("nan"),
        "coverage": coverage,
        "coverage_mcse": proportion_mcse(coverage, kv),
        "analyses_impossible": k - kv,
    }


def summarise_assurance(rows: pd.DataFrame, arm: str) -> dict[str, Any]:
    """Assurance (success averaged over the design prior) and the distribution of true vs estimated effects."""
    success = rows[f"{arm}.success"].to_numpy(dtype=bool)
    truth = rows[f"{arm}.true_effect"].to_numpy(dtype=float)
    estimate = rows[f"{arm}.estimate"].to_numpy(dtype=float)
    assurance = float(success.mean())

    def spread(values: np.ndarray) -> dict[str, float]:
        values = values[np.isfinite(values)]
        if not values.size:
            return {"mean": float("nan"), "sd": float("nan"), "q05": float("nan"), "q95": float("nan")}
        return {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "q05": float(np.quantile(values, 0.05)),
            "q95": float(np.quantile(values, 0.95)),
        }

    return {
        "assurance": assurance,
        "assurance_mcse": proportion_mcse(assurance, len(rows)),
        "true_effect_distribution": spread(truth),
        "estimate_distribution": spread(estimate),
        "success_given_true_effect_positive": float(success[truth > 0].mean()) if (truth > 0).any() else float("nan"),
    }


def _per_arm_counts(rows: pd.DataFrame, arms: list[str], kind: str) -> dict[str, dict[str, float]]:
    """Mean count per trial divided by patients randomised in the arm, for columns ``{arm}.{kind}_{name}``."""
    out: dict[str, dict[str, float]] = {}
    for arm in arms:
        prefix = f"{arm}.{kind}_"
        randomised = rows[f"{arm}.n_randomised"].sum()
        out[arm] = {
            column.removeprefix(prefix): float(rows[column].sum() / randomised) if randomised else float("nan")
            for column in rows.columns
            if column.startswith(prefix)
        }
    return out


def _not_recorded_as_none(per_arm: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Every adverse event simulated for some arm, per arm; None (JSON null, "not recorded") where the arm's
    evidence records no incidence — unknown, not 0."""
    names = sorted({name for events in per_arm.values() for name in events})
    return {arm: {name: events.get(name) for name in names} for arm, events in per_arm.items()}


def summarise_design_point(rows: pd.DataFrame, control: str, arms: list[str] | None = None) -> dict[str, Any]:
    """Operating characteristics of one design point (its point-value trials, plus assurance trials if any)."""
    point = rows[rows["effect_mode"] == "point"] if "effect_mode" in rows else rows
    prior = rows[rows["effect_mode"] == "assurance"] if "effect_mode" in rows else rows.iloc[:0]
    arms = arms or [
        c.removesuffix(".n_randomised") for c in rows.columns if c.endswith(".n_randomised") and c.count(".") == 1
    ]
    k = len(point)
    duration = point["duration_weeks"].to_numpy(dtype=float)
    comparisons = []
    for arm in comparison_arms(point):
        comparison = summarise_comparison(point, arm, control)
        if len(prior):
            comparison.update(summarise_assurance(prior, arm))
        comparisons.append(comparison)
    if "stop_look" in point:
        for comparison in comparisons:
            comparison["estimate_by_stopping_look"] = _estimate_by_stopping_look(point, comparison["arm"])
    summary: dict[str, Any] = {
        "sample_size": int(point["sample_size"].iloc[0]),
        "trials": k,
        "expected_n": float(point["n_randomised"].mean()),
        "expected_completers": float(point["n_completed"].mean()),
        "expected_screened": float(point["n_screened"].mean()),
        "expected_turned_away": float(point["n_turned_away"].mean()) if "n_turned_away" in point else 0.0,
        "dropout_fraction": float(point["dropout_fraction"].mean()),
        "recruitment_weeks": {
            "median": float(np.median(point["recruitment_weeks"])),
            "p90": float(np.quantile(point["recruitment_weeks"], 0.9)),
        },
        "duration_weeks": {"median": float(np.median(duration)), "p90": float(np.quantile(duration, 0.9))},
        "dropout_by_reason": _per_arm_counts(point, arms, "dropout"),
        "adverse_events": _not_recorded_as_none(_per_arm_counts(point, arms, "ae")),
        "comparisons": comparisons,
    }
    diagnostics = [c for c in point.columns if c.endswith(".diagnostics_ok")]
    if diagnostics:
        failed = ~point[diagnostics].all(axis=1)
        summary["failed_diagnostics"] = float(failed.mean())
        summary["failed_diagnostics_count"] = int(failed.sum())
        summary["fits_failed"] = int(
            point[[c.replace("diagnostics_ok", "fit_failed") for c in diagnostics]].any(axis=1).sum()
        )
    resources = {}
    for column in point.columns:
        if column.endswith(".sessions"):
            name = column.removesuffix(".sessions")
            resources[name] = {
                metric: float(point[f"{name}.{metric}"].mean())
                for metric in ("sessions", "unit_hours", "patients_waiting", "mean_wait_weeks", "max_wait_weeks")
                if f"{name}.{metric}" in point
            }
    if resources:
        summary["resources"] = resources
    if "stop_look" in point:
        summary["adaptive"] = summarise_adaptive(point, arms)
    rates = {arm: _responder_rate(point, arm) for arm in arms if f"{arm}.responders" in point}
    if rates:
        summary["responder_rates"] = rates
    monitoring = {
        arm: float(point[f"{arm}.monitoring_visits"].mean()) for arm in arms if f"{arm}.monitoring_visits" in point
    }
    if monitoring:
        summary["monitoring_visits"] = monitoring
    return summary


def _responder_rate(point: pd.DataFrame, arm: str) -> dict[str, float]:
    """One arm's responder rate among completers: the mean over trials of each trial's rate (trials without a
    completer in the arm left out) with its MCSE s/√K, and the complete-data truth of the world model."""
    completers = point[f"{arm}.n_completed"].to_numpy(dtype=float)
    rates = point[f"{arm}.responders"].to_numpy(dtype=float)[completers > 0] / completers[completers > 0]
    return {
        "rate": float(rates.mean()) if rates.size else float("nan"),
        "rate_mcse": float(rates.std(ddof=1) / math.sqrt(rates.size)) if rates.size > 1 else float("nan"),
        "true_rate": float(point[f"{arm}.true_responder_rate"].iloc[0]),
    }


def _spread(values: np.ndarray) -> dict[str, float]:
    """Mean, median and 90th percentile (with the mean's MCSE)."""
    values = np.asarray(values, dtype=float)
    return {
        "mean": float(values.mean()),
        "mean_mcse": float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan"),
        "median": float(np.median(values)),
        "p90": float(np.quantile(values, 0.9)),
    }


def summarise_adaptive(point: pd.DataFrame, arms: list[str]) -> dict[str, Any]:
    """Interim looks of an adaptive design: per look the probability it happened and of stopping there for
    efficacy or futility (and cumulatively), with MCSE; N and weeks at each look; the distribution of N and of
    duration; the allocation achieved per arm."""
    k = len(point)
    looks = []
    cumulative = 0.0
    index = 1
    while f"look{index}.cutoff_week" in point:
        tag = f"look{index}"
        reached = point[f"{tag}.cutoff_week"].notna().to_numpy()
        stop = point["stop_look"].to_numpy() == index
        efficacy = float((stop & (point["stop_reason"] == "efficacy")).mean())
        futility = float((stop & (point["stop_reason"] == "futility")).mean())
        cumulative += efficacy + futility
        at = point[reached]
        looks.append(
            {
                "look": index,
                "reached": float(reached.mean()),
                "stop_efficacy": efficacy,
                "stop_efficacy_mcse": proportion_mcse(efficacy, k),
                "stop_futility": futility,
                "stop_futility_mcse": proportion_mcse(futility, k),
                "stopped_by_now": cumulative,
                "stopped_by_now_mcse": proportion_mcse(cumulative, k),
                "week": float(at[f"{tag}.cutoff_week"].mean()) if len(at) else float("nan"),
                "n_randomised": float(at[f"{tag}.n_randomised"].mean()) if len(at) else float("nan"),
                "n_completed": float(at[f"{tag}.n_completed"].mean()) if len(at) else float("nan"),
            }
        )
        index += 1
    stopped = point["stop_look"].to_numpy() > 0
    randomised = point[[f"{arm}.n_randomised" for arm in arms]].to_numpy(dtype=float)
    share = randomised.sum(axis=0) / max(randomised.sum(), 1.0)
    return {
        "looks": looks,
        "stopped_early": float(stopped.mean()),
        "stopped_early_mcse": proportion_mcse(float(stopped.mean()), k),
        "n_randomised": _spread(point["n_randomised"]),
        "n_at_stop": _spread(point.loc[stopped, "n_randomised"]) if stopped.any() else None,
        "duration_weeks": _spread(point["duration_weeks"]),
        "allocation": {arm: float(value) for arm, value in zip(arms, share)},
    }


def _estimate_by_stopping_look(point: pd.DataFrame, arm: str) -> list[dict[str, Any]]:
    """Mean estimate and bias (with MCSE) of the deciding analysis, by the look at which the trial stopped (0 = it
    ran to the final analysis): conditional on stopping early for efficacy an estimate is biased away from 0."""
    out = []
    for look, rows in point.groupby("stop_look", sort=True):
        error = (rows[f"{arm}.estimate"] - rows[f"{arm}.true_effect"]).to_numpy(dtype=float)
        error = error[np.isfinite(error)]
        out.append(
            {
                "stop_look": int(look),
                "trials": int(len(rows)),
                "mean_estimate": float(rows[f"{arm}.estimate"].mean()),
                "bias": float(error.mean()) if error.size else float("nan"),
                "bias_mcse": float(error.std(ddof=1) / math.sqrt(error.size)) if error.size > 1 else float("nan"),
            }
        )
    return out


def check_performance(table: pd.DataFrame, control: str, arms: list[str] | None = None) -> list[dict[str, Any]]:
    """Operating characteristics of every design point in a trials table, in design-point order (``arms``: the
    scenario's arm names; default: read from the ``{arm}.n_randomised`` columns)."""
    return [summarise_design_point(rows, control, arms) for _, rows in table.groupby("design_point", sort=True)]


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
