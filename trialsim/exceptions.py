"""Exception and warning hierarchy of trialsim.

User mistakes (a bad scenario or analysis-plan file, a bad argument) raise :class:`ScenarioError`;
the CLI turns it into a short message and exit code 2, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest value (as printed by ``repr``), file name or field path, and rule shown in a message, in characters.
VALUE_CHARS = 60
PLACE_CHARS = 120
MESSAGE_CHARS = 600
#: Problems listed in a message; ``ScenarioError.problems`` keeps them all.
LISTED_PROBLEMS = 50


def shorten(text: str, limit: int, length: int | None = None) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis and the full ``length`` (default ``len(text)``)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) if length is None else length:,} characters)"


def show_value(value: object) -> str:
    """The ``repr`` of a user's value, shortened to :data:`VALUE_CHARS` (a string's length is its own)."""
    return shorten(repr(value), VALUE_CHARS, len(value) if isinstance(value, str) else None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, what value, which rule.

    Rendering shortens long values, file names, field paths and rules (which may list a file's names), so a hostile
    file cannot flood the terminal.
    """

    file: str
    field: str
    message: str
    value: object = None
    has_value: bool = False

    def __str__(self) -> str:
        where = ": ".join(shorten(part, PLACE_CHARS) for part in (self.file, self.field) if part)
        if self.has_value:
            where = f"{where} = {show_value(self.value)}"
        message = shorten(self.message, MESSAGE_CHARS)
        return f"{where}: {message}" if where else message


class TrialSimError(Exception):
    """Base class of every trialsim error."""


class ScenarioError(TrialSimError, ValueError):
    """A scenario, analysis plan or argument is invalid; carries every problem found at once."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(file="", field="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """Every problem, one per line (the first :data:`LISTED_PROBLEMS` of a longer list, then how many more)."""
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"] + [f"  - {p}" for p in self.problems[:LISTED_PROBLEMS]]
        if len(self.problems) > LISTED_PROBLEMS:
            lines.append(f"  ... and {len(self.problems) - LISTED_PROBLEMS:,} more")
        return "\n".join(lines)


class SimulationError(TrialSimError, RuntimeError):
    """The simulation itself failed (a bug or an impossible state), not the user's input."""


class AnalysisError(TrialSimError):
    """An analysis of one simulated data set could not be carried out."""


class StatisticalWarning(RuntimeWarning):
    """A valid but discouraged setting (too few trials, a wide tolerance...)."""


class ConvergenceWarning(RuntimeWarning):
    """An MCMC fit failed its diagnostics; it is counted, never silently dropped."""
