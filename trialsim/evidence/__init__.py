"""The TRS evidence library: interventions, their effects (SMD, positive = improvement), certainty and sources.

>>> from trialsim.evidence import load_library, design_prior
>>> library = load_library()
>>> prior = design_prior(library.get("aripiprazole_augmentation"))
>>> round(prior.mean_smd, 2), round(prior.sd_smd, 3)
(0.2, 0.191)
"""

from trialsim.evidence.library import EvidenceLibrary, UnknownInterventionError, load_library
from trialsim.evidence.models import (
    CERTAINTIES,
    CONTROLS,
    MECHANISM_FAMILIES,
    OUTCOMES,
    STATUSES,
    AdverseEvent,
    DesignDefault,
    Effect,
    Intervention,
)
from trialsim.evidence.priors import (
    CERTAINTY_FACTOR,
    EvidenceWarning,
    NormalPrior,
    design_prior,
    is_implausible,
    prior_sd,
    shrink_implausible,
)

__all__ = [
    "CERTAINTIES",
    "CERTAINTY_FACTOR",
    "CONTROLS",
    "MECHANISM_FAMILIES",
    "OUTCOMES",
    "STATUSES",
    "AdverseEvent",
    "DesignDefault",
    "Effect",
    "EvidenceLibrary",
    "EvidenceWarning",
    "Intervention",
    "NormalPrior",
    "UnknownInterventionError",
    "design_prior",
    "is_implausible",
    "load_library",
    "prior_sd",
    "shrink_implausible",
]
