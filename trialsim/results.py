"""Results of a run: the per-trial table, the operating characteristics and provenance; save and load."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from trialsim.exceptions import Problem, ScenarioError
from trialsim.performance import check_performance, performance_frame
from trialsim.rundir import (
    EXECUTION_COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,  # noqa: F401  (re-exported: the file name of a run's manifest)
    RunDirectory,
    expected_rows,
    trials_metadata,
    trials_rows,
    write_json,
    write_trials,
)
from trialsim.spec.loading import validate_model
from trialsim.spec.plan import ENGINE_DESCRIPTIONS, AnalysisPlan
from trialsim.spec.scenario import Scenario

#: Packages whose versions determine the numbers of every run, and those of each analysis engine.
PROVENANCE_PACKAGES = ("trialsim", "numpy", "scipy", "pandas", "simpy", "pydantic", "pyarrow")
ENGINE_PACKAGES = {"nuts": ("pymc", "pytensor", "nutpie", "arviz"), "frequentist": ("statsmodels",)}


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


def package_versions(plan: AnalysisPlan | None = None) -> dict[str, str]:
    """Versions of the packages that determine the numbers (with the plan's engine's, e.g. PyMC for NUTS)."""
    names = PROVENANCE_PACKAGES + (ENGINE_PACKAGES.get(plan.engine, ()) if plan is not None else ())
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def content_hash(model: Scenario | AnalysisPlan) -> str:
    """Short SHA-256 of a validated model's canonical JSON (changes whenever any setting changes)."""
    return hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:16]


def run_manifest(scenario: Scenario, plan: AnalysisPlan) -> dict[str, Any]:
    """The models of ``manifest.json``: the validated scenario and analysis plan that produced a run."""
    return {"scenario": scenario.model_dump(mode="json"), "plan": plan.model_dump(mode="json")}


def run_record(scenario: Scenario, plan: AnalysisPlan, seed: int, trials: int) -> dict[str, Any]:
    """What identifies a run's rows (kept in trials.parquet's metadata and checked against the manifest)."""
    return {"seed": seed, "trials": trials, "scenario_hash": content_hash(scenario), "plan_hash": content_hash(plan)}


def failed_fit_policy(plan: AnalysisPlan) -> dict[str, str]:
    """How the summary treats fits that failed their diagnostics (per-trial engines)."""
    decision = {
        "no_success": "a fit that failed its diagnostics counts as no success (sampler.failed_fit: no_success)",
        "keep": "a fit that failed its diagnostics keeps its decision (sampler.failed_fit: keep)",
    }[plan.sampler.failed_fit]
    return {
        "decision": decision,
        "estimates": "mean estimate, bias, RMSE and coverage are over the fits that passed their diagnostics; "
        "failed_fits counts the others",
    }


