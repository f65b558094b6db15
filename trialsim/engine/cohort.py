"""Virtual patients, drawn before anyone is allocated, then revealed under the arms the randomiser gives them.

:func:`draw_cohort` draws, vectorised over the K trials of a chunk, everything about a trial's patients that does
not depend on their arm: arrival order and site, baseline, visit jitter, the untreated PANSS trajectory (control
improvement, site effect, patient effect, AR(1) residuals), rater noise, and the uniforms that decide dropout and
adverse events. :func:`realise` then computes, for given arms (and treatment start delays), the observed scores,
dropout and adverse events: the patient's potential outcome under the arm they got. Both paths of the engine —
vectorised for fixed designs, event-driven when something interacts — call the same two functions.

Random numbers come from the regions of each trial's stream (:mod:`trialsim.engine.streams`): row i of the patient
regions belongs to the i-th randomised patient whatever the sample size, so patient i is the same person at every
design point and in the point and assurance runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from trialsim.engine.arrivals import SiteDraws, draw_sites
from trialsim.engine.streams import Region, TrialStreams
from trialsim.inference.data import TrialBatch
from trialsim.spec.base import PANSS_SUBSCALE_RANGE, PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Scenario
from trialsim.world import exposure, monitoring, placebo
from trialsim.world.arms import ResolvedArm, adverse_event_names, resolve_arms
from trialsim.world.dropout import exponential_time, hazard_for, outcome_driven_time
from trialsim.world.heterogeneity import effect_multiplier, marginal_multiplier
from trialsim.world.outcome import (
    Trajectory,
    correlated,
    rater_sd,
    response_shape,
    total_trajectory,
    treated_scores,
    true_change_fraction,
    untreated_change,
)
from trialsim.world.population import BASELINE_UNIFORMS, Baseline, draw_baseline
from trialsim.world.time_course import Course
from trialsim.world.truth import control_improvement

#: Dropout reason codes (index into ``TrialBatch.dropout_reasons``); 0 = completed.
WITHDRAWAL, AE_DISCONTINUATION, NEUTROPENIA, MYOCARDITIS = 1, 2, 3, 4


@dataclass(frozen=True)
class VariateLayout:
    """Column blocks of the per-patient variates of a scenario: uniforms (region ``PATIENT_UNIFORMS``), normals
    (``PATIENT_NORMALS``) and optional normals for subscales and rater noise (``PATIENT_EXTRA``, drawn only when
    needed). Adding a component adds columns; it never shifts existing ones."""

    uniform: dict[str, slice]
    normal: dict[str, slice]
    extra: dict[str, slice]

    @classmethod
    def for_scenario(cls, visits: int, adverse_events: int) -> VariateLayout:
        def blocks(sizes: list[tuple[str, int]]) -> dict[str, slice]:
            out, start = {}, 0
            for name, size in sizes:
                out[name] = slice(start, start + size)
                start += size
            return out

        uniform = blocks(
            [
                ("baseline", BASELINE_UNIFORMS),
                ("jitter", visits - 1),
                ("withdrawal", 1),
                ("ae_discontinuation", 1),
                ("ultra_trs", 1),
                ("neutropenia", 2),
                ("ae_occurs", adverse_events),
                ("ae_onset", adverse_events),
                ("exposure", exposure.EXPOSURE_UNIFORMS),
                ("myocarditis", 2),
            ]
        )
        normal = blocks([("total", visits + 1)])
        extra = blocks([("positive", visits + 1), ("negative", visits + 1), ("rater", 3 * visits)])
        return cls(uniform, normal, extra)

    def width(self, kind: str) -> int:
        blocks = {"uniform": self.uniform, "normal": self.normal, "extra": self.extra}[kind]
        return max(s.stop for s in blocks.values())


@dataclass(frozen=True)
class World:
    """What a scenario resolves to once: arms against the evidence library (effects calibrated to stated response
    rates), the control improvement, each arm's time course, the variate layout."""

    arms: list[ResolvedArm]
    adverse_events: list[str]
    layout: VariateLayout
    control_improvement: float
    courses: list[Course]

    @classmethod
    def of(cls, scenario: Scenario) -> World:
        arms = resolve_arms(scenario)
        names = adverse_event_names(arms)
        layout = VariateLayout.for_scenario(len(scenario.visits_weeks), len(names))
        courses = [Course.of(arm, scenario) for arm in scenario.arms]
        return cls(arms, names, layout, control_improvement(scenario), courses)

    def marginal_effect_factor(self, scenario: Scenario) -> np.ndarray:
        """Per arm, the population-average multiplier of the (coupled) nominal effect at the primary endpoint:
        heterogeneity × the arm's course at the endpoint, with clozapine exposure for clozapine-dependent arms
        (closed form over levels, the quit week averaged numerically: :mod:`trialsim.world.exposure`)."""
        endpoint = scenario.primary_endpoint.week
        spec, smoking = scenario.clozapine, scenario.population.smoking_fraction
        factors = []
        for arm, course in zip(scenario.arms, self.courses):
            at_endpoint = float(course(endpoint))
            if arm.clozapine_dependent:
                at_entry, rise = exposure.expected_effect_ratios(spec, smoking)
                at_endpoint = at_entry * at_endpoint + rise * course.mean_after_uniform_start(endpoint, endpoint)
            factors.append(marginal_multiplier(scenario) * at_endpoint)
        return np.asarray(factors)


