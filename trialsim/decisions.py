"""Decision rules applied to posterior quantities: success at the final analysis, efficacy and futility at interim
looks, arm dropping and response-adaptive allocation shares.

Arrays are (trials, comparisons) for the active arms in scenario order (control excluded) unless stated; effects
are positive = improvement. Nothing here simulates: the engine applies what these functions decide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr, ndtri, stdtr

from trialsim.engine.events import CONTINUE, EFFICACY, FUTILITY
from trialsim.exceptions import Problem
from trialsim.inference.conjugate import ComparisonPosterior
from trialsim.spec.adaptive import Adaptation, per_look
from trialsim.spec.plan import AnalysisPlan
from trialsim.spec.scenario import Scenario


def expected_completers(scenario: Scenario, sample_size: int) -> np.ndarray:
    """Expected completers per arm at the final analysis: N × allocation share × (1 − dropout by the endpoint)."""
    ratio = np.asarray(scenario.ratio, dtype=float)
    return sample_size * ratio / ratio.sum() * (1.0 - np.asarray(scenario.dropout_fractions()))


def information_fractions(scenario: Scenario, plan: AnalysisPlan, sample_size: int) -> np.ndarray:
    """Planned information fraction of every analysis (interims, then the final = 1): the plan's own, or
    ``at`` / expected completers at the final analysis for ``completed`` triggers."""
    spending = plan.interim.efficacy.spending if plan.interim and plan.interim.efficacy else None
    if spending is not None and spending.information_fractions is not None:
        return np.asarray(spending.information_fractions)
    total = expected_completers(scenario, sample_size).sum()
    looks = scenario.interim.looks if scenario.interim else []
    if any(look.trigger != "completed" for look in looks):
        raise ValueError("information fractions of non-'completed' looks must be given in the plan")
    return np.array([look.at / total for look in looks] + [1.0])


@dataclass(frozen=True)
class Thresholds:
    """Efficacy thresholds on P(effect > margin): one per interim look (inf = no efficacy stop) and the final."""

    looks: np.ndarray
    final: float

    @classmethod
    def of(cls, scenario: Scenario, plan: AnalysisPlan, sample_size: int) -> Thresholds:
        looks = len(scenario.interim.looks) if scenario.interim else 0
        efficacy = plan.interim.efficacy if plan.interim else None
        if efficacy is None:
            return cls(np.full(looks, np.inf), plan.decision.threshold)
        if efficacy.thresholds is not None:
            return cls(np.asarray(per_look(efficacy.thresholds, looks)), plan.decision.threshold)
        from trialsim.inference.sequential import efficacy_boundaries

        spending = efficacy.spending
        fractions = information_fractions(scenario, plan, sample_size)
        z = efficacy_boundaries(fractions, spending.alpha, spending.function, spending.gamma)
        return cls(ndtr(z[:-1]), float(ndtr(z[-1])))


def adjust_for_multiplicity(
    posterior: ComparisonPosterior, method: str, completers: np.ndarray
) -> ComparisonPosterior:
    """One-sided p-values (p = 1 − ``prob_gt_margin`` of a frequentist plan) adjusted for several active arms
    against one control; returns the posterior with ``prob_gt_margin`` = 1 − adjusted p.

    - ``bonferroni``: min(1, m·p);
    - ``holm``: step-down, p_(i) ↦ max_{j ≤ i} min(1, (m − j + 1)·p_(j)) (Holm 1979);
    - ``dunnett``: 1 − P(max_k Z_k < z_j) for Z ~ N(0, R) with the shared-control correlations
      R_jk = 1/√((1 + n₀/n_j)(1 + n₀/n_k)) from the completers per arm ``completers`` (trials, arms: control
      first), z_j = Φ⁻¹(1 − p_j) (Dunnett 1955 with a normal reference).
    """
    comparisons = posterior.prob_gt_margin.shape[1]
    if method == "none" or comparisons < 2:
        return posterior
    p = 1.0 - posterior.prob_gt_margin
    if method == "bonferroni":
        adjusted = np.minimum(1.0, comparisons * p)
    elif method == "holm":
        order = np.argsort(p, axis=1)
        ranked = np.take_along_axis(p, order, axis=1) * (comparisons - np.arange(comparisons))
        stepped = np.minimum(1.0, np.maximum.accumulate(ranked, axis=1))
        adjusted = np.empty_like(p)
        np.put_along_axis(adjusted, order, stepped, axis=1)
    elif method == "dunnett":
        from scipy.stats import multivariate_normal

        adjusted = np.ones_like(p)
        z = ndtri(np.clip(1.0 - p, 1e-15, 1 - 1e-15))
        for k in range(p.shape[0]):
            n0, n = max(completers[k, 0], 1.0), np.maximum(completers[k, 1:], 1.0)
            share = 1.0 / np.sqrt(1.0 + n0 / n)
            corr = np.outer(share, share)
            np.fill_diagonal(corr, 1.0)
            law = multivariate_normal(np.zeros(comparisons), corr)
            for j in range(comparisons):
                if np.isfinite(z[k, j]):
                    adjusted[k, j] = 1.0 - law.cdf(np.full(comparisons, z[k, j]))
    else:
        raise ValueError(f"unknown multiplicity adjustment {method!r}")
    return replace(posterior, prob_gt_margin=np.where(posterior.valid[:, None], 1.0 - adjusted, 0.0))


def final_success(posterior: ComparisonPosterior, plan: AnalysisPlan, threshold: float) -> np.ndarray:
    """Success at an analysis: P(effect > margin) ≥ threshold (and the clinical criterion when the plan has one)."""
    success = posterior.prob_gt_margin >= threshold
    if posterior.prob_gt_clinical is not None:
        success &= posterior.prob_gt_clinical >= plan.decision.clinical_threshold
    return success & posterior.valid[:, None]


def trusted_fits(extra: dict, arms: tuple[str, ...], plan: AnalysisPlan) -> np.ndarray | None:
    """(trials, comparisons) fits whose decision stands under the plan's ``sampler.failed_fit`` policy: with
    ``no_success`` (default) a fit that failed its diagnostics (``<arm>.diagnostics_ok`` False) cannot succeed;
    ``None`` when nothing is masked (batched engines have no diagnostics, or the policy keeps every decision)."""
    columns = [f"{arm}.diagnostics_ok" for arm in arms]
    if plan.sampler.failed_fit == "keep" or not all(column in extra for column in columns):
        return None
    return np.stack([np.asarray(extra[column], dtype=bool) for column in columns], axis=1)


def prob_greater(posterior: ComparisonPosterior, value: float, margin: float) -> np.ndarray:
    """P(effect > value): exact when ``value`` is the decision margin; the Student-t marginal when the posterior has
    degrees of freedom (conjugate ANCOVA), else a normal approximation N(mean, sd²)."""
    if value == margin:
        return posterior.prob_gt_margin
    df = posterior.df[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = posterior.sd * np.sqrt(np.where(df > 2, (df - 2) / df, 1.0))
        z = (posterior.mean - value) / np.where(np.isfinite(df), scale, posterior.sd)
        prob = np.where(np.isfinite(df), stdtr(np.where(np.isfinite(df), df, 1.0), z), ndtr(z))
    return np.where(posterior.valid[:, None], prob, 0.0)


def conditional_power_now(posterior: ComparisonPosterior, margin: float, fraction: np.ndarray, final: float):
    """Conditional power under the current trend at information fraction ``fraction`` (trials,), with z =
    (mean − margin)/sd and the final critical value Φ⁻¹(final threshold)."""
    from trialsim.inference.sequential import conditional_power

    with np.errstate(invalid="ignore", divide="ignore"):
        z = (posterior.mean - margin) / posterior.sd
    t = np.clip(np.broadcast_to(fraction[:, None], z.shape), 1e-9, 1 - 1e-9)
    return np.where(posterior.valid[:, None], conditional_power(z, t, float(ndtri(final))), 0.0)


def p_best(posterior: ComparisonPosterior, completers: np.ndarray, active: np.ndarray, rng_seeds, draws: int = 2000):
    """P(each active arm has the largest effect), (trials, comparisons), by Monte Carlo from a multivariate normal
    approximation of the posterior: means and SDs as given; correlations from the shared control,
    corr(θ_a, θ_b) = (1/n_c) / √((1/n_a + 1/n_c)(1/n_b + 1/n_c)) with n the completers per arm (completers: (trials,
    arms), control first column of ``active`` order handled by the caller). Closed arms get 0."""
    trials, comparisons = posterior.mean.shape
    out = np.zeros((trials, comparisons))
    for k in range(trials):
        open_ = active[k]
        if not open_.any():
            continue
        n_c, n_a = max(completers[k, 0], 1.0), np.maximum(completers[k, 1:], 1.0)
        v = 1.0 / n_a + 1.0 / n_c
        corr = (1.0 / n_c) / np.sqrt(np.outer(v, v))
        np.fill_diagonal(corr, 1.0)
        sd = np.nan_to_num(posterior.sd[k], nan=1e6)
        cov = corr * np.outer(sd, sd)
        rng = np.random.default_rng(rng_seeds[k])
        sample = rng.multivariate_normal(np.nan_to_num(posterior.mean[k]), cov, size=draws, method="cholesky")
        sample[:, ~open_] = -np.inf
        out[k] = np.bincount(sample.argmax(axis=1), minlength=comparisons) / draws
    return out


def response_adaptive_shares(best: np.ndarray, active: np.ndarray, rule, control_share: float) -> np.ndarray:
    """Allocation shares (trials, arms incl. control first) from P(best) of the active arms (trials, comparisons):
    active share ∝ P(best)^power (renormalised over open arms), control by ``rule.control``, then every open
    active arm raised to at least ``rule.min_allocation`` (the others scaled down to keep the total 1)."""
    weight = np.where(active, np.power(np.maximum(best, 1e-12), rule.power), 0.0)
    n_open = active.sum(axis=1, keepdims=True)
    weight = weight / np.maximum(weight.sum(axis=1, keepdims=True), 1e-300)
    if rule.control == "match_best":
        control = weight.max(axis=1, keepdims=True)
    elif rule.control == "sqrt":
        control = 1.0 / np.sqrt(np.maximum(n_open, 1))
    else:
        control = np.full((best.shape[0], 1), control_share)
    shares = np.concatenate([control, weight], axis=1)
    total = shares.sum(axis=1, keepdims=True)  # 0 when every active arm is closed: no new shares (NaN row)
    shares = np.divide(shares, total, out=np.full_like(shares, np.nan), where=total > 0)
    floor = np.concatenate([np.zeros((best.shape[0], 1), bool), active], axis=1)
    for _ in range(len(shares[0])):
        low = floor & (shares < rule.min_allocation)
        if not low.any():
            break
        deficit = np.where(low, rule.min_allocation - shares, 0.0).sum(axis=1, keepdims=True)
        rest = ~low & (shares > 0)
        scale = 1.0 - deficit / np.maximum(np.where(rest, shares, 0.0).sum(axis=1, keepdims=True), 1e-300)
        shares = np.where(low, rule.min_allocation, np.where(rest, shares * scale, shares))
    return shares


@dataclass(frozen=True)
class LookActions:
    """Decisions of one interim look, arrays over the round's trials."""

    stop: np.ndarray  # (trials,) CONTINUE / EFFICACY / FUTILITY
    crossed: np.ndarray  # (trials, comparisons) efficacy threshold crossed (success if the trial stops here)
    futile: np.ndarray  # (trials, comparisons) a futility rule fired
    drop: np.ndarray  # (trials, arms) arms closed at this look


