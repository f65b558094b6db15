"""Physical sanity of a validated scenario: ranges that need several fields or the PANSS scale, checked together.

:func:`scenario_sanity` runs after the schema (``trialsim.spec.loading``), so its problems are reported with the
others. A scenario that breaks one of these rules passes every field's own check yet cannot be simulated
meaningfully: the engine would crash, return NaN, or report a trial lasting millions of years. The rules:

- **Truncation windows.** Baseline PANSS total ~ N(mean, sd) truncated to [inclusion_min_panss, 210], each
  subscale to [7, 49] and age to [min, max]: at least :data:`MIN_WINDOW_MASS` (0.001) of each normal must lie in
  its window, and the baseline SDs of the total and the subscales must be at least :data:`MIN_BASELINE_SD` (one
  point, the scale's resolution). Otherwise every patient gets the same baseline (a constant ANCOVA covariate).
- **Scale widths.** ``outcome.sd_change``, ``|outcome.control_improvement|`` and every arm's ``|effect|`` on the
  total are at most 180 points (210 − 30); subscale SDs of change and ``|effect_positive|``, ``|effect_negative|``
  at most 42 points (49 − 7). A change cannot be larger than its scale.
- **Recruitment horizon.** The approximate median time to randomise max(sample_size)
  (:func:`median_weeks_to_recruit`) must not exceed ``recruitment.horizon_weeks`` (default 1040, 20 years).
- **Recruitment rate and screening.** At most :data:`MAX_RATE_PER_SITE_PER_WEEK` screened per site per week, and
  at most :data:`MAX_SCREENED` patients screened in expectation, max(sample_size) / (1 − screen_failure).
- **Completers.** At the smallest sample size every arm expects at least :data:`MIN_COMPLETERS` completers:
  N × allocation share × (1 − dropout) × (1 − ae_discontinuation given in the scenario).
- **Follow-up.** The last visit is at most :data:`MAX_FOLLOW_UP_WEEKS` after baseline.
"""

from __future__ import annotations

import math

from trialsim.exceptions import Problem
from trialsim.spec.base import PANSS_SUBSCALE_RANGE, PANSS_TOTAL_RANGE
from trialsim.spec.scenario import Recruitment, Scenario

MIN_WINDOW_MASS = 1e-3
MIN_BASELINE_SD = 1.0
MAX_RATE_PER_SITE_PER_WEEK = 1000.0
MAX_SCREENED = 200_000
MIN_COMPLETERS = 2.0
MAX_FOLLOW_UP_WEEKS = 1040.0
WEEKS_PER_YEAR = 52.1775
TOTAL_WIDTH = PANSS_TOTAL_RANGE[1] - PANSS_TOTAL_RANGE[0]
SUBSCALE_WIDTH = PANSS_SUBSCALE_RANGE[1] - PANSS_SUBSCALE_RANGE[0]


def normal_mass(low: float, high: float, mean: float, sd: float) -> float:
    """P(low ≤ X ≤ high) for X ~ N(mean, sd²), accurate far in either tail (differences of the nearer tail)."""
    z_low, z_high = (low - mean) / sd, (high - mean) / sd
    if z_low > 0:  # both bounds in the upper tail: Q(z_low) − Q(z_high)
        return 0.5 * (math.erfc(z_low / math.sqrt(2)) - math.erfc(z_high / math.sqrt(2)))
    return 0.5 * (math.erfc(-z_high / math.sqrt(2)) - math.erfc(-z_low / math.sqrt(2)))


def median_weeks_to_recruit(recruitment: Recruitment, target: int) -> float:
    """Approximate median weeks until ``target`` patients are randomised under the Poisson–gamma model.

    The total screening rate of S sites with rates λ_s ~ Gamma(k = 1/cv², mean λ) is Λ ~ Gamma(S·k, scale λ/k);
    it is set to its median m (m = S·λ when cv = 0) and thinned by screen failures f, R = (1 − f)·m. Sites open
    uniformly in [a, b], so the number randomised by week t is about R·E[(t − A)⁺] with A ~ U(a, b); the
    approximation is the week at which this reaches n = ``target`` (Poisson noise ignored):
    t = (a + b)/2 + n/R if n/R ≥ (b − a)/2, else t = a + √(2(b − a)·n/R).
    """
    from scipy.special import gammaincinv  # here, so that loading files (and `trialsim --version`) stays light

    sites, rate, cv = recruitment.sites, recruitment.rate_per_site_per_week, recruitment.rate_cv
    if cv < 1e-6:  # identical sites, as in the engine
        median_total = sites * rate
    else:
        shape = sites / cv**2
        median_total = float(gammaincinv(shape, 0.5)) * rate * cv**2
    randomised_per_week = (1.0 - recruitment.screen_failure) * median_total  # R (0 if it underflows)
    per_rate = target / randomised_per_week if randomised_per_week > 0 else math.inf  # weeks of full accrual, n/R
    start, end = recruitment.activation_weeks
    if per_rate >= (end - start) / 2:
        return (start + end) / 2 + per_rate
    return start + math.sqrt(2 * (end - start) * per_rate)


