"""Several active arms against one control: family-wise error rate (FWER) of the frequentist ANCOVA under the null
twin, unadjusted and with Bonferroni, Holm and Dunnett adjustments, on the same simulated trials."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import make_scenario
from trialsim.runner import run_trials
from trialsim.spec.loading import validate_model
from trialsim.spec.plan import AnalysisPlan

pytestmark = pytest.mark.statistical
TRIALS = 2000


def fwer(method: str) -> tuple[float, np.ndarray]:
    """P(at least one success) and each comparison's P(success), three null arms vs control, N = 240."""
    scenario = make_scenario(
        arms=[{"name": "control", "control": True}] + [{"name": f"drug{i}", "effect": {"points": 0.0}}
                                                       for i in range(3)],
        sample_size=240,
        recruitment={"sites": 8, "rate_per_site_per_week": 2.0, "block_size": 8},
    )
    plan = validate_model(AnalysisPlan, {"name": method, "engine": "frequentist",
                                         "decision": {"threshold": 0.975, "multiplicity": method}}, "<test>")
    table, _ = run_trials(scenario, plan, TRIALS, seed=8, workers=2)
    success = table[[f"drug{i}.success" for i in range(3)]].to_numpy(dtype=bool)
    return float(success.any(axis=1).mean()), success.mean(axis=0)


def test_family_wise_error_with_and_without_adjustment():
    """Unadjusted, the FWER exceeds the per-comparison 0.025 (three correlated tests: ≈ 0.06); Bonferroni and Holm
    keep it at most 0.025 (the Bonferroni bound; under the global null both reject iff min p ≤ α/3, so their FWER
    is the same number), Dunnett's exact-for-the-maximum adjustment brings it to 0.025 within 3 MCSE, and each
    Bonferroni comparison sits near 0.025/3. MCSE √(p(1 − p)/K), K = 2000."""
    mcse = lambda p: math.sqrt(p * (1 - p) / TRIALS)  # noqa: E731
    none, _ = fwer("none")
    bonferroni, each = fwer("bonferroni")
    holm, _ = fwer("holm")
    dunnett, _ = fwer("dunnett")
    assert none > 0.025 + 3 * mcse(0.025)
    assert bonferroni <= 0.025 + 3 * mcse(0.025) and holm == bonferroni
    assert abs(dunnett - 0.025) <= 3 * mcse(0.025) and dunnett >= bonferroni
    assert np.all(np.abs(each - 0.025 / 3) <= 3.5 * mcse(0.025 / 3))
