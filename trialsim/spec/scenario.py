"""Pydantic models of a scenario file: the world (population, outcomes, arms) and the design.

Units: weeks for time, PANSS points for scores, SMD for standardised effects.
Sign convention: a positive effect means *improvement* — a larger PANSS reduction than control.
Every model rejects unknown keys; all structural problems of a file are reported together.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from trialsim.spec.base import (
    ConsistencyError,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    Strict,
)
from trialsim.spec.delivery import Resource, Treatment
from trialsim.spec.looks import Interim


class NormalParams(Strict):
    """A normal distribution, ``mean`` and ``sd`` in the stated unit."""

    mean: float
    sd: PositiveFloat


class Subscale(Strict):
    """Baseline PANSS subscale (7–49 points), generated jointly with the total."""

    mean: float = Field(ge=7, le=49)
    sd: PositiveFloat
    correlation_with_total: float = Field(0.6, gt=-1.0, lt=1.0)


class Age(Strict):
    """Age at randomisation (years), a truncated normal."""

    mean: float = Field(40.0, ge=18, le=90)
    sd: PositiveFloat = 11.0
    min: float = Field(18.0, ge=0)
    max: float = Field(65.0, le=120)

    @model_validator(mode="after")
    def _range(self) -> Age:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class Population(Strict):
    """Who enters the trial.

    Defaults (derived): baseline PANSS 98 ± 20, between 101.1 ± 24.9 in clozapine-resistant outpatients (sham-ECT
    RCT, Schizophr Res 2024) and 97.7 in EMERGENT-1 (Brannan et al., N Engl J Med 2021); smoking 0.75 (70–80% of
    patients with schizophrenia smoke, Biochemia Medica 2023). Subscales, age and sex: ASSUMPTIONS.

    ``background`` is the patients' background treatment: ``clozapine`` (clozapine-treated TRS, e.g. augmentation
    trials; the default), ``trs_not_on_clozapine`` (TRS not on clozapine, e.g. clozapine initiation or non-clozapine
    augmentation) or ``not_trs``. Library evidence from another population widens an arm's design prior, with a
    warning (``trialsim.evidence.design_prior``).
    """

    baseline_panss: NormalParams = NormalParams(mean=98.0, sd=20.0)
    inclusion_min_panss: float = Field(80.0, ge=30, le=210, description="inclusion threshold on PANSS total (points)")
    positive: Subscale = Subscale(mean=23.0, sd=5.0, correlation_with_total=0.6)
    negative: Subscale = Subscale(mean=24.0, sd=6.0, correlation_with_total=0.6)
    age: Age = Age()
    female_fraction: Probability = 0.3
    smoking_fraction: Probability = 0.75
    background: Literal["clozapine", "trs_not_on_clozapine", "not_trs"] = Field(
        "clozapine", description="background treatment: clozapine, trs_not_on_clozapine or not_trs"
    )


class Outcome(Strict):
    """PANSS-total trajectory model (equations in ``trialsim.world.outcome`` and the README).

    The SD of change at the primary endpoint is exactly ``sd_change`` (rater noise included: it takes its share of
    that variance, see ``Heterogeneity.rater_sd``); a patient random effect carries ``patient_variance_fraction``
    of the rest and an AR(1) process over visits the remainder.

    Placebo response, uncertain and structured (``trialsim.world.placebo``):

    - ``control_improvement_sd``: in assurance runs each trial draws its own control improvement,
      N(control_improvement, sd²) (points). Control arms of antipsychotic trials vary widely: standardised mean
      change −0.33, range −1.4 to 0.9 over 50 trials (Agid et al., Am J Psychiatry 2013;170:1335–1344); placebo
      response grows with more sites and a lower chance of placebo (Rutherford et al., JAMA Psychiatry
      2014;71:1409–1421). 0 = off. A shift common to both arms cancels out of a continuous contrast: what it
      changes are responder rates (threshold and floor) and, through the next field, the difference itself.
    - ``effect_loss_per_control_point``: κ, the fraction of an active arm's effect lost per point of control
      improvement above its mean, in a trial (assurance draw) and at a site (``heterogeneity.site_sd``): the
      effect is multiplied by max(0, 1 − κ·deviation), so the difference shrinks in high-placebo trials and sites
      and grows in low-placebo ones, and a null effect stays null (ASSUMPTION for the value; direction from
      Rutherford et al. 2014: as placebo response rose over the years, the response to effective doses did not).
      0 = off.
    """

    sd_change: PositiveFloat = Field(15.0, description="SD of change from baseline at the primary endpoint (points)")
    control_improvement: float = Field(
        4.0, description="mean PANSS reduction in the control arm at the primary endpoint (points, positive = better)"
    )
    onset_weeks: PositiveFloat = Field(
        3.0, description="time constant of the response curve 1 − exp(−t/onset), normalised to 1 at the endpoint"
    )
    patient_variance_fraction: float = Field(0.5, ge=0.0, le=1.0)
    visit_correlation: float = Field(0.75, ge=0.0, lt=1.0, description="AR(1) correlation of residuals per week^0")
    baseline_slope: float = Field(
        0.0, ge=-1.0, le=1.0, description="extra reduction per point of baseline above the mean (points/point)"
    )
    control_improvement_sd: NonNegativeFloat = Field(
        0.0,
        le=50,
        description="between-trial SD of the control improvement (points); drawn per trial in assurance runs",
    )
    effect_loss_per_control_point: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="fraction of the treatment effect lost per point of control improvement above its mean",
    )


class Effect(Strict):
    """A true treatment effect: exactly one of ``smd`` or ``points`` (positive = improvement)."""

    smd: float | None = Field(None, ge=-5, le=5)
    points: float | None = Field(None, ge=-100, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Effect:
        if (self.smd is None) == (self.points is None):
            raise ValueError("give exactly one of 'smd' (standardised) or 'points' (PANSS points)")
        return self

    def in_points(self, sd_change: float) -> float:
        """The effect in PANSS points, converting an SMD with the SD of change."""
        return self.points if self.points is not None else self.smd * sd_change


class DesignPrior(Strict):
    """A normal design prior on an arm's true effect on PANSS total (SMD, positive = improvement)."""

    mean_smd: float = Field(ge=-5, le=5)
    sd_smd: float = Field(gt=0, le=5)