@dataclass(frozen=True)
class Cohort:
    """K trials × N patients in randomisation order, before allocation (arrays (K, N, ...) unless stated).

    ``untreated`` is each score's change without treatment and without the site effect on control improvement
    (which depends on the site the patient is randomised at, known only once enrolment has run).
    """

    scenario: Scenario
    world: World
    sites: SiteDraws  # (K, sites)
    site_effect: np.ndarray  # (K, sites): site effect on the control improvement (points)
    control_shift: np.ndarray  # (K,): the trial's control improvement minus its mean (points; assurance draws)
    nominal_effect: np.ndarray  # (K, arms, 3): true effect on total, positive, negative (points)
    uniforms: np.ndarray  # (K, N, layout.uniform width)
    baseline: Baseline
    ultra_trs: np.ndarray
    modifier: np.ndarray  # (K, N): the patient's multiplier of any effect (ultra-TRS × severity)
    levels: exposure.Levels  # (K, N): clozapine plasma levels, if the patient is on clozapine
    visit_weeks: np.ndarray  # (K, N, visits) weeks since randomisation
    response: np.ndarray  # (K, N, visits) shape(t) of the response curve at each visit
    untreated: dict[str, np.ndarray]  # score → (K, N, visits)
    rater: np.ndarray | None  # (K, N, 3·visits) rater noise (points): total, positive, negative; or None

    @property
    def trials(self) -> int:
        return int(self.uniforms.shape[0])

    @property
    def patients(self) -> int:
        return int(self.uniforms.shape[1])

    def select(self, trials: np.ndarray | slice) -> Cohort:
        """The cohort of some trials only (views where possible)."""
        take = lambda a: None if a is None else a[trials]  # noqa: E731
        return replace(
            self,
            sites=SiteDraws(self.sites.open_week[trials], self.sites.rate[trials]),
            site_effect=self.site_effect[trials],
            control_shift=self.control_shift[trials],
            nominal_effect=self.nominal_effect[trials],
            uniforms=self.uniforms[trials],
            baseline=Baseline(**{f.name: take(getattr(self.baseline, f.name)) for f in fields(Baseline)}),
            ultra_trs=self.ultra_trs[trials],
            modifier=self.modifier[trials],
            levels=exposure.Levels(*(getattr(self.levels, f.name)[trials] for f in fields(exposure.Levels))),
            visit_weeks=self.visit_weeks[trials],
            response=self.response[trials],
            untreated={name: values[trials] for name, values in self.untreated.items()},
            rater=take(self.rater),
        )


