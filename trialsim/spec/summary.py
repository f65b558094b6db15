"""Pydantic model of ``summary.json``: the operating characteristics of a run and its provenance.

Strict where the structure is fixed (unknown keys rejected), open where it is keyed by the scenario's own names
(arms, adverse events, dropout reasons, resources, packages). Numbers that can be undefined (an RMSE without any
valid analysis, an MCSE from one trial) are ``null`` in the file. Parts that only some runs have (assurance,
interim looks, resources, monitoring, responder endpoints, per-trial engines) are optional.

``trialsim schema summary`` prints the JSON Schema generated from :class:`Summary`; the README's table of
summary.json is generated from it too (``python -m trialsim.spec.field_docs README.md``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trialsim.spec.plan import DecisionRule, Engine, MissingData, Model
from trialsim.spec.scenario import PrimaryEndpoint

#: A statistic that is ``null`` when undefined (no valid trial, or a standard error from one trial).
Number = float | None


def optional(description: str) -> Any:
    """A field that is absent from the file unless the run has it (never written as ``null``)."""
    return Field(None, description=description)


class Record(BaseModel):
    """Base: unknown keys rejected."""

    model_config = ConfigDict(extra="forbid")


class Quantiles(Record):
    """Median and 90th percentile over the simulated trials."""

    median: float = Field(description="median")
    p90: float = Field(description="90th percentile")


class Spread(Record):
    """Mean (with its MCSE), median and 90th percentile over the simulated trials."""

    mean: float = Field(description="mean")
    mean_mcse: Number = Field(description="Monte Carlo standard error of the mean")
    median: float = Field(description="median")
    p90: float = Field(description="90th percentile")


class Distribution(Record):
    """Mean, SD and 5th/95th percentiles of a quantity over assurance trials."""

    mean: Number = Field(description="mean")
    sd: Number = Field(description="standard deviation")
    q05: Number = Field(description="5th percentile")
    q95: Number = Field(description="95th percentile")


class StoppingLook(Record):
    """The deciding analysis of the trials that stopped at one look (0 = ran to the final analysis)."""

    stop_look: int = Field(description="look at which the trials stopped; 0 = the final analysis")
    trials: int = Field(description="number of such trials")
    mean_estimate: Number = Field(description="mean estimate of their deciding analysis")
    bias: Number = Field(description="mean estimate − true effect (biased conditional on an early stop)")
    bias_mcse: Number = Field(description="MCSE of the bias")


class Comparison(Record):
    """One active arm against the control at one design point."""

    arm: str = Field(description="active arm")
    control: str = Field(description="control arm")
    true_effect: float = Field(description="mean true effect (effect unit of the analysis, positive = improvement)")
    power: float = Field(description="P(success); under a null scenario the type I error")
    power_mcse: float = Field(description="binomial MCSE of power")
    mean_estimate: Number = Field(description="mean estimate over valid analyses")
    bias: Number = Field(description="mean (estimate − true effect)")
    bias_mcse: Number = Field(description="MCSE of the bias, s/√K")
    rmse: Number = Field(description="root mean squared error of the estimate")
    rmse_mcse: Number = Field(description="MCSE of the RMSE (delta method)")
    coverage: Number = Field(description="share of intervals (ci_prob) containing the true effect")
    coverage_mcse: Number = Field(description="binomial MCSE of coverage")
    analyses_impossible: int = Field(description="trials where an arm had no completer (counted as failures)")
    assurance: float = optional("P(success) with the true effect drawn from the design prior (assurance runs)")
    assurance_mcse: float = optional("binomial MCSE of assurance (assurance runs)")
    true_effect_distribution: Distribution = optional("true effects drawn from the design prior (assurance runs)")
    estimate_distribution: Distribution = optional("estimates of the assurance trials (assurance runs)")
    success_given_true_effect_positive: Number = optional(
        "P(success | drawn true effect > 0) over assurance trials (assurance runs)"
    )
    estimate_by_stopping_look: list[StoppingLook] = optional("estimate and bias by stopping look (interim looks)")
    failed_fits: int = optional(
        "trials whose fit failed its diagnostics, left out of mean estimate, bias, RMSE, coverage (per-trial engines)"
    )


class ResourceUse(Record):
    """Mean use of one treatment resource per trial."""

    sessions: float = Field(description="sessions delivered")
    unit_hours: float = Field(description="unit (chair, suite, device) hours")
    patients_waiting: float = Field(description="patients who waited for a course slot")
    mean_wait_weeks: float = Field(description="mean wait of a randomised patient (weeks)")
    max_wait_weeks: float = Field(description="longest wait (weeks)")


class ResponderRate(Record):
    """One arm's responder rate among completers (responder endpoints)."""

    rate: Number = Field(description="mean over trials of the trial's rate among completers")
    rate_mcse: Number = Field(description="MCSE of rate")
    true_rate: float = Field(description="complete-data responder rate of the world model")