def make_summary(
    scenario: Scenario,
    plan: AnalysisPlan,
    design_points: list[dict[str, Any]],
    seed: int,
    n_trials: int,
    *,
    nuts: dict[str, int] | None = None,
    precision: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """summary.json of a run from the operating characteristics of its design points."""
    import warnings

    from trialsim.world.arms import resolve_arms

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidence warnings were shown when the design was checked
        resolved = resolve_arms(scenario)
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
    analysis = {
        "model": plan.model,
        "engine": plan.engine,
        "missing_data": plan.missing,
        "note": note,
        "decision": plan.decision.model_dump(),
        "ci_prob": plan.ci_prob,
    }
    if plan.engine != "conjugate":
        analysis["failed_fits"] = failed_fit_policy(plan)
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "analysis_plan": plan.name,
        "seed": seed,
        "trials": n_trials,
        "analysis": analysis,
        "effect_sign": "positive = improvement (control change minus arm change, PANSS points)",
        "primary_endpoint": endpoint.model_dump(),
        "assurance": scenario.assurance,
        "arms": arms,
        "design_points": design_points,
        "provenance": {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": package_versions(plan),
            "scenario_hash": content_hash(scenario),
            "plan_hash": content_hash(plan),
        },
    }
    if precision is not None:
        summary["precision"] = precision
    if scenario.interim is not None:
        from trialsim.decisions import Thresholds

        for point in summary["design_points"]:
            used = Thresholds.of(scenario, plan, point["sample_size"])
            point["thresholds"] = {"looks": [float(t) for t in used.looks], "final": float(used.final)}
    if nuts is not None:
        summary["nuts"] = nuts
    return summary


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without what legitimately differs between two runs of the same numbers: its creation time and
    the NUTS execution facts (which worker processes compiled how often). Resumed, grown and uninterrupted runs,
    and any backend or worker count, give equal ``comparable`` summaries."""
    out = {key: value for key, value in summary.items() if key != "nuts"}
    out["provenance"] = {key: value for key, value in summary["provenance"].items() if key != "created_at"}
    return out


class SimulationResults:
    """One row per simulated trial (``trials``) plus the summary (operating characteristics and provenance), and
    the scenario and plan that produced them (``None`` for results saved without a manifest).

    Results of a run directory read ``trials`` from its trials.parquet when first asked (a large run's table
    need never be in memory: the summary is all the command line reads).
    """

    def __init__(
        self,
        trials: pd.DataFrame | None,
        summary: dict[str, Any],
        scenario: Scenario | None = None,
        plan: AnalysisPlan | None = None,
        *,
        directory: Path | None = None,
    ) -> None:
        if trials is None and directory is None:
            raise ValueError("give the trials table or the run directory holding it")
        self._trials, self.summary, self.scenario, self.plan, self.directory = (
            trials, summary, scenario, plan, directory,
        )

    @property
    def trials(self) -> pd.DataFrame:
        if self._trials is None:
            self._trials = pd.read_parquet(RunDirectory(self.directory).trials_path)
        return self._trials

    @classmethod
    def build(
        cls, scenario: Scenario, plan: AnalysisPlan, trials: pd.DataFrame, seed: int, n_trials: int
    ) -> SimulationResults:
        """Summarise an in-memory trials table (as :func:`trialsim.runner.run_trials` returns it)."""
        nuts = None
        if "worker_pid" in trials:
            # Which process fitted which trial varies with the pool; keep only the compile count, not the table.
            per_worker = trials.groupby("worker_pid")["compiles_in_worker"].max()
            nuts = {"worker_processes": int(per_worker.size), "compilations": int(per_worker.sum())}
            trials = trials.drop(columns=list(EXECUTION_COLUMNS))
        control = scenario.arms[scenario.control_index].name
        design_points = check_performance(trials, control, [arm.name for arm in scenario.arms])
        summary = make_summary(scenario, plan, design_points, seed, n_trials, nuts=nuts)
        return cls(trials, summary, scenario, plan)

    def performance(self) -> pd.DataFrame:
        """One row per design point and comparison."""
        return performance_frame(self.summary["design_points"])

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``manifest.json`` (when the scenario and plan are known), ``trials.parquet`` and, last,
        ``summary.json`` into ``out_dir`` (created if needed), each atomically. A directory holding another run
        is refused (:class:`~trialsim.exceptions.ScenarioError`)."""
        directory = RunDirectory(out_dir)
        directory.check_writable("save to")
        record = {
            "seed": self.summary["seed"],
            "trials": self.summary["trials"],
            "scenario_hash": self.summary["provenance"]["scenario_hash"],
            "plan_hash": self.summary["provenance"]["plan_hash"],
        }
        _refuse_other_run(directory, record)
        if self.scenario is not None and self.plan is not None:
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                **run_manifest(self.scenario, self.plan),
                **record,
                "versions": self.summary["provenance"]["versions"],
                "status": "complete",
            }
            directory.write_manifest(manifest)
        write_trials(directory.trials_path, self.trials, record)
        write_json(directory.summary_path, self.summary)
        return directory.summary_path, directory.trials_path

    @classmethod
    def load(cls, out_dir: str | Path) -> SimulationResults:
        """Read a run directory (or results written by :meth:`save`), verifying that its manifest, parts,
        trials.parquet and summary.json belong to one finished run; the scenario and plan are validated again.
        Anything else is a :class:`~trialsim.exceptions.ScenarioError` saying what is wrong."""
        directory = RunDirectory(out_dir)
        manifest = directory.read_manifest()
        scenario = plan = None
        if manifest is not None:
            if "scenario" in manifest:
                scenario = validate_model(Scenario, manifest["scenario"], str(directory.manifest_path))
            if "plan" in manifest:
                plan = validate_model(AnalysisPlan, manifest["plan"], str(directory.manifest_path))
            if manifest.get("format") == FORMAT and manifest.get("status") != "complete":
                raise ScenarioError(
                    f"{directory.path}: the run is not finished (status {manifest.get('status')!r}); finish it "
                    f"with `trialsim run {scenario.name if scenario else 'SCENARIO'} --out {directory.path} --resume`"
                )
        for path in (directory.summary_path, directory.trials_path):
            if not path.is_file():
                raise ScenarioError(f"{directory.path}: not a run directory (no {path.name})")
        try:
            summary = json.loads(directory.summary_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ScenarioError(f"{directory.summary_path}: cannot be read ({error})") from None
        _verify(directory, manifest, summary, scenario, plan)
        return cls(None, summary, scenario, plan, directory=directory.path)


def _record_of(summary: dict[str, Any]) -> dict[str, Any]:
    provenance = summary.get("provenance", {})
    return {
        "seed": summary.get("seed"),
        "trials": summary.get("trials"),
        "scenario_hash": provenance.get("scenario_hash"),
        "plan_hash": provenance.get("plan_hash"),
    }


def _refuse_other_run(directory: RunDirectory, record: dict[str, Any]) -> None:
    """Results are written only into a new or empty directory, or over the same run's saved results."""
    if directory.is_empty():
        return
    if directory.parts():
        raise ScenarioError(f"{directory.path}: holds a run written by `trialsim run`; save elsewhere")
    if directory.summary_path.exists():
        try:
            saved = _record_of(json.loads(directory.summary_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            saved = None
        if saved != record:
            raise ScenarioError(f"{directory.path}: holds another run (its summary.json differs in seed, trials, "
                                "scenario or plan); save elsewhere")


def _verify(
    directory: RunDirectory,
    manifest: dict[str, Any] | None,
    summary: dict[str, Any],
    scenario: Scenario | None,
    plan: AnalysisPlan | None,
) -> None:
    """The files of a run directory belong together: the manifest's run record, the scenario and plan it holds,
    summary.json, trials.parquet's record and row count, and the parts."""
    problems = []
    record = _record_of(summary)
    stored = trials_metadata(directory.trials_path)
    if stored is not None and stored != record:
        problems.append(f"trials.parquet belongs to another run than summary.json ({stored} vs {record})")
    if manifest is not None and manifest.get("format") == FORMAT:
        expected = {key: manifest.get(key) for key in record}
        if expected != record:
            problems.append(f"summary.json belongs to another run than manifest.json ({record} vs {expected})")
        if scenario is not None and content_hash(scenario) != manifest.get("scenario_hash"):
            problems.append("the scenario in manifest.json does not match its hash (the file was edited)")
        if plan is not None and content_hash(plan) != manifest.get("plan_hash"):
            problems.append("the plan in manifest.json does not match its hash (the file was edited)")
        if scenario is not None and not problems:
            rows = expected_rows(scenario.sample_sizes, scenario.assurance, record["trials"])
            if trials_rows(directory.trials_path) != rows:
                problems.append(f"trials.parquet does not hold the run's {rows} rows")
            if directory.parts():
                try:
                    directory.check_complete(scenario.sample_sizes, scenario.assurance, record["trials"])
                except ScenarioError as error:
                    problems.append(str(error))
    if problems:
        raise ScenarioError([Problem(str(directory.path), "", problem) for problem in problems])