@dataclass(frozen=True)
class Enrolment:
    """Who was randomised where, when and to what, arrays (K, N) in randomisation order.

    ``randomised`` marks the patients actually randomised (False for the tail of a trial that stopped early);
    ``start_delay`` is each patient's wait in weeks from randomisation to the start of their treatment course
    (None without treatment resources); ``screened`` and ``turned_away`` (K,) count screened patients (failures
    included) and patients turned away by full sites, up to the last randomisation.
    """

    site: np.ndarray
    week: np.ndarray
    arm: np.ndarray
    screened: np.ndarray
    randomised: np.ndarray | None = None
    start_delay: np.ndarray | None = None
    turned_away: np.ndarray | None = None


def draw_cohort(
    scenario: Scenario,
    world: World,
    seeds: list[np.random.SeedSequence],
    patients: int,
    *,
    assurance: bool = False,
    subscales: bool = True,
    covariates: bool = True,
) -> tuple[Cohort, list[TrialStreams]]:
    """The arm- and site-independent draws of ``patients`` patients of every trial (one per seed).

    With ``assurance``, each active arm's true effect on the total (and proportionally on the subscales) is drawn
    per trial from its design prior; otherwise it is the arm's point value. ``subscales=False`` skips the positive
    and negative trajectories, ``covariates=False`` the baseline covariates the outcome model does not use
    (subscale baselines, age, sex); every other number is unchanged. Returns the trials' streams too (arrivals and
    the randomiser draw from their own regions of them).
    """
    layout, recruitment = world.layout, scenario.recruitment
    streams = [TrialStreams(seed) for seed in seeds]
    effect_z, site_z, generators = [], [], []
    for trial in streams:
        rng = trial.region(Region.TRIAL)
        effect_z.append(rng.standard_normal(len(scenario.arms)))
        site_z.append(rng.standard_normal(recruitment.sites))
        generators.append(rng)
    sites = draw_sites(recruitment, generators)
    shift_z = [t.region(Region.TRIAL_WORLD).standard_normal() for t in streams]
    shape_u, shape_z = (patients, layout.width("uniform")), (patients, layout.width("normal"))
    u = np.stack([t.region(Region.PATIENT_UNIFORMS).random(shape_u) for t in streams])
    z = np.stack([t.region(Region.PATIENT_NORMALS).standard_normal(shape_z) for t in streams])
    het = scenario.heterogeneity
    x = None
    if subscales or het.rater_sd > 0:
        shape_x = (patients, layout.width("extra"))
        x = np.stack([t.region(Region.PATIENT_EXTRA).standard_normal(shape_x) for t in streams])

    baseline = draw_baseline(scenario.population, u[..., layout.uniform["baseline"]], covariates or subscales)
    endpoint = scenario.primary_endpoint.week
    weeks = _visit_weeks(scenario, u[..., layout.uniform["jitter"]])
    control = world.control_improvement
    z_total = z[..., layout.normal["total"]]
    total = total_trajectory(scenario)
    response = response_shape(weeks, total.onset_weeks, endpoint)
    untreated = {"total": untreated_change(total, baseline.panss_total, control, weeks, response, z_total)}
    if subscales:
        for name, base, share in (
            ("positive", baseline.panss_positive, scenario.subscales.positive_control_share),
            ("negative", baseline.panss_negative, scenario.subscales.negative_control_share),
        ):
            normals = correlated(z_total, x[..., layout.extra[name]], scenario.subscales.correlation_with_total)
            params = _subscale(scenario, name)
            untreated[name] = untreated_change(params, base, control * share, weeks, response, normals)
    ultra_trs = u[..., layout.uniform["ultra_trs"]][..., 0] < het.ultra_trs_fraction
    cohort = Cohort(
        scenario=scenario,
        world=world,
        sites=sites,
        site_effect=het.site_sd * np.asarray(site_z),
        control_shift=placebo.trial_shift(scenario, np.asarray(shift_z), assurance),
        nominal_effect=_true_effects(world, scenario, np.asarray(effect_z), assurance),
        uniforms=u,
        baseline=baseline,
        ultra_trs=ultra_trs,
        modifier=effect_multiplier(scenario, ultra_trs, baseline.panss_total),
        levels=exposure.draw_levels(scenario.clozapine, baseline.smoker, u[..., layout.uniform["exposure"]], endpoint),
        visit_weeks=weeks,
        response=response,
        untreated=untreated,
        rater=None if het.rater_sd == 0 else _rater_noise(scenario, x[..., layout.extra["rater"]]),
    )
    return cohort, streams