class Look(Record):
    """One interim look over the trials of a design point."""

    look: int = Field(description="look number (1, 2, …)")
    reached: float = Field(description="share of trials in which the look happened")
    stop_efficacy: float = Field(description="P(stop for efficacy at this look)")
    stop_efficacy_mcse: float = Field(description="its binomial MCSE")
    stop_futility: float = Field(description="P(stop for futility at this look)")
    stop_futility_mcse: float = Field(description="its binomial MCSE")
    stopped_by_now: float = Field(description="P(stopped at this look or before)")
    stopped_by_now_mcse: float = Field(description="its binomial MCSE")
    week: Number = Field(description="mean calendar week of the data cut-off (trials that reached it)")
    n_randomised: Number = Field(description="mean patients randomised by the cut-off")
    n_completed: Number = Field(description="mean patients who reached the primary endpoint by the cut-off")


class Adaptive(Record):
    """Interim looks of a design point: stopping by look, N and duration, allocation achieved."""

    looks: list[Look] = Field(description="one per interim look")
    stopped_early: float = Field(description="share of trials stopped at a look")
    stopped_early_mcse: float = Field(description="its binomial MCSE")
    n_randomised: Spread = Field(description="patients randomised per trial")
    n_at_stop: Spread | None = Field(description="patients randomised in trials stopped early (null if none)")
    duration_weeks: Spread = Field(description="trial duration (weeks)")
    allocation: dict[str, float] = Field(description="{arm: share of all patients randomised}")


class Thresholds(Record):
    """Efficacy thresholds on P(effect > margin) in force at this design point."""

    looks: list[float] = Field(description="one per interim look")
    final: float = Field(description="at the final analysis")


class DesignPoint(Record):
    """Operating characteristics at one total sample size."""

    sample_size: int = Field(description="total randomised (target)")
    trials: int = Field(description="simulated trials (point effects)")
    expected_n: float = Field(description="mean patients randomised")
    expected_completers: float = Field(description="mean patients reaching the primary endpoint")
    expected_screened: float = Field(description="mean patients screened")
    expected_turned_away: float = Field(description="mean patients turned away by full sites (cap_enrolment)")
    dropout_fraction: float = Field(description="mean share of randomised patients who dropped out")
    recruitment_weeks: Quantiles = Field(description="weeks to randomise the trial's patients")
    duration_weeks: Quantiles = Field(description="weeks from the start to the last patient's last visit")
    dropout_by_reason: dict[str, dict[str, Number]] = Field(description="{arm: {reason: dropouts per patient}}")
    adverse_events: dict[str, dict[str, Number]] = Field(
        description="{arm: {event: incidence per patient}}; null where the arm's evidence records no incidence"
    )
    comparisons: list[Comparison] = Field(description="one per active arm against the control")
    resources: dict[str, ResourceUse] = optional("{resource: use per trial} (scenarios with resources)")
    adaptive: Adaptive = optional("interim looks (designs with looks)")
    thresholds: Thresholds = optional("efficacy thresholds (designs with looks)")
    responder_rates: dict[str, ResponderRate] = optional("{arm: responder rate} (responder endpoints)")
    monitoring_visits: dict[str, float] = optional("{arm: monitoring visits per trial} (monitored arms)")
    failed_diagnostics: float = optional("share of trials with a fit failing its diagnostics (per-trial engines)")
    failed_diagnostics_count: int = optional("number of such trials (per-trial engines)")
    fits_failed: int = optional("number of trials with a fit that raised (per-trial engines)")
    any_success: float = optional("P(at least one active arm succeeds); the family-wise type I error under the null")
    any_success_mcse: float = optional("binomial MCSE of any_success (several active arms)")
    any_success_assurance: float = optional("P(at least one active arm succeeds) with effects from the design priors")
    any_success_assurance_mcse: float = optional("binomial MCSE of any_success_assurance (several arms, assurance)")


class EffectPoints(Record):
    """True effects of an arm in PANSS points (positive = improvement)."""

    total: float = Field(description="on PANSS total change")
    positive: float = Field(description="on PANSS positive change")
    negative: float = Field(description="on PANSS negative change")


class PriorPoints(Record):
    """A normal design prior in PANSS points."""

    mean: float = Field(description="mean")
    sd: float = Field(description="standard deviation")