def look_actions(
    rules: Adaptation,
    prob: np.ndarray,
    threshold: np.ndarray,
    futility: list[np.ndarray],
    futility_limits: list[np.ndarray],
    active: np.ndarray,
    best: np.ndarray | None,
    first_look: np.ndarray,
    control: int,
) -> LookActions:
    """Efficacy, futility, arm dropping and stopping at one look.

    ``prob``: P(effect > margin) (trials, comparisons); ``threshold``: γ_k per trial (trials,); ``futility``: the
    statistics of each futility rule in force, with ``futility_limits`` (per trial) — a rule fires when the
    statistic ≤ its limit; ``active``: open arms (trials, arms); ``best``: P(best) for ``keep_best_only``;
    ``first_look``: (trials,) whether this is the trial's first look.
    """
    open_active = np.delete(active, control, axis=1)
    crossed = (prob >= threshold[:, None]) & open_active
    futile = np.zeros_like(crossed)
    for statistic, limit in zip(futility, futility_limits):
        futile |= statistic <= limit[:, None]
    futile &= open_active & ~crossed
    drop_active = futile if rules.drop_arms else np.zeros_like(futile)
    if rules.keep_best_only and best is not None:
        keep = np.zeros_like(open_active)
        keep[np.arange(keep.shape[0]), np.argmax(np.where(open_active, best, -1.0), axis=1)] = True
        drop_active = drop_active | (first_look[:, None] & open_active & ~keep)
    drop = np.insert(drop_active, control, False, axis=1)
    remaining = open_active & ~drop_active
    if rules.stop_on_efficacy == "any":
        efficacy = crossed.any(axis=1)
    else:
        efficacy = crossed.any(axis=1) & ~(remaining & ~crossed).any(axis=1)
    if rules.drop_arms:
        futility_stop = ~remaining.any(axis=1)
    else:
        futility_stop = (futile | ~open_active).all(axis=1) & open_active.any(axis=1)
    stop = np.where(efficacy, EFFICACY, np.where(futility_stop, FUTILITY, CONTINUE))
    return LookActions(stop=stop, crossed=crossed, futile=futile, drop=drop)