def _rater_noise(scenario: Scenario, normals: np.ndarray) -> np.ndarray:
    """Rater noise (points) from standard normals (..., 3·visits): total, positive and negative blocks, each
    with the rater SD of its score (:func:`trialsim.world.outcome.rater_sd`)."""
    visits = len(scenario.visits_weeks)
    sub = scenario.subscales
    scores = (scenario.outcome.sd_change, sub.positive_sd_change, sub.negative_sd_change)
    sds = [rater_sd(scenario, sd) for sd in scores]
    return normals * np.repeat(sds, visits)


def _subscale(scenario: Scenario, name: str) -> Trajectory:
    sub, outcome = scenario.subscales, scenario.outcome
    sd = sub.positive_sd_change if name == "positive" else sub.negative_sd_change
    return Trajectory(
        sd * true_change_fraction(scenario), outcome.onset_weeks, outcome.patient_variance_fraction,
        outcome.visit_correlation, PANSS_SUBSCALE_RANGE
    )


def realise(cohort: Cohort, enrolment: Enrolment) -> TrialBatch:
    """The trials' data when patient i of trial k is randomised at site ``site[k, i]`` in week ``week[k, i]`` to
    arm ``arm[k, i]`` (starting treatment ``start_delay`` weeks later): the patient's potential outcome under that
    arm — observed scores at every visit until dropout, dropout time and reason, adverse events. Patients marked
    not randomised keep their rows (arm index as given) and are masked by the engine."""
    scenario, world = cohort.scenario, cohort.world
    n_visits = len(scenario.visits_weeks)
    u, arm, delay = cohort.uniforms, enrolment.arm, enrolment.start_delay
    weeks = cohort.visit_weeks
    shares = np.array([1.0, scenario.subscales.positive_control_share, scenario.subscales.negative_control_share])
    deviation = cohort.control_shift[:, None] + np.take_along_axis(cohort.site_effect, enrolment.site, axis=1)
    placebo_shift = cohort.response * deviation[..., None]  # extra control improvement at each visit (points)
    effect = _patient_effects(cohort, arm, deviation)  # (K, N, 3)
    course = _courses(cohort, arm, weeks if delay is None else weeks - delay[..., None],
                      cohort.levels.quit_week if delay is None else cohort.levels.quit_week - delay)
    total = treated_scores(total_trajectory(scenario), cohort.baseline.panss_total,
                           cohort.untreated["total"] - placebo_shift, effect[..., :1] * course)
    rater = cohort.rater
    observed_total = total if rater is None else np.clip(total + rater[..., :n_visits], *PANSS_TOTAL_RANGE)
    observed_sub: dict[str, np.ndarray | None] = {"positive": None, "negative": None}
    for k, (name, base) in enumerate(
        (("positive", cohort.baseline.panss_positive), ("negative", cohort.baseline.panss_negative)), start=1
    ):
        if name not in cohort.untreated:
            continue
        scores = treated_scores(_subscale(scenario, name), base, cohort.untreated[name] - shares[k] * placebo_shift,
                                effect[..., k : k + 1] * course)
        if rater is not None:
            scores = np.clip(scores + rater[..., k * n_visits : (k + 1) * n_visits], *PANSS_SUBSCALE_RANGE)
        observed_sub[name] = scores

    clozapine_start = np.zeros(arm.shape) if delay is None else delay
    dropout, reason = _dropout(scenario, world, arm, u, observed_total, total, weeks, clozapine_start)
    last_visit = weeks[..., -1]
    dropout = np.where(dropout < last_visit, dropout, np.inf)
    reason = np.where(np.isfinite(dropout), reason, 0)
    attended = weeks < dropout[..., None]
    attended[..., 0] = True
    on_study = np.minimum(dropout, last_visit)
    randomised = enrolment.week
    leaves = randomised + on_study
    if delay is not None:
        from trialsim.engine.delivery import course_end_weeks

        course_end = course_end_weeks(scenario, arm, delay)
        leaves = np.maximum(leaves, randomised + np.where(np.isfinite(dropout), 0.0, course_end))

    covariates = cohort.baseline.covariates()
    covariates["ultra_trs"] = cohort.ultra_trs
    masked = lambda values: np.where(attended, values, np.nan)  # noqa: E731
    return TrialBatch(
        arm_names=tuple(a.name for a in scenario.arms),
        control=scenario.control_index,
        visit_weeks=np.asarray(scenario.visits_weeks, dtype=float),
        endpoint_visit=scenario.endpoint_visit,
        site=enrolment.site,
        arm=arm,
        randomised_week=randomised,
        baseline=observed_total[..., 0],
        panss=masked(observed_total),
        visit_time=masked(randomised[..., None] + weeks),
        dropout_week=dropout,
        dropout_reason=scenario.dropout.reason,
        covariates=covariates,
        end_week=leaves.max(axis=-1),
        screened=enrolment.screened,
        panss_positive=None if observed_sub["positive"] is None else masked(observed_sub["positive"]),
        panss_negative=None if observed_sub["negative"] is None else masked(observed_sub["negative"]),
        dropout_code=reason,
        dropout_reasons=("", scenario.dropout.reason, "adverse_event", "neutropenia", "myocarditis"),
        true_effect=true_effect(cohort),
        start_delay=delay,
        adverse_events=_adverse_events(cohort, arm, on_study, clozapine_start),
        on_study_weeks=on_study,
        leaves_week=leaves,
        turned_away=enrolment.turned_away,
        randomised=enrolment.randomised,
        site_open_week=cohort.sites.open_week,
    )


