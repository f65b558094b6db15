"""Runs sized by Monte Carlo precision: add rounds of trials until every power-like proportion is precise enough.

Stopping rule. Trials are added in whole rounds of a fixed size R (trials per design point); the rule is checked
only after a round, on all trials so far (K = r·R). A proportion p estimated from K trials has MCSE √(p(1 − p)/K);
since p̂ itself is noisy — a lucky run near 0 or 1 would make √(p̂(1 − p̂)/K) look small — the rule uses the
largest p(1 − p) of any p in the 95% Wilson interval of p̂ (0.25 when the interval contains 1/2). The run stops
when that conservative MCSE is at most the target for every power, assurance and P(at least one arm succeeds) of
every design point, or at the cap. As p(1 − p) ≤ 1/4, the target is always met at K ≥ 1/(4·target²), the
default cap. Same seed, target and round size → the same rounds, the same trials, the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: z of the 95% Wilson interval used for the conservative p(1 − p).
Z = 1.959963984540054

RULE = (
    "rounds of {round_trials} trials per design point; after each round, stop when every power, assurance and "
    "P(at least one arm succeeds) has MCSE <= {mcse} with p(1 - p) taken at its largest over the 95% Wilson "
    "interval of the estimate; at most {max_trials} trials"
)


@dataclass(frozen=True)
class Precision:
    """A precision target: MCSE ``mcse``, rounds of ``round_trials``, at most ``max_trials`` per design point."""

    mcse: float
    round_trials: int
    max_trials: int

    @classmethod
    def of(cls, mcse: float, round_trials: int, max_trials: int | None = None) -> Precision:
        """The default cap is the smallest whole number of rounds that always reaches the target."""
        if max_trials is None:
            bound = math.ceil(0.25 / mcse**2)
            max_trials = -(-bound // round_trials) * round_trials
        return cls(mcse, round_trials, max_trials)

    def as_dict(self) -> dict[str, Any]:
        return {"mcse": self.mcse, "round_trials": self.round_trials, "max_trials": self.max_trials}

    def next_round(self, trials: int) -> int:
        """Trials per design point after the next round (whole rounds, capped)."""
        return min(self.max_trials, (trials // self.round_trials + 1) * self.round_trials)

    def reached(self, design_points: list[dict[str, Any]]) -> bool:
        """Whether every power-like proportion of the summary meets the target (conservatively)."""
        return all(conservative_mcse(p, k) <= self.mcse for p, k in proportions(design_points))

    def record(self, design_points: list[dict[str, Any]], trials: int) -> dict[str, Any]:
        """What summary.json says about the run's precision: the rule, the trials it took, whether it was met."""
        worst = max((conservative_mcse(p, k) for p, k in proportions(design_points)), default=0.0)
        return {
            **self.as_dict(),
            "trials": trials,
            "rounds": -(-trials // self.round_trials),
            "reached": worst <= self.mcse,
            "largest_conservative_mcse": worst,
            "rule": RULE.format(**self.as_dict()),
        }


def proportions(design_points: list[dict[str, Any]]) -> list[tuple[float, int]]:
    """(estimate, trials) of every power, assurance and P(at least one arm succeeds) in a summary."""
    out = []
    for point in design_points:
        k = point["trials"]
        for comparison in point["comparisons"]:
            out.append((comparison["power"], k))
            if "assurance" in comparison:
                out.append((comparison["assurance"], k))
        for key in ("any_success", "any_success_assurance"):
            if key in point:
                out.append((point[key], k))
    return out


def conservative_mcse(p: float, k: int) -> float:
    """√(v/k), v the largest p(1 − p) over the 95% Wilson interval of ``p`` estimated from ``k`` trials."""
    centre = (p + Z**2 / (2 * k)) / (1 + Z**2 / k)
    half = Z / (1 + Z**2 / k) * math.sqrt(p * (1 - p) / k + Z**2 / (4 * k**2))
    low, high = centre - half, centre + half
    variance = 0.25 if low <= 0.5 <= high else max(low * (1 - low), high * (1 - high))
    return math.sqrt(variance / k)