def _window_problems(scenario: Scenario) -> list[Problem]:
    population = scenario.population
    total, age = population.baseline_panss, population.age
    windows = [
        (
            "population.inclusion_min_panss",
            population.inclusion_min_panss,
            (population.inclusion_min_panss, PANSS_TOTAL_RANGE[1]),
            (total.mean, total.sd),
            "between the inclusion threshold and the scale maximum 210",
        ),
        ("population.age", None, (age.min, age.max), (age.mean, age.sd), "between age.min and age.max"),
    ]
    for name in ("positive", "negative"):
        sub = getattr(population, name)
        windows.append(
            (f"population.{name}", None, PANSS_SUBSCALE_RANGE, (sub.mean, sub.sd), "within the subscale's 7–49")
        )
    problems = []
    for field, value, (low, high), (mean, sd), where in windows:
        mass = normal_mass(low, high, mean, sd)
        if not mass >= MIN_WINDOW_MASS:
            problems.append(
                Problem(
                    "",
                    field,
                    f"only {mass:.2g} of the distribution N({mean:g}, {sd:g}²) lies {where}; at least "
                    f"{MIN_WINDOW_MASS:g} is needed to draw patients from it (move the mean, the SD or the bounds)",
                    value,
                    value is not None,
                )
            )
    for field, sd in (
        ("population.baseline_panss.sd", total.sd),
        ("population.positive.sd", population.positive.sd),
        ("population.negative.sd", population.negative.sd),
    ):
        if sd < MIN_BASELINE_SD:
            message = f"must be at least {MIN_BASELINE_SD:g} PANSS point (the scale's resolution)"
            problems.append(Problem("", field, message, sd, True))
    return problems


def _scale_problems(scenario: Scenario) -> list[Problem]:
    outcome, subscales = scenario.outcome, scenario.subscales
    checks: list[tuple[str, float, float]] = [
        ("outcome.sd_change", outcome.sd_change, TOTAL_WIDTH),
        ("outcome.control_improvement", outcome.control_improvement, TOTAL_WIDTH),
        ("subscales.positive_sd_change", subscales.positive_sd_change, SUBSCALE_WIDTH),
        ("subscales.negative_sd_change", subscales.negative_sd_change, SUBSCALE_WIDTH),
    ]
    for i, arm in enumerate(scenario.arms):
        for name, effect, sd, width in (
            ("effect", arm.effect, outcome.sd_change, TOTAL_WIDTH),
            ("effect_positive", arm.effect_positive, subscales.positive_sd_change, SUBSCALE_WIDTH),
            ("effect_negative", arm.effect_negative, subscales.negative_sd_change, SUBSCALE_WIDTH),
        ):
            if effect is not None:
                checks.append((f"arms[{i}].{name}", effect.in_points(sd), width))
    return [
        Problem("", field, f"{abs(points):g} points is more than the scale's width ({width:g} points)", points, True)
        for field, points, width in checks
        if abs(points) > width
    ]


def _recruitment_problems(scenario: Scenario) -> list[Problem]:
    recruitment, target = scenario.recruitment, max(scenario.sample_sizes)
    problems = []
    if recruitment.rate_per_site_per_week > MAX_RATE_PER_SITE_PER_WEEK:
        problems.append(
            Problem(
                "",
                "recruitment.rate_per_site_per_week",
                f"must be at most {MAX_RATE_PER_SITE_PER_WEEK:g} patients screened per site per week",
                recruitment.rate_per_site_per_week,
                True,
            )
        )
    screened = target / (1.0 - recruitment.screen_failure)
    if screened > MAX_SCREENED:
        problems.append(
            Problem(
                "",
                "recruitment.screen_failure",
                f"randomising {target} patients would mean screening about {screened:,.0f}; "
                f"at most {MAX_SCREENED:,} can be simulated",
                recruitment.screen_failure,
                True,
            )
        )
    weeks = median_weeks_to_recruit(recruitment, target)
    if not weeks <= recruitment.horizon_weeks:
        start, end = recruitment.activation_weeks
        years = weeks / WEEKS_PER_YEAR
        how_long = f"about {weeks:.3g} weeks ({years:.3g} years; " if math.isfinite(weeks) else "for ever ("
        problems.append(
            Problem(
                "",
                "recruitment",
                f"randomising {target} patients (the largest sample_size) would take {how_long}median under the "
                f"Poisson–gamma model: sites {recruitment.sites} opening over weeks {start:g}–{end:g}, "
                f"{recruitment.rate_per_site_per_week:g} screened per site per week, rate_cv {recruitment.rate_cv:g}, "
                f"screen failure {recruitment.screen_failure:g}), longer than recruitment.horizon_weeks = "
                f"{recruitment.horizon_weeks:g}: add sites, raise the rate or extend the horizon",
            )
        )
    return problems


def _completer_problems(scenario: Scenario) -> list[Problem]:
    size, ratio = min(scenario.sample_sizes), scenario.ratio
    problems = []
    for i, (arm, dropout) in enumerate(zip(scenario.arms, scenario.dropout_fractions())):
        stay = (1.0 - dropout) * (1.0 - (arm.ae_discontinuation or 0.0))
        completers = size * ratio[i] / sum(ratio) * stay
        if completers < MIN_COMPLETERS:
            problems.append(
                Problem(
                    "",
                    f"arms[{i}]",
                    f"arm '{arm.name}' would have about {completers:.2g} completers at sample size {size} "
                    f"(allocation share {ratio[i]}/{sum(ratio)}, {stay:.2g} staying to the endpoint); at least "
                    f"{MIN_COMPLETERS:g} per arm are needed to analyse a trial",
                )
            )
    return problems


def _follow_up_problems(scenario: Scenario) -> list[Problem]:
    last = scenario.visits_weeks[-1]
    if last > MAX_FOLLOW_UP_WEEKS:
        return [Problem("", "visits_weeks", f"the last visit must be at most week {MAX_FOLLOW_UP_WEEKS:g}", last, True)]
    return []


def scenario_sanity(scenario: Scenario) -> list[Problem]:
    """Every physical-sanity problem of a schema-valid scenario (see the module docstring); file names left empty."""
    return (
        _window_problems(scenario)
        + _scale_problems(scenario)
        + _recruitment_problems(scenario)
        + _completer_problems(scenario)
        + _follow_up_problems(scenario)
    )