def _patient_effects(cohort: Cohort, arm: np.ndarray, deviation: np.ndarray) -> np.ndarray:
    """(K, N, 3) each patient's full effect on total, positive and negative (points): the arm's nominal effect
    times the share left at the placebo deviation of the patient's trial and site (points, (K, N)) and the
    patient's modifiers (:mod:`trialsim.world.placebo`, :mod:`trialsim.world.heterogeneity`)."""
    nominal = np.take_along_axis(cohort.nominal_effect, arm[..., None], axis=1)
    left = placebo.effect_multiplier(cohort.scenario, deviation) * cohort.modifier
    return nominal * left[..., None]


def _courses(cohort: Cohort, arm: np.ndarray, treatment_weeks: np.ndarray, quit_week: np.ndarray) -> np.ndarray:
    """(K, N, visits) the share of each patient's effect reached at each visit (weeks since the start of their
    treatment): the arm's course, and in clozapine-dependent arms the exposure ratio at entry plus its rise from
    the week a smoker stops (:mod:`trialsim.world.time_course`, :mod:`trialsim.world.exposure`)."""
    scenario = cohort.scenario
    out = np.zeros(treatment_weeks.shape)
    spec, levels = scenario.clozapine, cohort.levels
    for a, (spec_arm, course) in enumerate(zip(scenario.arms, cohort.world.courses)):
        mine = arm == a
        if spec_arm.control or not mine.any():
            continue
        values = course(treatment_weeks)
        if spec_arm.clozapine_dependent:
            before = exposure.effect_ratio(spec, levels.entry)[..., None]
            after = exposure.effect_ratio(spec, levels.after_quit)[..., None]
            values = before * values + (after - before) * course(treatment_weeks, np.maximum(quit_week, 0.0)[..., None])
        out = np.where(mine[..., None], values, out)
    return out


