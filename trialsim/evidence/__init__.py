"""The TRS evidence library: interventions, their effects (SMD, positive = improvement), certainty and sources.

>>> from trialsim.evidence import load_library, design_prior
>>> library = load_library()
>>> prior = design_prior(library.get("aripiprazole_augmentation"))
>>> round(prior.mean_smd, 2), round(prior.sd_smd, 3)
(0.2, 0.191)
"""

from trialsim.evidence.library import EvidenceLibrary, UnknownInterventionError, load_library
from trialsim.evidence.models import (
    BACKGROUNDS,
    CERTAINTIES,
    CONTROLS,
    MAX_PLAUSIBLE_SMD,
    MECHANISM_FAMILIES,
    OUTCOMES,
    POINTS_SD_CHANGE,
    STATUSES,
    AdverseEvent,
    DesignDefault,
    Effect,
    Intervention,
)
from trialsim.evidence.priors import (
    CERTAINTY_FACTOR,
    INDIRECTNESS_SD_FACTOR,
    SMALL_STUDY_DISCOUNT,
    WEAK_CERTAINTIES,
    EvidenceWarning,
    NormalPrior,
    design_prior,
    indirectness_steps,
    is_implausible,
    prior_sd,
    shrink_implausible,
)

__all__ = [
    "BACKGROUNDS",
    "CERTAINTIES",
    "CERTAINTY_FACTOR",
    "CONTROLS",
    "INDIRECTNESS_SD_FACTOR",
    "MAX_PLAUSIBLE_SMD",
    "MECHANISM_FAMILIES",
    "OUTCOMES",
    "POINTS_SD_CHANGE",
    "SMALL_STUDY_DISCOUNT",
    "STATUSES",
    "WEAK_CERTAINTIES",
    "AdverseEvent",
    "DesignDefault",
    "Effect",
    "EvidenceLibrary",
    "EvidenceWarning",
    "Intervention",
    "NormalPrior",
    "UnknownInterventionError",
    "design_prior",
    "indirectness_steps",
    "is_implausible",
    "load_library",
    "prior_sd",
    "shrink_implausible",
]
