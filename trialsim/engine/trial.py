"""Simulated trials: recruitment on the simpy clock (per trial), then baseline, outcomes, adverse events and
follow-up vectorised over all trials of a batch.

Every random number of trial k comes from its own generator, seeded by the trial's child seed, in a fixed order:
the arms' assurance draws, one block of uniforms and one of normals per patient in fixed columns (see
:class:`VariateLayout`), the sites' random effects, and finally recruitment, whose number of draws varies. A change
in one component therefore never shifts another's draws, the point and assurance runs share their patients
(common random numbers), and a batch of K trials gives the same numbers as K batches of one. (One generator per
trial, not one per component: each costs ≈ 30 µs to create.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.engine.recruitment import Enrolment, recruit
from trialsim.inference.data import TrialBatch, TrialData
from trialsim.spec.base import PANSS_SUBSCALE_RANGE, PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Scenario
from trialsim.world.arms import ResolvedArm, adverse_event_names, resolve_arms
from trialsim.world.dropout import exponential_time, hazard_for, outcome_driven_time
from trialsim.world.outcome import Trajectory, correlated, draw_scores, total_trajectory
from trialsim.world.population import BASELINE_UNIFORMS, draw_baseline


@dataclass(frozen=True)
class VariateLayout:
    """Column blocks of the per-patient variates of a scenario: uniforms and normals from the trial's generator,
    and the optional normals (subscale trajectories, rater noise) from a second generator of the same trial seed
    that is only created when they are needed (so skipping them changes no other number)."""

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
    """What a scenario resolves to once (arms against the evidence library, variate layout)."""

    arms: list[ResolvedArm]
    adverse_events: list[str]
    layout: VariateLayout

    @classmethod
    def of(cls, scenario: Scenario) -> World:
        arms = resolve_arms(scenario)
        names = adverse_event_names(arms)
        return cls(arms, names, VariateLayout.for_scenario(len(scenario.visits_weeks), len(names)))

    def marginal_effect_factor(self, scenario: Scenario) -> np.ndarray:
        """Per arm, the population-average multiplier of the nominal effect from heterogeneity."""
        het = scenario.heterogeneity
        ultra = (1 - het.ultra_trs_fraction) + het.ultra_trs_fraction * het.ultra_trs_effect_ratio
        smoke = scenario.population.smoking_fraction
        factors = []
        for arm in scenario.arms:
            smoking = (1 - smoke) + smoke * het.smoker_exposure_ratio if arm.clozapine_dependent else 1.0
            factors.append(ultra * smoking)
        return np.asarray(factors)


#: Second spawn-key element of the optional-variates stream (the analysis stream of a trial uses 1).
EXTRA_STREAM = 2


def simulate_trials(
    scenario: Scenario,
    sample_size: int,
    seeds: list[np.random.SeedSequence],
    *,
    world: World | None = None,
    assurance: bool = False,
    subscales: bool = True,
    log: bool = False,
) -> tuple[TrialBatch, list[Enrolment]]:
    """Simulate one trial per seed, each with ``sample_size`` randomised patients.

    With ``assurance``, each active arm's true effect on the total (and proportionally on the subscales) is drawn
    per trial from its design prior; otherwise it is the arm's point value. ``subscales=False`` skips the positive
    and negative trajectories (their variates are still drawn, so every other number is unchanged).
    """
    world = world or World.of(scenario)
    layout = world.layout
    n_visits, n_arms = len(scenario.visits_weeks), len(scenario.arms)
    with_resources = any(a.treatment is not None for a in scenario.arms)
    if with_resources:
        from trialsim.engine.delivery import course_end_weeks, recruit_with_delivery
    het = scenario.heterogeneity
    need_extra = subscales or het.rater_sd > 0
    enrolments, effect_z, uniforms, normals, extras, site_z = [], [], [], [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        effect_z.append(rng.standard_normal(n_arms))
        uniforms.append(rng.random((sample_size, layout.width("uniform"))))
        normals.append(rng.standard_normal((sample_size, layout.width("normal"))))
        if need_extra:
            extra_seed = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key + (EXTRA_STREAM,))
            extras.append(np.random.default_rng(extra_seed).standard_normal((sample_size, layout.width("extra"))))
        site_z.append(rng.standard_normal(scenario.recruitment.sites))
        if with_resources:
            enrolments.append(recruit_with_delivery(scenario, sample_size, rng, log=log))
        else:
            enrolments.append(recruit(scenario.recruitment, scenario.ratio, sample_size, rng, log=log))
    u, z = np.stack(uniforms), np.stack(normals)
    x = np.stack(extras) if need_extra else None
    arm = np.stack([e.arm for e in enrolments])
    site = np.stack([e.site for e in enrolments])
    randomised = np.stack([e.week for e in enrolments])
    delay = np.stack([e.start_delay for e in enrolments]) if with_resources else None

    # True effects per trial and arm (points), then per patient with heterogeneity.
    nominal = _true_effects(world, scenario, np.stack(effect_z), assurance)  # (K, A, 3): total, positive, negative
    ultra = u[..., layout.uniform["ultra_trs"]][..., 0] < het.ultra_trs_fraction
    baseline = draw_baseline(scenario.population, u[..., layout.uniform["baseline"]])
    dependent = np.array([a.clozapine_dependent for a in scenario.arms])[arm]
    multiplier = np.where(ultra, het.ultra_trs_effect_ratio, 1.0) * np.where(
        dependent & baseline.smoker, het.smoker_exposure_ratio, 1.0
    )
    patient_effect = np.take_along_axis(nominal, arm[..., None], axis=1) * multiplier[..., None]  # (K, N, 3)

    endpoint_week = scenario.primary_endpoint.week
    rel_weeks = _visit_weeks(scenario, u[..., layout.uniform["jitter"]])
    control = scenario.outcome.control_improvement + het.site_sd * np.take_along_axis(np.stack(site_z), site, axis=1)
    outcome = scenario.outcome
    total_params = total_trajectory(scenario)
    z_total = z[..., layout.normal["total"]]
    total = draw_scores(
        total_params, baseline.panss_total, control, patient_effect[..., 0], rel_weeks, endpoint_week, z_total, delay
    )
    rater = x[..., layout.extra["rater"]] * het.rater_sd if need_extra else None
    observed_total = np.clip(total + rater[..., :n_visits], *PANSS_TOTAL_RANGE) if het.rater_sd else total
    observed_sub: dict[str, np.ndarray | None] = {"positive": None, "negative": None}
    if subscales:
        sub = scenario.subscales
        for k, (name, sd, share, base) in enumerate(
            (
                ("positive", sub.positive_sd_change, sub.positive_control_share, baseline.panss_positive),
                ("negative", sub.negative_sd_change, sub.negative_control_share, baseline.panss_negative),
            ),
            start=1,
        ):
            params = Trajectory(
                sd,
                outcome.onset_weeks,
                outcome.patient_variance_fraction,
                outcome.visit_correlation,
                PANSS_SUBSCALE_RANGE,
            )
            normals_k = correlated(z_total, x[..., layout.extra[name]], sub.correlation_with_total)
            scores = draw_scores(
                params, base, control * share, patient_effect[..., k], rel_weeks, endpoint_week, normals_k, delay
            )
            noise = rater[..., k * n_visits : (k + 1) * n_visits]
            observed_sub[name] = np.clip(scores + noise, *PANSS_SUBSCALE_RANGE) if het.rater_sd else scores

    dropout, reason = _dropout(scenario, world, arm, u, observed_total, total, rel_weeks)
    last_visit = rel_weeks[..., -1]
    dropout = np.where(dropout < last_visit, dropout, np.inf)
    reason = np.where(np.isfinite(dropout), reason, 0)
    attended = rel_weeks < dropout[..., None]
    attended[..., 0] = True
    on_study = np.minimum(dropout, last_visit)
    leaves = randomised + on_study
    if with_resources:
        course_end = course_end_weeks(scenario, arm, delay)
        leaves = np.maximum(leaves, randomised + np.where(np.isfinite(dropout), 0.0, course_end))

    covariates = baseline.covariates()
    covariates["ultra_trs"] = ultra
    masked = lambda values: np.where(attended, values, np.nan)  # noqa: E731
    batch = TrialBatch(
        arm_names=tuple(a.name for a in scenario.arms),
        control=scenario.control_index,
        visit_weeks=np.asarray(scenario.visits_weeks, dtype=float),
        endpoint_visit=scenario.endpoint_visit,
        site=site,
        arm=arm,
        randomised_week=randomised,
        baseline=observed_total[..., 0],
        panss=masked(observed_total),
        visit_time=masked(randomised[..., None] + rel_weeks),
        dropout_week=dropout,
        dropout_reason=scenario.dropout.reason,
        covariates=covariates,
        end_week=leaves.max(axis=-1),
        screened=np.array([e.screened for e in enrolments]),
        panss_positive=None if observed_sub["positive"] is None else masked(observed_sub["positive"]),
        panss_negative=None if observed_sub["negative"] is None else masked(observed_sub["negative"]),
        dropout_code=reason,
        dropout_reasons=("", scenario.dropout.reason, "adverse_event", "neutropenia"),
        true_effect=nominal * world.marginal_effect_factor(scenario)[None, :, None],
        start_delay=delay,
        adverse_events=_adverse_events(world, arm, u, dropout, endpoint_week),
        on_study_weeks=on_study,
    )
    if log:
        for k, enrolment in enumerate(enrolments):
            _log_follow_up(enrolment, batch.trial(k), leaves[k])
    return batch, enrolments


def simulate_trial(
    scenario: Scenario, sample_size: int, seed: np.random.SeedSequence, *, log: bool = False
) -> tuple[TrialData, Enrolment]:
    """Simulate one trial of ``sample_size`` randomised patients; returns its data and its enrolment record."""
    batch, enrolments = simulate_trials(scenario, sample_size, [seed], log=log)
    return batch.trial(0), enrolments[0]


def _log_follow_up(enrolment: Enrolment, data: TrialData, leaves: np.ndarray) -> None:
    """Append visit, dropout and completion events to the enrolment log, in time order."""
    assert enrolment.log is not None
    events = []
    for i in range(data.n):
        site = int(data.site[i])
        for j in range(1, data.visit_weeks.size):
            if not np.isnan(data.visit_time[i, j]):
                events.append((float(data.visit_time[i, j]), f"visit_w{data.visit_weeks[j]:g}", site, i))
        events.append((float(leaves[i]), "dropout" if data.dropout_reason[i] else "completed", site, i))
    enrolment.log.extend(sorted(events, key=lambda e: (e[0], e[3])))


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
) -> tuple[np.ndarray, np.ndarray]:
    """Weeks to the first of withdrawal, AE discontinuation and neutropenia, and its reason code (1, 2, 3)."""
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
    neutropenia = np.full(arm.shape, np.inf)
    u_neutro = u[..., layout.uniform["neutropenia"]]
    for a, spec_arm in enumerate(scenario.arms):
        if spec_arm.monitoring is None:
            continue
        risk, (start, stop) = spec_arm.monitoring.neutropenia_risk, spec_arm.monitoring.risk_window_weeks
        hit = (arm == a) & (u_neutro[..., 0] < risk)
        neutropenia = np.where(hit, start + (stop - start) * u_neutro[..., 1], neutropenia)
    times = np.stack([withdrawal, ae_stop, neutropenia], axis=-1)
    return times.min(axis=-1), times.argmin(axis=-1) + 1


def _adverse_events(
    world: World, arm: np.ndarray, u: np.ndarray, dropout: np.ndarray, endpoint_week: float
) -> dict[str, np.ndarray]:
    """Per adverse event, (K, N) flags of patients who had it while in the trial.

    Incidence is by the primary endpoint; onset is uniform over the endpoint period (ASSUMPTION), so an event
    after a patient's dropout is not observed.
    """
    occurs = u[..., world.layout.uniform["ae_occurs"]]
    onset = u[..., world.layout.uniform["ae_onset"]] * endpoint_week
    events = {}
    for j, name in enumerate(world.adverse_events):
        rate = np.array([a.adverse_events.get(name, 0.0) for a in world.arms])[arm]
        events[name] = (occurs[..., j] < rate) & (onset[..., j] < dropout)
    return events