def true_effect(cohort: Cohort) -> np.ndarray:
    """(K, arms, 3) each trial's true effect on total, positive and negative (points) at the primary endpoint:
    the population average, so that ``bias`` measures the analysis. The nominal effect times the share left at
    the trial's placebo deviation (averaged over sites) and the arm's average heterogeneity, exposure and course."""
    scenario, world = cohort.scenario, cohort.world
    left = placebo.mean_effect_multiplier(scenario, cohort.control_shift)
    return cohort.nominal_effect * left[:, None, None] * world.marginal_effect_factor(scenario)[None, :, None]


def _true_effects(world: World, scenario: Scenario, effect_z: np.ndarray, assurance: bool) -> np.ndarray:
    """(K, A, 3) nominal effects on total, positive and negative (points) per trial and arm.

    Under assurance an arm with a design prior gets total = prior mean + prior sd · z; its subscale effects keep
    their ratio to the total (or, with a zero point value, the total's SMD).
    """
    point = np.array([[a.effect_total, a.effect_positive, a.effect_negative] for a in world.arms])
    effects = np.broadcast_to(point, (effect_z.shape[0],) + point.shape).copy()
    if not assurance:
        return effects
    sd = np.array(
        [scenario.outcome.sd_change, scenario.subscales.positive_sd_change, scenario.subscales.negative_sd_change]
    )
    for a, arm in enumerate(world.arms):
        if arm.control or arm.prior_mean is None:
            continue
        drawn = arm.prior_mean + arm.prior_sd * effect_z[:, a]
        if arm.effect_total != 0:
            effects[:, a, :] = point[a] * (drawn / arm.effect_total)[:, None]
        else:
            effects[:, a, :] = (drawn / sd[0])[:, None] * sd
    return effects


def _visit_weeks(scenario: Scenario, uniforms: np.ndarray) -> np.ndarray:
    """Actual visit weeks since randomisation: nominal ± visit_window_days (uniform); baseline at 0."""
    nominal = np.asarray(scenario.visits_weeks, dtype=float)
    weeks = np.empty(uniforms.shape[:-1] + (nominal.size,))
    weeks[..., 0] = nominal[0]
    weeks[..., 1:] = nominal[1:] + (2.0 * uniforms - 1.0) * (scenario.visit_window_days / 7.0)
    return weeks


