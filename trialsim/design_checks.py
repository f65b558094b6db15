"""Settings that are valid but cannot work as intended: warnings shown by ``validate`` and before a run."""

from __future__ import annotations

from trialsim.spec.plan import AnalysisPlan


def plan_warnings(plan: AnalysisPlan) -> list[str]:
    """What is likely to go wrong with a plan's settings, one sentence each."""
    warnings = []
    sampler = plan.sampler
    draws = sampler.draws * sampler.chains
    if plan.engine == "nuts" and draws < sampler.ess_min:
        warnings.append(
            f"plan '{plan.name}': sampler.draws × sampler.chains = {sampler.draws} × {sampler.chains} = {draws} "
            f"draws cannot reach sampler.ess_min = {sampler.ess_min:g} (the effective sample size of a fit is at "
            "most about its number of draws), so nearly every fit would fail its diagnostics: raise draws or "
            "chains, or lower ess_min"
        )
    return warnings
