"""One trial of a run simulated again by its index: what ``trialsim trial`` prints and writes.

The trial is simulated from its own seed (:func:`trialsim.runner.rerun_trial`), so its per-patient table, event
log and analysis are exactly those of the run's row in trials.parquet.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from trialsim.engine.trial import Timeline
from trialsim.inference.data import TrialData
from trialsim.rundir import json_safe, write_atomic

#: Rows of the per-patient table printed (all of them go to the CSV file).
PATIENTS_SHOWN = 10


@dataclass(frozen=True)
class TrialView:
    """A trial simulated again: where it comes from, its data, timeline and row of trials.parquet."""

    scenario: str
    plan: str
    seed: int
    design_point: int
    sample_size: int
    assurance: bool
    index: int
    data: TrialData
    timeline: Timeline
    row: pd.DataFrame

    @property
    def mode(self) -> str:
        return "assurance" if self.assurance else "point"

    def analysis(self) -> dict[str, Any]:
        """The trial's row of trials.parquet as a dict (NaN as None), with its interim looks and stop."""
        return {
            "scenario": self.scenario,
            "analysis_plan": self.plan,
            "seed": self.seed,
            "design_point": self.design_point,
            "sample_size": self.sample_size,
            "effect_mode": self.mode,
            "trial": self.index,
            "row": json_safe(self.row.iloc[0].to_dict()),
            "looks": json_safe(self.timeline.looks),
            "stop": self.timeline.stop,
        }

    def render(self) -> Group:
        """Title, recruitment and events, the analysis (the run's row) and the first patients."""
        timeline, data = self.timeline, self.data
        counts = Counter(event for _, event, _, _ in timeline.events)
        visits = sum(count for event, count in counts.items() if event.startswith("visit_"))
        facts = Table(show_header=False, box=None)
        facts.add_row("screened", f"{timeline.screened}")
        facts.add_row("randomised", f"{timeline.randomised} (screen failures {timeline.screen_failures}, "
                      f"turned away {timeline.turned_away})")
        if data.n:
            first, last = data.randomised_week.min(), data.randomised_week.max()
            facts.add_row("randomisation weeks", f"{first:.1f} to {last:.1f}")
        facts.add_row("events", ", ".join(
            [f"{count} {escape(event)}" for event, count in counts.items() if not event.startswith("visit_")]
            + [f"{visits} visits"]
        ))
        for look in timeline.looks:
            label = "final analysis" if look["look"] < 0 else f"look {look['look'] + 1}"
            facts.add_row(label, f"data cut-off week {look['cutoff_week']:.1f}, decided week "
                          f"{look['decision_week']:.1f}: {look['n_randomised']} randomised, "
                          f"{look['n_completed']} completed")
        if timeline.stop:
            facts.add_row("stopped", f"for {timeline.stop}")
        analysis = Table("column of trials.parquet", "value", title="analysis (the run's row)", title_justify="left")
        for name, value in self.row.iloc[0].items():
            analysis.add_row(escape(str(name)), escape(_text(value)))
        frame = data.to_frame()
        endpoint = f"panss_w{data.visit_weeks[data.endpoint_visit]:g}"
        shown = [c for c in ("patient", "site", "arm", "randomised_week", "baseline_panss", endpoint, "dropout_week",
                             "dropout_reason") if c in frame]
        patients = Table(*shown, title=f"patients: the first {min(PATIENTS_SHOWN, data.n)} of {data.n}",
                         title_justify="left")
        for _, patient in frame[shown].head(PATIENTS_SHOWN).iterrows():
            patients.add_row(*(escape(_text(value)) for value in patient))
        mode = "effects from the design priors" if self.assurance else "effects at their point values"
        title = (f"trial {self.index} of {escape(self.scenario)} · plan {escape(self.plan)} · N = {self.sample_size} "
                 f"(design point {self.design_point}) · {mode} · seed {self.seed}")
        return Group(title, facts, analysis, patients)

    def write(self, out_dir: Path) -> list[Path]:
        """The per-patient table, the event log and the analysis as files named by the trial (atomic writes)."""
        stem = f"trial-{self.index}-design_point_{self.design_point}-{self.mode}"
        paths = [out_dir / f"{stem}-patients.csv", out_dir / f"{stem}-events.csv", out_dir / f"{stem}-analysis.json"]
        events = pd.DataFrame(self.timeline.events, columns=["week", "event", "site", "patient"])
        write_atomic(paths[0], lambda path: self.data.to_frame().to_csv(path, index=False))
        write_atomic(paths[1], lambda path: events.to_csv(path, index=False))
        text = json.dumps(self.analysis(), indent=2) + "\n"
        write_atomic(paths[2], lambda path: path.write_text(text, encoding="utf-8"))
        return paths


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "—" if value == float("inf") else f"{value:.6g}"
    return str(value)
