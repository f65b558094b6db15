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
    return [c.removesuffix(".estimate") for c in table.columns if c.endswith(".estimate")]


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


def summarise_design_point(rows: pd.DataFrame, control: str) -> dict[str, Any]:
    """Operating characteristics of one design point (all its simulated trials)."""
    k = len(rows)
    duration = rows["duration_weeks"].to_numpy(dtype=float)
    return {
        "sample_size": int(rows["sample_size"].iloc[0]),
        "trials": k,
        "expected_n": float(rows["n_randomised"].mean()),
        "expected_completers": float(rows["n_completed"].mean()),
        "expected_screened": float(rows["n_screened"].mean()),
        "dropout_fraction": float(rows["dropout_fraction"].mean()),
        "recruitment_weeks": {
            "median": float(np.median(rows["recruitment_weeks"])),
            "p90": float(np.quantile(rows["recruitment_weeks"], 0.9)),
        },
        "duration_weeks": {"median": float(np.median(duration)), "p90": float(np.quantile(duration, 0.9))},
        "comparisons": [summarise_comparison(rows, arm, control) for arm in comparison_arms(rows)],
    }


def check_performance(table: pd.DataFrame, control: str) -> list[dict[str, Any]]:
    """Operating characteristics of every design point in a trials table, in design-point order."""
    return [summarise_design_point(rows, control) for _, rows in table.groupby("design_point", sort=True)]


def performance_frame(design_points: list[dict[str, Any]]) -> pd.DataFrame:
    """Flat table: one row per design point and comparison (for printing and comparing)."""
    records = []
    for point in design_points:
        for comparison in point["comparisons"]:
            records.append(
                {
                    "sample_size": point["sample_size"],
                    **{k: v for k, v in comparison.items()},
                    "expected_n": point["expected_n"],
                    "expected_completers": point["expected_completers"],
                    "dropout_fraction": point["dropout_fraction"],
                    "duration_median_weeks": point["duration_weeks"]["median"],
                    "duration_p90_weeks": point["duration_weeks"]["p90"],
                }
            )
    return pd.DataFrame(records)