class ResolvedArm(Record):
    """What an arm resolved to against the evidence library, and from where."""

    name: str = Field(description="arm name")
    control: bool = Field(description="the control arm")
    intervention: str | None = Field(description="evidence-library entry, or null")
    versus: str | None = Field(description="the library's control context, or null")
    effect_points: EffectPoints = Field(description="true effects (points)")
    design_prior_points: PriorPoints | None = Field(description="design prior of the total effect, or null")
    effect_raw_smd: Number = Field(description="the library's recorded estimate (SMD), or null")
    effect_used_smd: float = Field(description="the simulated total effect (SMD)")
    evidence_certainty: str | None = Field(description="certainty of the library value, or null")
    evidence_adjustments: list[str] = Field(description="why the used value differs from the raw one")
    adverse_event_incidence: dict[str, float] = Field(description="{event: incidence by the endpoint}")
    adverse_events_recorded: list[str] = Field(description="events with a known incidence (others: not recorded)")
    ae_discontinuation: Number = Field(description="AE discontinuation by the endpoint; null = not recorded")
    sources: dict[str, str] = Field(description="{quantity: where its value came from}")


class FailedFitPolicy(Record):
    """The summary's policy for fits that failed their diagnostics (plan option ``sampler.failed_fit``)."""

    decision: str = Field(description="what such a fit decides")
    estimates: str = Field(description="which fits the estimate metrics are over")


class Analysis(Record):
    """The analysis plan as run."""

    model: Model = Field(description="ancova, longitudinal or responder")
    engine: Engine = Field(description="conjugate, nuts, frequentist or laplace")
    missing_data: MissingData = Field(description="missing-data handling in force")
    note: str = Field(description="the analysis in one sentence")
    decision: DecisionRule = Field(description="the plan's decision rule")
    ci_prob: float = Field(description="probability of the reported interval")
    failed_fits: FailedFitPolicy = optional("per-trial engines: what a fit failing its diagnostics counts for")


class Provenance(Record):
    """Where the numbers came from."""

    created_at: str = Field(description="UTC time the summary was written (ISO 8601)")
    versions: dict[str, str] = Field(description="{package: version} of the packages that produced the numbers")
    scenario_hash: str = Field(description="short SHA-256 of the validated scenario")
    plan_hash: str = Field(description="short SHA-256 of the validated analysis plan")


class NutsProcesses(Record):
    """NUTS compilations of a run."""

    worker_processes: int = Field(description="processes that fitted trials")
    compilations: int = Field(description="model compilations (one per worker process)")


class PrecisionRecord(Record):
    """A run sized by Monte Carlo precision (``--mcse``): its rule and what it took."""

    mcse: float = Field(description="target MCSE of every power, assurance and P(any arm succeeds)")
    round_trials: int = Field(description="trials per design point added per round")
    max_trials: int = Field(description="cap on trials per design point")
    trials: int = Field(description="trials per design point simulated")
    rounds: int = Field(description="rounds simulated")
    reached: bool = Field(description="whether the target was met")
    largest_conservative_mcse: float = Field(description="largest MCSE by the conservative (Wilson-bound) rule")
    rule: str = Field(description="the rule in words")


class Summary(Record):
    """``summary.json``: the operating characteristics of a run and its provenance."""

    scenario: str = Field(description="scenario name")
    analysis_plan: str = Field(description="analysis-plan name")
    seed: int = Field(description="master seed")
    trials: int = Field(description="simulated trials per design point (and effect mode)")
    analysis: Analysis = Field(description="the analysis plan as run")
    effect_sign: str = Field(description="the sign convention of every effect")
    primary_endpoint: PrimaryEndpoint = Field(description="measure, week and responder threshold")
    assurance: bool = Field(description="whether assurance runs were simulated")
    arms: list[ResolvedArm] = Field(description="one per arm, as resolved")
    design_points: list[DesignPoint] = Field(description="one per sample size")
    provenance: Provenance = Field(description="seed context, versions and hashes")
    nuts: NutsProcesses = optional("NUTS plans: worker processes and compilations")
    precision: PrecisionRecord = optional("runs sized by precision (--mcse): the rule and the trials it took")


def effect_unit(summary: dict[str, Any]) -> str:
    """Unit of a summary's compared effects: PANSS points, or a risk difference / log odds ratio for responders."""
    analysis = summary["analysis"]
    if analysis["model"] != "responder":
        return "PANSS points"
    return "risk difference" if analysis["engine"] == "conjugate" else "log odds ratio"
