"""Results of a run: the per-trial table, the operating characteristics and provenance; save and load."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from trialsim.performance import check_performance, performance_frame
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario

PROVENANCE_PACKAGES = ("trialsim", "numpy", "scipy", "pandas", "simpy", "pydantic", "pyarrow")


MISSING_TEXT = {
    "completers": "on observed completers only",
    "locf": "with the last observation carried forward",
    "bocf": "with the baseline observation carried forward",
    "observed": "on all observed visits (valid under MAR)",
}


def describe_analysis(plan: AnalysisPlan, measure: str) -> str:
    """One line saying what the analysis does, for outputs."""
    score = measure.removesuffix("_change").replace("_", " ")
    missing = MISSING_TEXT[plan.missing]
    if plan.model == "longitudinal":
        what = f"longitudinal (MMRM-like, {plan.covariance.replace('_', ' ')}) model of change in {score}"
    else:
        what = f"ANCOVA of change from baseline in {score} at the primary endpoint"
    engine = {
        "conjugate": "exact conjugate posterior",
        "nuts": "PyMC/nutpie NUTS",
        "frequentist": "frequentist",
        "laplace": "Laplace approximation, variance parameters integrated by importance sampling",
    }
    return f"{what} {missing} ({engine[plan.engine]})"


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers."""
    versions = {}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def content_hash(model: Scenario | AnalysisPlan) -> str:
    """Short SHA-256 of a validated model's canonical JSON (changes whenever any setting changes)."""
    return hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SimulationResults:
    """One row per simulated trial (``trials``) plus the summary (operating characteristics and provenance)."""

    trials: pd.DataFrame
    summary: dict[str, Any]

    @classmethod
    def build(
        cls, scenario: Scenario, plan: AnalysisPlan, trials: pd.DataFrame, seed: int, n_trials: int
    ) -> SimulationResults:
        from trialsim.world.arms import resolve_arms

        control = scenario.arms[scenario.control_index].name
        endpoint = scenario.primary_endpoint
        if plan.model == "responder":
            note = (
                f"beta-binomial comparison of responders (>= {endpoint.responder_threshold:.0%} reduction of "
                "PANSS - 30) at the primary endpoint on observed completers only; effects are risk differences"
            )
        else:
            note = describe_analysis(plan, endpoint.measure)
        arms = [
            {
                "name": arm.name,
                "control": arm.control,
                "intervention": spec.intervention,
                "versus": spec.versus,
                "effect_points": {
                    "total": arm.effect_total,
                    "positive": arm.effect_positive,
                    "negative": arm.effect_negative,
                },
                "design_prior_points": None if arm.prior_mean is None else {"mean": arm.prior_mean, "sd": arm.prior_sd},
                "adverse_event_incidence": arm.adverse_events,
                "ae_discontinuation": arm.ae_discontinuation,
                "sources": arm.sources,
            }
            for arm, spec in zip(resolve_arms(scenario), scenario.arms)
        ]
        summary = {
            "scenario": scenario.name,
            "analysis_plan": plan.name,
            "seed": seed,
            "trials": n_trials,
            "analysis": {
                "model": plan.model,
                "engine": plan.engine,
                "missing_data": plan.missing,
                "note": note,
                "decision": plan.decision.model_dump(),
                "ci_prob": plan.ci_prob,
            },
            "effect_sign": "positive = improvement (control change minus arm change, PANSS points)",
            "primary_endpoint": endpoint.model_dump(),
            "assurance": scenario.assurance,
            "arms": arms,
            "design_points": check_performance(trials, control),
            "provenance": {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": package_versions(),
                "scenario_hash": content_hash(scenario),
                "plan_hash": content_hash(plan),
            },
        }
        if "worker_pid" in trials:
            # Which process fitted which trial varies with the pool; keep only the compile count, not the table.
            per_worker = trials.groupby("worker_pid")["compiles_in_worker"].max()
            summary["nuts"] = {"worker_processes": int(per_worker.size), "compilations": int(per_worker.sum())}
            trials = trials.drop(columns=["worker_pid", "compiles_in_worker"])
        return cls(trials=trials, summary=summary)

    def performance(self) -> pd.DataFrame:
        """One row per design point and comparison."""
        return performance_frame(self.summary["design_points"])

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``summary.json`` and ``trials.parquet`` into ``out_dir`` (created if needed)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary_path, trials_path = out / "summary.json", out / "trials.parquet"
        summary_path.write_text(json.dumps(_json_safe(self.summary), indent=2) + "\n", encoding="utf-8")
        self.trials.to_parquet(trials_path, index=False)
        return summary_path, trials_path

    @classmethod
    def load(cls, out_dir: str | Path) -> SimulationResults:
        """Read results written by :meth:`save`."""
        out = Path(out_dir)
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        return cls(trials=pd.read_parquet(out / "trials.parquet"), summary=summary)


def _json_safe(value: Any) -> Any:
    """Standard JSON: NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