def _dropout(
    scenario: Scenario,
    world: World,
    arm: np.ndarray,
    u: np.ndarray,
    observed_total: np.ndarray,
    true_total: np.ndarray,
    rel_weeks: np.ndarray,
    clozapine_start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Weeks to the first of withdrawal, AE discontinuation, severe neutropenia (found at the next blood test) and
    myocarditis, and its reason code (1–4)."""
    layout, endpoint = world.layout, scenario.primary_endpoint.week
    spec = scenario.dropout
    withdrawal_hazard = hazard_for(scenario.dropout_fractions(), endpoint)[arm]
    u_withdraw = u[..., layout.uniform["withdrawal"]][..., 0]
    if spec.mechanism == "mcar":
        withdrawal = exponential_time(withdrawal_hazard, u_withdraw)
    else:
        reference = observed_total[..., :-1] if spec.mechanism == "mar" else true_total[..., 1:]
        z = (reference - observed_total[..., :1]) / scenario.outcome.sd_change
        withdrawal = outcome_driven_time(withdrawal_hazard, spec.efficacy_log_hazard_ratio, z, rel_weeks, u_withdraw)
    ae_hazard = hazard_for(np.array([a.ae_discontinuation for a in world.arms]), endpoint)[arm]
    ae_stop = exponential_time(ae_hazard, u[..., layout.uniform["ae_discontinuation"]][..., 0])
    timed = _timed_events(scenario, world, arm, u, clozapine_start)
    stops = [timed.get(event, np.full(arm.shape, np.inf)) for event in monitoring.STOPS]
    times = np.stack([withdrawal, ae_stop, *stops], axis=-1)
    return times.min(axis=-1), times.argmin(axis=-1) + 1


def _timed_events(
    scenario: Scenario, world: World, arm: np.ndarray, u: np.ndarray, clozapine_start: np.ndarray
) -> dict[str, np.ndarray]:
    """Weeks from randomisation to clozapine's early adverse events in monitored arms (inf: none): a neutropenia
    (any, found at the next blood test), a severe one (nested in it: the same uniform), myocarditis (at onset);
    incidences are the arm's adverse-event rates, timing :mod:`trialsim.world.monitoring`."""
    layout = world.layout
    u_neutro, u_myo = u[..., layout.uniform["neutropenia"]], u[..., layout.uniform["myocarditis"]]
    events = {name: np.full(arm.shape, np.inf) for name in monitoring.TIMED_EVENTS}
    for a, spec_arm in enumerate(scenario.arms):
        plan = spec_arm.monitoring
        if plan is None:
            continue
        rates = world.arms[a].adverse_events
        mine = arm == a
        found = clozapine_start + monitoring.next_test(plan, monitoring.neutropenia_onset(plan, u_neutro[..., 1]))
        onset = clozapine_start + monitoring.myocarditis_onset(plan, u_myo[..., 1])
        for name, uniform, week in (
            ("neutropenia", u_neutro[..., 0], found),
            ("severe_neutropenia", u_neutro[..., 0], found),
            ("myocarditis", u_myo[..., 0], onset),
        ):
            hit = mine & (uniform < rates.get(name, 0.0))
            events[name] = np.where(hit, week, events[name])
    return events


def _adverse_events(
    cohort: Cohort, arm: np.ndarray, on_study: np.ndarray, clozapine_start: np.ndarray
) -> dict[str, np.ndarray]:
    """Per adverse event, (K, N) flags of patients who had it while in the trial.

    Incidence is by the primary endpoint with onset uniform over the endpoint period (ASSUMPTION), except for
    clozapine's early events in monitored arms (timed by :func:`_timed_events`) and a clozapine level rising above
    the alert level (when a smoker stops smoking, in arms whose patients are on clozapine). An event after a
    patient left the study is not observed.
    """
    scenario, world = cohort.scenario, cohort.world
    u = cohort.uniforms
    occurs = u[..., world.layout.uniform["ae_occurs"]]
    onset = u[..., world.layout.uniform["ae_onset"]] * scenario.primary_endpoint.week
    timed = _timed_events(scenario, world, arm, u, clozapine_start)
    monitored = np.array([a.monitoring is not None for a in scenario.arms])[arm]
    events = {}
    for j, name in enumerate(world.adverse_events):
        rate = np.array([a.adverse_events.get(name, 0.0) for a in world.arms])[arm]
        uniform = (occurs[..., j] < rate) & (onset[..., j] < on_study)
        if name in timed:
            uniform = np.where(monitored, timed[name] <= on_study, uniform)
        events[name] = uniform
    on_clozapine = np.array([exposure.LEVEL_ALERT_EVENT in a.derived_events for a in world.arms])[arm]
    if on_clozapine.any():
        rises = exposure.above_alert(scenario.clozapine, cohort.levels) & (cohort.levels.quit_week < on_study)
        events[exposure.LEVEL_ALERT_EVENT] = on_clozapine & rises
    return events
