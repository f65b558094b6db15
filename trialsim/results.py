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
from trialsim.spec.loading import validate_model
from trialsim.spec.plan import ENGINE_DESCRIPTIONS, AnalysisPlan
from trialsim.spec.scenario import Scenario

#: File of a run directory holding the scenario and plan that produced it (see :func:`run_manifest`).
MANIFEST = "manifest.json"
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
    return f"{what} {missing} ({ENGINE_DESCRIPTIONS[plan.engine]})"


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


def run_manifest(scenario: Scenario, plan: AnalysisPlan) -> dict[str, Any]:
    """What ``manifest.json`` holds: the validated scenario and analysis plan that produced a run."""
    return {"scenario": scenario.model_dump(mode="json"), "plan": plan.model_dump(mode="json")}


@dataclass(frozen=True)
class SimulationResults:
    """One row per simulated trial (``trials``) plus the summary (operating characteristics and provenance), and
    the scenario and plan that produced them (``None`` for results saved without a manifest)."""

    trials: pd.DataFrame
    summary: dict[str, Any]
    scenario: Scenario | None = None
    plan: AnalysisPlan | None = None

    @classmethod
    def build(
        cls, scenario: Scenario, plan: AnalysisPlan, trials: pd.DataFrame, seed: int, n_trials: int
    ) -> SimulationResults:
        import warnings

        from trialsim.world.arms import resolve_arms

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # evidence warnings were shown when the design was checked
            resolved = resolve_arms(scenario)

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
                "effect_raw_smd": arm.effect_raw_smd,
                "effect_used_smd": arm.effect_used_smd,
                "evidence_certainty": arm.evidence_certainty,
                "evidence_adjustments": arm.evidence_adjustments,
                "adverse_event_incidence": arm.adverse_events,
                "adverse_events_recorded": sorted(arm.adverse_events_recorded),
                "ae_discontinuation": arm.ae_discontinuation if arm.ae_discontinuation_recorded else None,
                "sources": arm.sources,
            }
            for arm, spec in zip(resolved, scenario.arms)
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
            "design_points": check_performance(trials, control, [arm.name for arm in scenario.arms]),
            "provenance": {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": package_versions(),
                "scenario_hash": content_hash(scenario),
                "plan_hash": content_hash(plan),
            },
        }
        if scenario.interim is not None:
            from trialsim.decisions import Thresholds

            for point in summary["design_points"]:
                used = Thresholds.of(scenario, plan, point["sample_size"])
                point["thresholds"] = {"looks": [float(t) for t in used.looks], "final": float(used.final)}
        if "worker_pid" in trials:
            # Which process fitted which trial varies with the pool; keep only the compile count, not the table.
            per_worker = trials.groupby("worker_pid")["compiles_in_worker"].max()
            summary["nuts"] = {"worker_processes": int(per_worker.size), "compilations": int(per_worker.sum())}
            trials = trials.drop(columns=["worker_pid", "compiles_in_worker"])
        return cls(trials=trials, summary=summary, scenario=scenario, plan=plan)

    def performance(self) -> pd.DataFrame:
        """One row per design point and comparison."""
        return performance_frame(self.summary["design_points"])

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``summary.json`` and ``trials.parquet`` into ``out_dir`` (created if needed), and ``manifest.json``
        when the scenario and plan are known."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary_path, trials_path = out / "summary.json", out / "trials.parquet"
        summary_path.write_text(json.dumps(_json_safe(self.summary), indent=2) + "\n", encoding="utf-8")
        self.trials.to_parquet(trials_path, index=False)
        if self.scenario is not None and self.plan is not None:
            manifest = run_manifest(self.scenario, self.plan)
            (out / MANIFEST).write_text(json.dumps(_json_safe(manifest), indent=2) + "\n", encoding="utf-8")
        return summary_path, trials_path

    @classmethod
    def load(cls, out_dir: str | Path) -> SimulationResults:
        """Read results written by :meth:`save` (the scenario and plan validated again, if a manifest exists)."""
        out = Path(out_dir)
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        scenario = plan = None
        manifest_path = out / MANIFEST
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if "scenario" in manifest:
                scenario = validate_model(Scenario, manifest["scenario"], str(manifest_path))
            if "plan" in manifest:
                plan = validate_model(AnalysisPlan, manifest["plan"], str(manifest_path))
        return cls(trials=pd.read_parquet(out / "trials.parquet"), summary=summary, scenario=scenario, plan=plan)


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