class MonitoringPhase(Strict):
    """One phase of a blood-monitoring schedule: a test every ``every_weeks`` until ``until_week`` (None = for ever)."""

    every_weeks: float = Field(gt=0, le=52)
    until_week: float | None = Field(None, gt=0, le=520)


class Monitoring(Strict):
    """Clozapine initiation in this arm: blood (ANC) monitoring and the early, clozapine-specific adverse events
    that stop treatment (``trialsim.world.monitoring``).

    ``schedule``: ``non_us_label`` (weekly for 18 weeks, then at least every 4 weeks; other-country label, e.g.
    MIMS Malaysia), ``us_label`` (weekly for 6 months, every 2 weeks to month 12, then monthly; Clozaril US label)
    or a list of phases. The US REMS ended on 24 February 2025; ANC monitoring stays advised in the label.

    Incidences come from the arm's adverse events (library ``clozapine``: neutropenia 3.8%, severe neutropenia
    0.9%, Myles et al., Acta Psychiatr Scand 2018, 108 studies); this block gives their timing: neutropenia onset
    ~ Gamma(2, ``neutropenia_peak_weeks``), whose mode is the peak at one month of exposure and which is negligible
    after a year (Myles 2018; the gamma shape 2 is an ASSUMPTION); a severe neutropenia is found at the next
    scheduled test and stops clozapine. Myocarditis (``myocarditis`` incidence) starts between days 14 and 22
    (Ronaldson et al., J Clin Psychiatry 2010;71:976–981: 36 of 38 cases) and stops clozapine.
    """

    schedule: Literal["non_us_label", "us_label"] | list[MonitoringPhase] = Field(
        "non_us_label", description="non_us_label, us_label, or a list of {every_weeks, until_week} phases"
    )
    neutropenia_peak_weeks: PositiveFloat = Field(4.35, le=52, description="mode of the neutropenia onset (weeks)")
    myocarditis_onset_days: tuple[NonNegativeFloat, NonNegativeFloat] = (14.0, 22.0)

    @field_validator("schedule")
    @classmethod
    def _phases(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one phase")
            ends = [phase.until_week for phase in value]
            if any(end is None for end in ends[:-1]):
                raise ValueError("only the last phase may run for ever (no until_week)")
            finite = [end for end in ends if end is not None]
            if any(b <= a for a, b in zip(finite, finite[1:])):
                raise ValueError("until_week must increase from phase to phase")
        return value

    @field_validator("myocarditis_onset_days")
    @classmethod
    def _window(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[1] < value[0]:
            raise ValueError(f"window end ({value[1]}) must not be before its start ({value[0]})")
        return value


class TimeCourse(Strict):
    """When an arm's effect appears and fades (``trialsim.world.time_course``); weeks since treatment start.

    The effect rises as 1 − exp(−(t − lag)/onset) after a titration lag and is normalised to the stated effect
    at the primary endpoint, or at the end of treatment when it ends earlier; after the end it fades as
    exp(−(t − end)/offset). Examples: ECT separates from clozapine alone by weeks 1–2 (SMD 0.54 at weeks 1–2,
    0.88 after the course; Wang et al., J Psychiatr Res 2018;105:23–32); clozapine's response keeps growing for
    months (Kane et al. 1988 used 6 weeks; later trials 12–29 weeks); FOCUS's CBT effect fell from 2.40 points at
    the end of therapy (9 months) to 0.89 at 21 months (Morrison et al., Lancet Psychiatry 2018).
    """

    onset_weeks: PositiveFloat | None = Field(
        None, le=520, description="time constant of the rise (default: outcome.onset_weeks)"
    )
    lag_weeks: NonNegativeFloat = Field(0.0, le=104, description="titration lag before the effect starts (weeks)")
    treatment_weeks: PositiveFloat | None = Field(None, le=520, description="treatment ends then (default: never)")
    offset_weeks: PositiveFloat | None = Field(
        None, le=520, description="time constant of the fade after the end (default: the effect persists)"
    )


#: What can set an active arm's effect: the effect itself, or a response rate the effect is calibrated to.
CALIBRATION_TARGETS = ("effect", "responder_rate", "responder_odds_ratio")


class Arm(Strict):
    """One treatment arm. Exactly one arm of a scenario is the control (its effect is 0 by definition).

    ``intervention`` names an entry of the evidence library (``trialsim.evidence``): it supplies the true effect
    (its design default), the subscale effects, the design prior for assurance, adverse-event incidences and
    AE discontinuation; any of them can be overridden here. ``versus`` chooses the library's control context
    (e.g. ``sham`` vs ``treatment_as_usual`` for ECT; default: the entry's own comparator).
    """

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    control: bool = False
    intervention: str | None = Field(None, min_length=1)
    versus: str | None = Field(
        None, min_length=1, description="library control context: placebo, sham, treatment_as_usual, …"
    )
    effect: Effect | None = None
    effect_positive: Effect | None = Field(None, description="effect on PANSS positive change (SMD of that subscale)")
    effect_negative: Effect | None = Field(None, description="effect on PANSS negative change")
    design_prior: DesignPrior | None = None
    clozapine_dependent: bool = Field(
        False,
        description="the benefit needs an adequate clozapine plasma level (below clozapine.target_level_ng_ml it is "
        "cut to clozapine.subtherapeutic_effect_ratio); outside clozapine-treated populations the arm gives clozapine",
    )
    responder_rate: Probability | None = Field(
        None, description="complete-data probability of response at the primary endpoint; calibrates the arm"
    )
    responder_odds_ratio: PositiveFloat | None = Field(
        None, le=1000, description="odds ratio of response vs the control arm at the primary endpoint; calibrates"
    )
    time_course: TimeCourse | None = Field(None, description="onset, titration lag, end of treatment and fade")
    dropout: Probability | None = Field(
        None, description="fraction dropped out by the primary endpoint in this arm (overrides dropout.fraction)"
    )
    adverse_events: dict[str, Probability] | None = Field(
        None, description="incidence by the primary endpoint per adverse event (overrides the library)"
    )
    ae_discontinuation: Probability | None = Field(
        None, description="fraction discontinuing for adverse events by the primary endpoint (overrides the library)"
    )
    treatment: Treatment | None = None
    monitoring: Monitoring | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if re.fullmatch(r"look\d+", value):
            raise ValueError("names look1, look2, ... are reserved for interim looks in the outputs")
        return value

    @model_validator(mode="after")
    def _control_has_no_effect(self) -> Arm:
        if self.control and any(e is not None for e in (self.effect, self.effect_positive, self.effect_negative)):
            raise ValueError("the control arm cannot have an effect (effects are relative to control)")
        if self.control and (self.responder_odds_ratio is not None or self.time_course is not None):
            raise ValueError("the control arm has no responder_odds_ratio or time_course (its course is outcome's)")
        given = [name for name in CALIBRATION_TARGETS if getattr(self, name) is not None]
        if not self.control and len(given) > 1:
            raise ValueError(f"give one of {', '.join(CALIBRATION_TARGETS)}, not {' and '.join(given)}")
        return self


class PrimaryEndpoint(Strict):
    """Primary endpoint at ``week`` (must be a scheduled visit).

    ``panss_*_change``: change from baseline (analysed by ANCOVA). ``responder``: a reduction of at least
    ``responder_threshold`` of the floor-adjusted total, (baseline − PANSS)/(baseline − 30) ≥ threshold
    (TRRIP: 20 %, [V]), analysed as a binary outcome.
    """

    measure: Literal["panss_total_change", "panss_positive_change", "panss_negative_change", "responder"] = (
        "panss_total_change"
    )
    week: PositiveFloat
    responder_threshold: float = Field(0.20, gt=0, lt=1)


class Recruitment(Strict):
    """Poisson–gamma accrual (Anisimov & Fedorov): each site recruits at a gamma-distributed rate."""

    sites: int = Field(ge=1, le=2000)
    activation_weeks: tuple[NonNegativeFloat, NonNegativeFloat] = Field(
        (0.0, 12.0), description="sites open uniformly at random within this window (weeks); equal → all at once"
    )
    rate_per_site_per_week: PositiveFloat = Field(description="mean rate of patients screened per open site (per week)")
    rate_cv: NonNegativeFloat = Field(
        0.5, le=5, description="between-site coefficient of variation of the rate (gamma); 0 = identical sites"
    )
    screen_failure: float = Field(0.0, ge=0.0, lt=1.0, description="probability a screened patient is not randomised")
    block_size: int | None = Field(
        None, ge=1, le=1000, description="permuted-block size, a multiple of sum(allocation); default 2×sum"
    )
    fixed_interarrival: bool = Field(
        False, description="deterministic arrivals at 1/rate (for testing and planning); default Poisson"
    )
    horizon_weeks: PositiveFloat = Field(
        1040.0,
        le=5200,
        description="longest acceptable recruitment (weeks, default 20 years): a design whose median time to "
        "randomise max(sample_size) is longer is refused (trialsim.spec.sanity)",
    )

    @field_validator("activation_weeks")
    @classmethod
    def _window(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[1] < value[0]:
            raise ValueError(f"window end ({value[1]}) must not be before its start ({value[0]})")
        return value


class Dropout(Strict):
    """Time-to-event dropout, calibrated so ``fraction`` have dropped by the endpoint when outcomes play no role.

    ``mechanism``: ``mcar`` — constant hazard; ``mar`` — the hazard in each visit interval is multiplied by
    exp(efficacy_log_hazard_ratio · z) with z = (last *observed* PANSS − baseline)/sd_change (lack of efficacy seen
    at the last visit); ``mnar`` — the same with the *current, unobserved* PANSS at the end of the interval.
    """

    fraction: Probability = 0.0
    reason: str = "withdrawal"
    mechanism: Literal["mcar", "mar", "mnar"] = "mcar"
    efficacy_log_hazard_ratio: float = Field(
        1.0, ge=-5, le=5, description="log hazard ratio per SD of change of worsening (mar/mnar)"
    )

    @field_validator("fraction")
    @classmethod
    def _not_everyone(cls, value: float) -> float:
        if value >= 1.0:
            raise ValueError("must be below 1: with everyone dropped out there is nothing to analyse")
        return value


class Subscales(Strict):
    """Positive and negative subscale trajectories (same model as the total, own parameters).

    Defaults [D]: SD of change 4.8 (positive) and 4.3 (negative) from the EMERGENT pooled differences and d
    (3.2/0.67, 1.7/0.40); control improvement scaled from the total by the EMERGENT placebo shares (3.1/9.6 and
    1.3/9.6 of the total's); correlation of each subscale's residual with the total's 0.7 (ASSUMPTION).
    """

    positive_sd_change: PositiveFloat = 4.8
    negative_sd_change: PositiveFloat = 4.3
    positive_control_share: float = Field(0.32, ge=0, le=1)
    negative_control_share: float = Field(0.14, ge=0, le=1)
    correlation_with_total: float = Field(0.7, ge=0, lt=1)


class Heterogeneity(Strict):
    """Sources of heterogeneity, each switchable (0 or false switches it off).

    - ``ultra_trs_fraction``: share of patients who are clozapine-resistant (ultra-TRS); their effect is
      multiplied by ``ultra_trs_effect_ratio``. Default 0: set it for TRS populations not selected for clozapine
      resistance (40–70 % of TRS respond poorly to clozapine, [V]); the ratio 0.5 is an ASSUMPTION.
    - ``site_sd``: SD across sites of the control (placebo) improvement, PANSS points (ASSUMPTION; 0 = off); with
      ``outcome.effect_loss_per_control_point`` high-placebo sites also show a smaller difference.
    - ``rater_sd``: SD of independent rater measurement noise at each assessment, PANSS points (0 = off). Published
      SDs of change already include it, so it is split off ``outcome.sd_change`` (the true change then has SD
      √(sd_change² − 2·rater_sd²)), not added; subscales get noise in proportion to their SD of change.
    - ``severity_effect_interaction``: the effect grows with baseline severity, in proportion to (baseline − 20):
      drug–placebo differences of 9.5, 13.7, 18.8 and 24.0 points at baseline PANSS 58, 75, 95 and 116
      (Furukawa et al., JAMA Psychiatry 2015;72:14–21, acute trials) lie on 0.25·(baseline − 20). Scaled so that
      the population-average effect is the arm's effect (ASSUMPTION: the proportion carries over to TRS).
    """

    ultra_trs_fraction: Probability = 0.0
    ultra_trs_effect_ratio: float = Field(0.5, ge=0, le=2)
    site_sd: NonNegativeFloat = Field(0.0, le=50)
    rater_sd: NonNegativeFloat = Field(0.0, le=50)
    severity_effect_interaction: bool = False


class ClozapineExposure(Strict):
    """Clozapine plasma levels (ng/mL) of patients on clozapine (``trialsim.world.exposure``).

    Patients on clozapine: everyone when ``population.background`` is ``clozapine``, else those in
    ``clozapine_dependent`` arms. Level = dose × C/D ratio; the C/D ratio ((ng/mL)/(mg/day)) is log-normal with mean
    ``cd_ratio_nonsmoker`` or ``cd_ratio_smoker``. Tsuda et al. (BMJ Open 2014;4:e004216; 4 studies, 196 patients)
    found smokers' mean C/D 1.11 lower (95% CI 0.70–1.53) and advise halving the dose in non-smokers, so the two
    means are 2 × 1.11 = 2.22 and 1.11 (derived). Doses are either ``level_guided``, titrated towards
    ``target_level_ng_ml`` (the TRRIP threshold of 350 ng/mL, Howes et al., Am J Psychiatry 2017;174:216–229) up
    to ``max_dose_mg_per_day`` (900 mg/day, Clozaril label; Kane et al. 1988 "up to 900 mg/d"), or ``fixed`` at
    ``dose_mg_per_day``. ``eligibility_min_level_ng_ml`` admits only patients with a confirmed level at or above
    it (e.g. ≥ 350 ng/mL in the sham-ECT RCT, Schizophr Res 2024); the patients it excludes are not counted as
    screened, so include them in ``recruitment.screen_failure``. ``smokers_quitting``: the fraction of smokers
    who stop during the trial (uniformly in time up to the primary endpoint, ASSUMPTION), with the dose unchanged:
    their C/D ratio rises to the non-smoker's (CYP1A2 is no longer induced), and a level rising above
    ``alert_level_ng_ml`` (1,000 ng/mL, the AGNP laboratory alert level, Hiemke et al., Pharmacopsychiatry
    2018;51:9–62) is recorded as the adverse event ``clozapine_level_above_alert``.

    In ``clozapine_dependent`` arms a patient below the target level gets ``subtherapeutic_effect_ratio`` of the
    effect (ASSUMPTION); other arms' effects do not depend on the level (aripiprazole, for example, is not a CYP1A2
    substrate).
    """

    cd_ratio_nonsmoker: PositiveFloat = Field(2.22, le=20)
    cd_ratio_smoker: PositiveFloat = Field(1.11, le=20)
    cd_ratio_log_sd: NonNegativeFloat = Field(
        0.45, le=3, description="between-patient SD of log C/D ratio (ASSUMPTION: CV ≈ 47%)"
    )
    dosing: Literal["level_guided", "fixed"] = "level_guided"
    dose_mg_per_day: PositiveFloat = Field(400.0, le=900, description="fixed dose (ASSUMPTION: a usual 300–450 mg/day)")
    max_dose_mg_per_day: PositiveFloat = Field(900.0, le=2000)
    target_level_ng_ml: PositiveFloat = Field(350.0, le=5000)
    eligibility_min_level_ng_ml: PositiveFloat | None = Field(None, le=5000)
    subtherapeutic_effect_ratio: float = Field(0.5, ge=0, le=1)
    smokers_quitting: Probability = 0.0
    alert_level_ng_ml: PositiveFloat = Field(1000.0, le=10000)

    @model_validator(mode="after")
    def _consistent(self) -> ClozapineExposure:
        if self.cd_ratio_smoker > self.cd_ratio_nonsmoker:
            raise ValueError("cd_ratio_smoker must not exceed cd_ratio_nonsmoker (smoking induces CYP1A2)")
        highest = self.target_level_ng_ml if self.dosing == "level_guided" else float("inf")
        if self.eligibility_min_level_ng_ml is not None and self.eligibility_min_level_ng_ml > highest:
            raise ValueError("with level_guided dosing no level exceeds target_level_ng_ml: lower "
                             "eligibility_min_level_ng_ml or use fixed dosing")
        return self


class Scenario(Strict):
    """A complete scenario: the world and the design of one planned trial.

    ``sample_size`` is the total number randomised (one value, or a list for a power curve).
    ``analysis_plan`` is a path to an analysis-plan file, relative to this scenario file (or a bundled plan name).
    """

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-. ]*$")
    description: str = ""
    population: Population = Population()
    outcome: Outcome = Outcome()
    arms: list[Arm] = Field(min_length=2, max_length=12)
    allocation: list[PositiveInt] | None = Field(
        None, description="whole-number allocation ratio per arm; default equal"
    )
    visits_weeks: list[NonNegativeFloat] = Field(min_length=2, max_length=60)
    visit_window_days: NonNegativeFloat = Field(0.0, le=28, description="visits jitter uniformly by ± this many days")
    primary_endpoint: PrimaryEndpoint
    recruitment: Recruitment
    dropout: Dropout = Dropout()
    subscales: Subscales = Subscales()
    heterogeneity: Heterogeneity = Heterogeneity()
    clozapine: ClozapineExposure = ClozapineExposure()
    resources: dict[str, Resource] = Field(default_factory=dict, description="per-site treatment resources by name")
    interim: Interim | None = Field(None, description="interim looks (decisions: the analysis plan's interim rules)")
    assurance: bool = Field(
        False, description="also simulate with each active arm's true effect drawn from its design prior"
    )
    sample_size: int | list[int] = Field(description="total randomised; a list gives a power curve")
    analysis_plan: str = Field(min_length=1)

    @field_validator("sample_size")
    @classmethod
    def _sizes(cls, value: int | list[int]) -> int | list[int]:
        sizes = [value] if isinstance(value, int) else value
        if not sizes:
            raise ValueError("give at least one sample size")
        for size in sizes:
            if size < 4 or size > 100_000:
                raise ValueError(f"each sample size must be between 4 and 100000, got {size}")
        if len(set(sizes)) != len(sizes):
            raise ValueError("sample sizes must be distinct")
        return value

    @field_validator("visits_weeks")
    @classmethod
    def _visits(cls, value: list[float]) -> list[float]:
        if value[0] != 0:
            raise ValueError("the first visit must be baseline, week 0")
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError("visit weeks must be strictly increasing")
        return value

    @model_validator(mode="after")
    def _consistency(self) -> Scenario:
        problems: list[tuple[str, object, str]] = []
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            problems.append(("arms", names, "arm names must be unique"))
        controls = [arm.name for arm in self.arms if arm.control]
        if len(controls) != 1:
            problems.append(("arms", controls, "exactly one arm must have 'control: true'"))
        for i, arm in enumerate(self.arms):
            if not arm.control and all(getattr(arm, name) is None for name in (*CALIBRATION_TARGETS, "intervention")):
                problems.append(
                    (
                        f"arms.{i}.effect",
                        None,
                        f"active arm '{arm.name}' needs an effect (smd or points), a responder rate or odds ratio, "
                        "or an intervention",
                    )
                )
            if arm.treatment is not None and arm.treatment.resource not in self.resources:
                problems.append(
                    (
                        f"arms.{i}.treatment.resource",
                        arm.treatment.resource,
                        f"no such resource; defined: {sorted(self.resources) or 'none (add a resources: section)'}",
                    )
                )
        if self.allocation is not None and len(self.allocation) != len(self.arms):
            problems.append(("allocation", self.allocation, f"give one whole number per arm ({len(self.arms)} arms)"))
        if self.primary_endpoint.week not in self.visits_weeks:
            problems.append(
                (
                    "primary_endpoint.week",
                    self.primary_endpoint.week,
                    f"must be a scheduled visit, one of {self.visits_weeks}",
                )
            )
        gaps = [b - a for a, b in zip(self.visits_weeks, self.visits_weeks[1:])]
        if gaps and 2 * self.visit_window_days / 7.0 >= min(gaps):
            problems.append(
                (
                    "visit_window_days",
                    self.visit_window_days,
                    f"windows of ± this many days would let visits {min(gaps):g} weeks apart swap order",
                )
            )
        block = self.recruitment.block_size
        if block is not None and block % sum(self.ratio) != 0:
            problems.append(
                ("recruitment.block_size", block, f"must be a multiple of sum(allocation) = {sum(self.ratio)}")
            )
        problems += self._world_problems()
        if problems:
            raise ConsistencyError(problems)
        return self

    def _world_problems(self) -> list[tuple[str, object, str]]:
        """Cross-field rules of the world model (rater noise, responder calibration, clozapine levels)."""
        problems: list[tuple[str, object, str]] = []
        rater, sd = self.heterogeneity.rater_sd, self.outcome.sd_change
        if 2 * rater * rater >= sd * sd:  # products overflow to inf, powers raise
            problems.append(("heterogeneity.rater_sd", rater, "rater noise at baseline and endpoint (2·rater_sd²) "
                             f"must stay below sd_change² = {sd**2:g}: rater_sd < {sd / 2**0.5:.3g}"))
        control = self.arms[self.control_index] if sum(arm.control for arm in self.arms) == 1 else None
        if control is not None and control.responder_rate is not None:
            if "control_improvement" in self.outcome.model_fields_set:
                problems.append(("outcome.control_improvement", self.outcome.control_improvement,
                                 "the control arm's responder_rate sets the control improvement: give one of them"))
            if control.responder_rate in (0.0, 1.0):
                problems.append((f"arms.{self.control_index}.responder_rate", control.responder_rate,
                                 "must lie strictly between 0 and 1 to calibrate the control improvement"))
        for i, arm in enumerate(self.arms):
            if not arm.control and arm.responder_rate in (0.0, 1.0):
                problems.append((f"arms.{i}.responder_rate", arm.responder_rate,
                                 "must lie strictly between 0 and 1 to calibrate the arm's effect"))
        endpoint = self.primary_endpoint.week
        for i, arm in enumerate(self.arms):
            course = arm.time_course
            if course is not None and course.lag_weeks >= min(endpoint, course.treatment_weeks or endpoint):
                problems.append((f"arms.{i}.time_course.lag_weeks", course.lag_weeks, "the effect must start before "
                                 "the primary endpoint and before the end of treatment"))
        if self.clozapine.eligibility_min_level_ng_ml is not None and self.population.background != "clozapine":
            problems.append(("clozapine.eligibility_min_level_ng_ml", self.clozapine.eligibility_min_level_ng_ml,
                             "a confirmed clozapine level at entry needs patients on clozapine "
                             "(population.background: clozapine)"))
        return problems

    # Derived quantities -------------------------------------------------------------------------------------

    @property
    def sample_sizes(self) -> list[int]:
        """The design points' total sample sizes."""
        return [self.sample_size] if isinstance(self.sample_size, int) else list(self.sample_size)

    @property
    def ratio(self) -> list[int]:
        """Whole-number allocation ratio per arm."""
        if self.allocation is None or len(self.allocation) != len(self.arms):
            return [1] * len(self.arms)
        return list(self.allocation)

    @property
    def control_index(self) -> int:
        """Index of the control arm."""
        return next(i for i, arm in enumerate(self.arms) if arm.control)

    @property
    def endpoint_visit(self) -> int:
        """Index of the primary-endpoint visit in ``visits_weeks``."""
        return self.visits_weeks.index(self.primary_endpoint.week)

    def effects_points(self) -> list[float]:
        """True effect of each arm in PANSS points (0 for control), positive = improvement."""
        sd = self.outcome.sd_change
        return [0.0 if arm.effect is None else arm.effect.in_points(sd) for arm in self.arms]

    def dropout_fractions(self) -> list[float]:
        """Fraction dropped by the primary endpoint, per arm."""
        return [self.dropout.fraction if arm.dropout is None else arm.dropout for arm in self.arms]
