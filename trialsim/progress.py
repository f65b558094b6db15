"""Progress of simulations on stderr: a live bar on a terminal, plain lines when stderr is a log or a pipe."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from trialsim.text import plural

if TYPE_CHECKING:
    from trialsim.spec.plan import AnalysisPlan
    from trialsim.spec.scenario import Scenario

#: Without a known total, a plain line at most this often (seconds).
PLAIN_INTERVAL = 10.0


def planned_trials(scenario: Scenario, trials: int) -> int:
    """Trials a run simulates: every design point, twice with assurance (point effects and design priors)."""
    return trials * len(scenario.sample_sizes) * (2 if scenario.assurance else 1)


def compiles_model(plan: AnalysisPlan) -> bool:
    """Whether the plan compiles a model before its first fit (NUTS: once per worker process)."""
    return plan.engine == "nuts"


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class TrialProgress(Progress):
    """A rich progress display of trials done / total.

    Until a task's first trials are done, a plan that compiles a model shows "compiling model" (compilation
    happens before the first fit of each worker process). When the console is not a terminal the live bar is off
    and the progress goes to the console as plain lines: at the start, at every tenth of the total (every
    :data:`PLAIN_INTERVAL` seconds without a total) and at the end. ``quiet`` shows nothing.
    """

    def __init__(self, console: Console, *, quiet: bool = False, compiling: bool = False):
        super().__init__(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        self.plain = not quiet and not console.is_terminal
        self.compiling = compiling
        self._names: dict[TaskID, str] = {}
        self._started: dict[TaskID, float] = {}
        self._logged: dict[TaskID, tuple[int, float]] = {}  # last tenth logged, and when

    def add_task(self, description: str, start: bool = True, total: float | None = 100.0, completed: int = 0,
                 visible: bool = True, **fields: Any) -> TaskID:
        shown = f"compiling model · {description}" if self.compiling else description
        task = super().add_task(shown, start, total, completed, visible, **fields)
        self._names[task] = description
        self._started[task] = time.monotonic()
        self._logged[task] = (0, self._started[task])
        if self.plain:
            first = f"{description}: {plural(int(total), 'trial')}" if total else f"{description}: started"
            self._line(first + (" (compiling the model first)" if self.compiling else ""))
        return task

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        first = self._task(task_id).completed == 0
        super().advance(task_id, advance)
        if self.compiling and first:
            self.update(task_id, description=self._names[task_id])
        if self.plain:
            self._log(task_id)

    def _task(self, task_id: TaskID) -> Any:
        return next(task for task in self.tasks if task.id == task_id)

    def _log(self, task_id: TaskID) -> None:
        task = self._task(task_id)
        now = time.monotonic()
        tenth, when = self._logged[task_id]
        elapsed = now - self._started[task_id]
        if task.total:
            reached = min(10, int(10 * task.completed / task.total))
            if reached <= tenth:
                return
            line = f"{int(task.completed):,}/{int(task.total):,} trials ({task.completed / task.total:.0%}), " \
                   f"{_seconds(elapsed)}"
            if task.completed < task.total:
                line += f", about {_seconds(elapsed * (task.total - task.completed) / task.completed)} left"
        else:
            if now - when < PLAIN_INTERVAL:
                return
            reached, line = tenth, f"{plural(int(task.completed), 'trial')} so far, {_seconds(elapsed)}"
        self._logged[task_id] = (reached, now)
        self._line(f"{self._names[task_id]}: {line}")

    def _line(self, text: str) -> None:
        self.console.print(Text(text), highlight=False, soft_wrap=True)
