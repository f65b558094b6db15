"""Design priors on the true effect (SMD, positive = improvement) from the evidence library.

Two documented rules turn evidence into a design prior ``Normal(mean_smd, sd_smd)``:

* **Certainty -> width** (:func:`prior_sd`): ``sd = max(f_c * s, SD_FLOOR)``, where ``s`` is the standard
  error of the evidence (printed SE, or (upper - lower) / (2 * 1.96) from its 95% interval, or
  ``NO_INTERVAL_SD`` = 0.2 SMD when neither is given) and ``f_c`` the GRADE certainty factor: high 1.0,
  moderate 1.25, low 1.5, very low 2.0, not graded 2.0. A confidence interval only carries sampling error;
  GRADE downgrades (risk of bias, inconsistency, indirectness such as acute non-TRS populations, publication
  bias) are not in it, so each level down widens the prior; ungraded evidence is treated like very low
  certainty because nobody vouches for it. The floor (0.05 SMD) keeps a narrow interval from turning the
  design prior into a point mass.
* **Implausible effects are shrunk** (:func:`is_implausible`, :func:`shrink_implausible`): an effect with
  |SMD| > 1.0 from low, very-low or ungraded evidence is far above what established treatments achieve in the
  seed evidence (xanomeline-trospium acute d = 0.65, clozapine vs other antipsychotics in TRS g = 0.34), so it
  never drives a design unchanged: a warning is issued and it is replaced by a skeptical posterior (its mean
  and sd; no further certainty inflation, since the skeptical prior already bounds the sd by 0.5 SMD).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from trialsim.evidence.models import Intervention
from trialsim.exceptions import StatisticalWarning

CERTAINTY_FACTOR: dict[str, float] = {"high": 1.0, "moderate": 1.25, "low": 1.5, "very_low": 2.0, "not_graded": 2.0}
NO_INTERVAL_SD = 0.2  # SMD; base SE when the evidence gives neither an interval nor an SE
SD_FLOOR = 0.05  # SMD
IMPLAUSIBLE_SMD = 1.0  # |SMD| above which weak evidence is implausible
SKEPTICAL_SD = 0.5  # SMD; sd of the skeptical N(0, 0.5^2) prior, the scale of antipsychotic-class effects
JUST_SIGNIFICANT_Z = 1.96
_WEAK_CERTAINTY = frozenset({"low", "very_low", "not_graded"})


class EvidenceWarning(StatisticalWarning):
    """Evidence of doubtful plausibility was used (after shrinkage) as a design value."""


@dataclass(frozen=True)
class NormalPrior:
    """Normal design prior on the true effect: ``Normal(mean_smd, sd_smd**2)``, SMD, positive = improvement.

    ``sd_smd == 0`` is a point mass (control arms). ``basis`` says where the numbers come from.
    """

    mean_smd: float
    sd_smd: float
    basis: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean_smd) and math.isfinite(self.sd_smd) and self.sd_smd >= 0):
            raise ValueError(f"NormalPrior needs a finite mean and sd >= 0, got ({self.mean_smd}, {self.sd_smd})")


def prior_sd(standard_error: float | None, certainty: str) -> float:
    """Design-prior sd (SMD): ``max(CERTAINTY_FACTOR[certainty] * s, SD_FLOOR)``, ``s = standard_error or 0.2``."""
    base = NO_INTERVAL_SD if standard_error is None else standard_error
    return max(CERTAINTY_FACTOR[certainty] * base, SD_FLOOR)


def is_implausible(smd: float, certainty: str) -> bool:
    """True when ``|smd| > IMPLAUSIBLE_SMD`` (1.0) and the certainty is low, very low or not graded."""
    return abs(smd) > IMPLAUSIBLE_SMD and certainty in _WEAK_CERTAINTY


def shrink_implausible(smd: float, standard_error: float | None = None) -> NormalPrior:
    """Skeptical normal-normal shrinkage of an implausible effect towards 0 (SMD).

    Rule: prior ``N(0, tau^2)`` with ``tau = SKEPTICAL_SD = 0.5``; likelihood ``N(smd, s^2)`` with the standard
    error inflated so that the estimate counts as at most just significant, ``s = max(SE, |smd| / 1.96)``
    (implausibly large small-study effects are typically selected for significance; without an interval
    this is the only reading available). Posterior: ``mean = smd * tau^2 / (tau^2 + s^2)``,
    ``sd = sqrt(tau^2 s^2 / (tau^2 + s^2))``. The shrunk mean keeps the sign, is smaller than ``|smd|`` and
    never exceeds ``0.98 * tau`` ≈ 0.49 SMD in absolute value. Example: mirtazapine g = 5.265 (no SE) gives
    s = 2.686 and ``N(0.176, 0.492^2)``.
    """
    se = max(standard_error or 0.0, abs(smd) / JUST_SIGNIFICANT_Z)
    tau2, s2 = SKEPTICAL_SD**2, se**2
    return NormalPrior(
        mean_smd=smd * tau2 / (tau2 + s2),
        sd_smd=math.sqrt(tau2 * s2 / (tau2 + s2)),
        basis=f"skeptical shrinkage of implausible SMD {smd:+.3f} (prior N(0, {SKEPTICAL_SD}^2), SE {se:.3f})",
    )


def design_prior(entry: Intervention, outcome: str = "panss_total", control: str | None = None) -> NormalPrior:
    """Design prior on the true effect of ``entry`` on ``outcome`` against ``control`` (SMD, + = improvement).

    ``control`` defaults to the entry's comparator; it must be one of ``entry.contexts`` (e.g. ``"sham"`` or
    ``"treatment_as_usual"`` for ECT), otherwise :class:`~trialsim.exceptions.ScenarioError`. A control entry
    gives ``N(0, 0)``. Otherwise the entry's ``design_default`` for the outcome is used when present, else the
    recorded effect; the sd follows :func:`prior_sd`. An implausible effect (:func:`is_implausible`) is
    replaced by :func:`shrink_implausible` and an :class:`EvidenceWarning` is issued. A missing outcome
    raises :class:`~trialsim.exceptions.ScenarioError` listing the recorded ones.
    """
    context = entry.context(control)
    control = control or entry.comparator
    if entry.is_control:
        return NormalPrior(0.0, 0.0, basis=f"{entry.name} is a control arm: effect 0 by definition")
    default = context.design_default.get(outcome)  # type: ignore[call-overload]
    if default is not None:
        sd = prior_sd(default.standard_error, entry.certainty)
        basis = f"design default ({default.status}, {entry.certainty}): {default.basis}"
        return NormalPrior(default.mean, sd, basis=basis)
    effect = entry.effect(outcome, control)
    certainty = effect.certainty or entry.certainty
    if is_implausible(effect.smd, certainty):
        prior = shrink_implausible(effect.smd, effect.standard_error)
        warnings.warn(
            EvidenceWarning(
                f"{entry.name}: {outcome} SMD {effect.smd:+.3f} vs {control} ({certainty} certainty) is implausible "
                f"(|SMD| > {IMPLAUSIBLE_SMD}); the design prior is shrunk to "
                f"N({prior.mean_smd:.3f}, {prior.sd_smd:.3f}^2)"
            ),
            stacklevel=2,
        )
        return prior
    sd = prior_sd(effect.standard_error, certainty)
    return NormalPrior(effect.smd, sd, basis=f"{effect.measure} {effect.smd:+.3f} ({effect.status}, {certainty})")