def interim_problems(scenario: Scenario, plan: AnalysisPlan) -> list[Problem]:
    """A design's looks and a plan's interim rules must go together and agree in number."""
    looks, rules = scenario.interim, plan.interim
    plan_file = f"analysis plan '{plan.name}'"
    if looks is None and rules is None:
        return []
    if rules is None:
        return [Problem(plan_file, "interim", "the scenario has interim looks but this plan decides nothing at "
                        "them; give interim rules (efficacy, futility, ...) or remove the scenario's looks")]
    if looks is None:
        return [Problem("", "interim", f"plan '{plan.name}' has interim rules but the scenario has no interim "
                        "looks; add interim.looks to the scenario")]
    problems = []
    count = len(looks.looks)
    for field, value in rules.lists().items():
        if isinstance(value, list) and len(value) != count:
            problems.append(Problem(plan_file, field, f"give {count} values, one per interim look of the "
                                    f"scenario (or a single value)", value, True))
    spending = rules.efficacy.spending if rules.efficacy else None
    if spending is not None:
        fractions = spending.information_fractions
        if fractions is not None and len(fractions) != count + 1:
            problems.append(Problem(plan_file, "interim.efficacy.spending.information_fractions",
                                    f"give {count + 1} fractions: the {count} interim looks and the final (1)",
                                    fractions, True))
        if fractions is None and any(look.trigger != "completed" for look in looks.looks):
            problems.append(Problem(plan_file, "interim.efficacy.spending.information_fractions",
                                    "looks not triggered by completers need planned information fractions"))
    if rules.futility is not None and rules.futility.predictive is not None and plan.model == "responder":
        problems.append(Problem(plan_file, "interim.futility.predictive",
                                "predictive probabilities are implemented for continuous endpoints; use "
                                "futility thresholds on P(effect > margin) for a responder endpoint"))
    if not problems and scenario.interim is not None:
        problems += _planned_fraction_problems(scenario, plan, plan_file)
    return problems


def _planned_fraction_problems(scenario: Scenario, plan: AnalysisPlan, plan_file: str) -> list[Problem]:
    """Every design point's planned information fractions must increase and stay below the final analysis."""
    problems = []
    for size in scenario.sample_sizes:
        try:
            fractions = information_fractions(scenario, plan, size)
        except ValueError:
            continue  # non-completer looks without plan fractions: reported above
        if np.any(np.diff(fractions) <= 0) or fractions[0] <= 0:
            expected = expected_completers(scenario, size).sum()
            problems.append(Problem("", "interim.looks", f"at N = {size} the looks' planned information fractions "
                                    f"{np.round(fractions, 3).tolist()} do not increase to the final analysis "
                                    f"({expected:.0f} expected completers): plan the looks earlier or N larger"))
    return problems
