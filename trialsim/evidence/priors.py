"""Design priors on the true effect (SMD, positive = improvement) from the evidence library.

Documented rules turn evidence into a design prior ``Normal(mean_smd, sd_smd)``:

* **Design default first.** Where an entry gives a ``design_default`` for the outcome (a judged value that
  replaces an estimate that does not fit a TRS design, or stands in for a missing one), its mean is used as is.
* **Certainty -> width** (:func:`prior_sd`): ``sd = max(f_c * s, SD_FLOOR)``, where ``s`` is the standard
  error of the evidence (printed SE, or (upper - lower) / (2 * 1.96) from its 95% interval, or
  ``NO_INTERVAL_SD`` = 0.2 SMD when neither is given) and ``f_c`` the GRADE certainty factor: high 1.0,
  moderate 1.25, low 1.5, very low 2.0, not graded 2.0. A confidence interval only carries sampling error;
  GRADE downgrades (risk of bias, inconsistency, publication bias) are not in it, so each level down widens the
  prior; ungraded evidence is treated like very low certainty because nobody vouches for it. The floor
  (0.05 SMD) keeps a narrow interval from turning the design prior into a point mass.
* **Weak evidence is shrunk** (:data:`WEAK_CERTAINTIES`: low, very low, not graded): the estimate is multiplied
  by ``SMALL_STUDY_DISCOUNT`` = 0.38 / 0.47 = 0.809, the ratio by which accounting for small-trial effects and
  publication bias reduced the drug-placebo SMD of 167 antipsychotic trials (Leucht et al., Am J Psychiatry
  2017;174:927-942). High and moderate certainty estimates are used unshrunk.
* **Implausible effects are shrunk harder** (:func:`is_implausible`, :func:`shrink_implausible`): an estimate
  with |SMD| > 1.0 from weak evidence is far above what established treatments achieve (clozapine vs other
  antipsychotics in TRS g = 0.34, Mizuno et al. 2020; antipsychotics vs placebo 0.47, Leucht et al. 2017), so a
  warning is issued and it is replaced by a skeptical posterior (its mean and sd). That posterior is always
  smaller than the discount would give (|mean| < 0.49 < 0.809 x 1.0): the more conservative rule applies.
* **Indirect evidence widens the prior** (:func:`indirectness_steps`): when the trial's background treatment
  (``background``: on clozapine, TRS not on clozapine, not TRS) differs from the population of the evidence, the
  sd is multiplied by ``INDIRECTNESS_SD_FACTOR`` = 1.5 per step between the two in that order, as GRADE rates
  certainty down for indirect populations (Guyatt et al., J Clin Epidemiol 2011;64:1303-1310); the factor is an
  ASSUMPTION, chosen equal to the width factor of low certainty evidence. An :class:`EvidenceWarning` says so.

Every adjustment is listed in :attr:`NormalPrior.adjustments` (short texts, also shown per arm by the CLI).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from trialsim.evidence.models import BACKGROUNDS, Effect, Intervention
from trialsim.exceptions import StatisticalWarning

CERTAINTY_FACTOR: dict[str, float] = {"high": 1.0, "moderate": 1.25, "low": 1.5, "very_low": 2.0, "not_graded": 2.0}
WEAK_CERTAINTIES = frozenset({"low", "very_low", "not_graded"})
NO_INTERVAL_SD = 0.2  # SMD; base SE when the evidence gives neither an interval nor an SE
SD_FLOOR = 0.05  # SMD
SMALL_STUDY_DISCOUNT = 0.38 / 0.47  # Leucht et al. 2017: SMD 0.47, 0.38 after small-trial and publication bias
IMPLAUSIBLE_SMD = 1.0  # |SMD| above which weak evidence is implausible
SKEPTICAL_SD = 0.5  # SMD; sd of the skeptical N(0, 0.5^2) prior, the scale of antipsychotic-class effects
JUST_SIGNIFICANT_Z = 1.96
INDIRECTNESS_SD_FACTOR = 1.5  # per step of indirectness (ASSUMPTION: the low-certainty width factor)
BACKGROUND_LABELS = {"clozapine": "on clozapine", "trs_not_on_clozapine": "TRS off clozapine", "not_trs": "not TRS"}


class EvidenceWarning(StatisticalWarning):
    """Evidence of doubtful plausibility or from another population was used (after adjustment) as a design value."""


@dataclass(frozen=True)
class NormalPrior:
    """Normal design prior on the true effect: ``Normal(mean_smd, sd_smd**2)``, SMD, positive = improvement.

    ``sd_smd == 0`` is a point mass (control arms). ``basis`` says where the numbers come from; ``raw_smd`` is the
    library's recorded estimate (SMD, project convention; None without one), ``certainty`` the certainty that set
    the width, and ``adjustments`` the short reasons why the mean or sd differ from the raw estimate.
    """

    mean_smd: float
    sd_smd: float
    basis: str = ""
    raw_smd: float | None = None
    certainty: str | None = None
    adjustments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean_smd) and math.isfinite(self.sd_smd) and self.sd_smd >= 0):
            raise ValueError(f"NormalPrior needs a finite mean and sd >= 0, got ({self.mean_smd}, {self.sd_smd})")


def prior_sd(standard_error: float | None, certainty: str) -> float:
    """Design-prior sd (SMD): ``max(CERTAINTY_FACTOR[certainty] * s, SD_FLOOR)``, ``s = standard_error or 0.2``."""
    base = NO_INTERVAL_SD if standard_error is None else standard_error
    return max(CERTAINTY_FACTOR[certainty] * base, SD_FLOOR)


def is_implausible(smd: float, certainty: str) -> bool:
    """True when ``|smd| > IMPLAUSIBLE_SMD`` (1.0) and the certainty is low, very low or not graded."""
    return abs(smd) > IMPLAUSIBLE_SMD and certainty in WEAK_CERTAINTIES


def shrink_implausible(smd: float, standard_error: float | None = None) -> NormalPrior:
    """Skeptical normal-normal shrinkage of an implausible effect towards 0 (SMD).

    Rule: prior ``N(0, tau^2)`` with ``tau = SKEPTICAL_SD = 0.5``; likelihood ``N(smd, s^2)`` with the standard
    error inflated so that the estimate counts as at most just significant, ``s = max(SE, |smd| / 1.96)``
    (implausibly large small-study effects are typically selected for significance; without an interval
    this is the only reading available). Posterior: ``mean = smd * tau^2 / (tau^2 + s^2)``,
    ``sd = sqrt(tau^2 s^2 / (tau^2 + s^2))``. The shrunk mean keeps the sign, is smaller than ``|smd|`` and
    never exceeds ``0.98 * tau`` ≈ 0.49 SMD in absolute value. Example: glycine-site agonists g = 1.17
    [0.59, 1.75] give s = 0.597 and ``N(0.482, 0.383^2)``.
    """
    se = max(standard_error or 0.0, abs(smd) / JUST_SIGNIFICANT_Z)
    tau2, s2 = SKEPTICAL_SD**2, se**2
    return NormalPrior(
        mean_smd=smd * tau2 / (tau2 + s2),
        sd_smd=math.sqrt(tau2 * s2 / (tau2 + s2)),
        basis=f"skeptical shrinkage of implausible SMD {smd:+.3f} (prior N(0, {SKEPTICAL_SD}^2), SE {se:.3f})",
    )


def indirectness_steps(evidence: str, trial: str) -> int:
    """Steps between the evidence's population and the trial's background in :data:`BACKGROUNDS` order."""
    return abs(BACKGROUNDS.index(evidence) - BACKGROUNDS.index(trial))


def design_prior(
    entry: Intervention, outcome: str = "panss_total", control: str | None = None, background: str | None = None
) -> NormalPrior:
    """Design prior on the true effect of ``entry`` on ``outcome`` against ``control`` (SMD, + = improvement).

    ``control`` defaults to the entry's comparator; it must be one of ``entry.contexts`` (e.g. ``"sham"`` or
    ``"treatment_as_usual"`` for ECT), otherwise :class:`~trialsim.exceptions.ScenarioError`. A control entry
    gives ``N(0, 0)``. Otherwise the design default for the outcome, else the recorded estimate shrunk by the rules
    of this module; ``background`` (the trial's background treatment, one of :data:`BACKGROUNDS`) widens the sd
    when the evidence comes from another population; ``None`` skips that check. An implausible estimate or
    indirect evidence issues one :class:`EvidenceWarning`. A missing outcome raises
    :class:`~trialsim.exceptions.ScenarioError` listing the recorded ones.
    """
    context = entry.context(control)
    control = control or entry.comparator
    if entry.is_control:
        return NormalPrior(0.0, 0.0, basis=f"{entry.name} is a control arm: effect 0 by definition")
    effect = context.effects.get(outcome)  # type: ignore[call-overload]
    default = context.design_default.get(outcome)  # type: ignore[call-overload]
    if default is None:
        effect = entry.effect(outcome, control)  # the error lists the recorded outcomes
    raw = None if effect is None else effect.smd
    adjustments = [] if effect is None or effect.unit == "SMD" else [_conversion(effect)]
    concerns = []
    if default is not None:
        certainty = entry.certainty
        mean, sd = default.mean, prior_sd(default.standard_error, certainty)
        basis = f"design default ({default.status}, {certainty}): {default.basis}"
        adjustments.append(f"design default ({default.status})")
    else:
        certainty = effect.certainty or entry.certainty
        mean, sd = effect.smd, prior_sd(effect.standard_error, certainty)
        basis = f"{effect.measure} {effect.smd:+.3f} ({effect.status}, {certainty})"
        if is_implausible(effect.smd, certainty):
            shrunk = shrink_implausible(effect.smd, effect.standard_error)
            mean, sd, basis = shrunk.mean_smd, shrunk.sd_smd, shrunk.basis
            adjustments.append(f"shrunk: implausible ({_words(certainty)}; skeptical N(0, {SKEPTICAL_SD}²) posterior)")
            concerns.append(f"SMD {effect.smd:+.3f} ({_words(certainty)}) is implausible (|SMD| > 1)")
        elif certainty in WEAK_CERTAINTIES:
            mean *= SMALL_STUDY_DISCOUNT
            basis += f" × {SMALL_STUDY_DISCOUNT:.3f} (small-study discount, Leucht et al. 2017)"
            adjustments.append(f"shrunk ×{SMALL_STUDY_DISCOUNT:.2f} ({_words(certainty)}; small-study discount)")
    evidence = str(entry.background)  # every active entry records it
    steps = 0 if background is None else indirectness_steps(evidence, background)
    if steps:
        factor = INDIRECTNESS_SD_FACTOR**steps
        sd *= factor
        adjustments.append(
            f"indirect: {BACKGROUND_LABELS[evidence]} (evidence; trial {BACKGROUND_LABELS[background]}; sd ×{factor:g})"
        )
        concerns.append(
            f"evidence population {BACKGROUND_LABELS[evidence]}, trial background {BACKGROUND_LABELS[background]} "
            f"({steps} step{'s' * (steps > 1)} of indirectness)"
        )
    if concerns:
        warnings.warn(
            EvidenceWarning(
                f"{entry.name}: {outcome} vs {control}: {'; '.join(concerns)}; the design prior is "
                f"N({mean:.3f}, {sd:.3f}^2) ({'; '.join(adjustments)})"
            ),
            stacklevel=2,
        )
    return NormalPrior(mean, sd, basis=basis, raw_smd=raw, certainty=certainty, adjustments=tuple(adjustments))


def _conversion(effect: Effect) -> str:
    return f"from points ({effect.value:+.2f} / SD {effect.sd_change:g})"


def _words(certainty: str) -> str:
    return certainty.replace("_", " ") + ("" if certainty == "not_graded" else " certainty")
