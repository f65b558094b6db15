"""rpact as a peer for speed comparisons: time ``rpact::getSimulationMeans`` (Wassmer & Pahlke, R package rpact) on
a two-arm comparison of means, through ``Rscript``. Free of trialsim imports.

    python benchmarks/rpact_peer.py    # self-check: a fixed and a three-look design, 30,000 iterations each
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

_SIMULATE = r"""
args <- commandArgs(trailingOnly = TRUE)
numbers <- function(text) as.numeric(strsplit(text, ",")[[1]])
suppressPackageStartupMessages(library(rpact))
alternative <- numbers(args[1])
if (args[5] == "fixed") {
  rates <- 1
  design <- getDesignGroupSequential(kMax = 1, alpha = 0.025, sided = 1)
} else {
  rates <- numbers(args[5])
  critical <- numbers(args[6])
  # the alpha these critical values spend (exact, under H0), given to rpact as a user-defined spending function
  exit <- getGroupSequentialProbabilities(rbind(rep(-Inf, length(rates)), critical), rates)
  spent <- cumsum(exit[3, ] - exit[2, ])
  design <- getDesignGroupSequential(typeOfDesign = "asUser", userAlphaSpending = spent,
                                     informationRates = rates, alpha = spent[length(spent)], sided = 1)
}
seconds <- system.time(simulation <- getSimulationMeans(
  design, groups = 2, meanRatio = FALSE, thetaH0 = 0, alternative = alternative, stDev = as.numeric(args[2]),
  plannedSubjects = round(as.numeric(args[3]) * rates), allocationRatioPlanned = 1, directionUpper = TRUE,
  maxNumberOfIterations = as.integer(args[4]), seed = as.integer(args[7])
))[["elapsed"]]
cat("seconds", format(seconds, digits = 15), "\n")
cat("power", format(simulation$overallReject, digits = 15), "\n")
reject <- as.matrix(simulation$rejectPerStage)
for (j in seq_along(alternative)) cat("stages", format(reject[, j], digits = 15), "\n")
cat("critical", format(design$criticalValues, digits = 15), "\n")
"""


def rpact_available() -> str | None:
    """None when ``Rscript`` runs and the R package rpact loads, else the reason it cannot be used."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = subprocess.run(
        ["Rscript", "-e", 'if (!requireNamespace("rpact", quietly = TRUE)) quit(status = 3)'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check.returncode == 3:
        return "R package rpact not installed"
    if check.returncode != 0:
        return f"Rscript failed: {check.stderr.strip()}"
    return None


def time_rpact_means(
    alternative_points: float | Sequence[float],
    sd: float,
    n_total: int,
    iterations: int,
    information_rates: Sequence[float] | None = None,
    critical_values: Sequence[float] | None = None,
    seed: int = 1,
) -> dict:
    """Run ``rpact::getSimulationMeans`` for a two-arm comparison of means (one-sided α = 0.025, allocation 1:1,
    common SD ``sd`` and mean differences ``alternative_points`` in PANSS points, positive = improvement;
    ``n_total`` patients over both arms; ``iterations`` simulated trials per alternative).

    ``information_rates`` None: a fixed design. Otherwise a group-sequential design with looks at
    round(n_total·rate) patients and the given one-sided z ``critical_values`` (rpact receives them as the
    user-defined alpha spending they imply, computed exactly in R, and reproduces them within 1e-6).

    Returns {"seconds": wall time of the simulation call alone, measured inside R with system.time (all
    alternatives), "power": overall rejection probability, "rejectPerStage": rejection probability per stage,
    "iterations": ``iterations``}; "power" is a float and "rejectPerStage" a list when ``alternative_points`` is a
    number, one entry per alternative when it is a sequence.
    """
    if (information_rates is None) != (critical_values is None):
        raise ValueError("give both information_rates and critical_values, or neither (fixed design)")
    scalar = isinstance(alternative_points, int | float)
    alternatives = [float(alternative_points)] if scalar else [float(x) for x in alternative_points]
    joined = lambda values: ",".join(repr(float(x)) for x in values)
    design = ["fixed", ""] if information_rates is None else [joined(information_rates), joined(critical_values)]
    command = ["Rscript", "-e", _SIMULATE, joined(alternatives), repr(float(sd)), str(int(n_total))]
    command += [str(int(iterations)), *design, str(int(seed))]
    run = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"rpact simulation failed: {run.stderr.strip()}")
    lines = [line.split() for line in run.stdout.splitlines() if line.strip()]
    values = {key: [float(x) for x in rest] for key, *rest in lines if key != "stages"}
    stages = [[float(x) for x in rest] for key, *rest in lines if key == "stages"]
    if critical_values is not None:
        gap = max(abs(a - b) for a, b in zip(values["critical"], critical_values))
        if gap > 1e-6:
            raise RuntimeError(f"rpact reproduced the critical values only within {gap:.1e}: {values['critical']}")
    return {
        "seconds": values["seconds"][0],
        "power": values["power"][0] if scalar else values["power"],
        "rejectPerStage": stages[0] if scalar else stages,
        "iterations": int(iterations),
    }


def _self_check() -> None:
    missing = rpact_available()
    if missing:
        print(f"rpact unavailable: {missing}")
        return
    # rpact: getDesignGroupSequential(typeOfDesign = "asOF", informationRates = c(1/3, 2/3, 1), alpha = 0.025,
    # sided = 1)$criticalValues
    obrien_fleming = [3.710302873, 2.511427484, 1.993047483]
    runs = [
        ("fixed design, N = 200", time_rpact_means(6.0, 15.0, 200, 30_000)),
        (
            "three looks (1/3, 2/3, 1), O'Brien-Fleming, N = 240",
            time_rpact_means(6.0, 15.0, 240, 30_000, [1 / 3, 2 / 3, 1], obrien_fleming),
        ),
    ]
    print("rpact getSimulationMeans, effect 6 points, SD 15, 30,000 iterations")
    for label, result in runs:
        stages = ", ".join(f"{p:.4f}" for p in result["rejectPerStage"])
        rate = result["iterations"] / result["seconds"]
        print(f"  {label}: {result['seconds']:.3f} s ({rate:,.0f} trials/s), power {result['power']:.4f} [{stages}]")


if __name__ == "__main__":
    _self_check()
