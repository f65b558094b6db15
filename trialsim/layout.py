"""Terminal tables that never cut a number: columns are sized for the console at render time.

At the console's width a :class:`FittedTable` keeps every column whole if it can; otherwise it wraps text at spaces
(a cell's words, numbers included, stay whole), folds the row labels (key columns) and, when even that is too
wide, stacks the remaining columns into further tables that repeat the row labels. Every cell is plain text,
never rich markup, so names from user files print as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

#: Row labels fold down to this many characters before columns are stacked.
KEY_MIN = 12
#: A header word longer than this may fold; shorter header words stay whole.
HEADER_WORD_MAX = 12
#: Characters between two columns (a separator and one space of padding).
GAP = 2


@dataclass(frozen=True)
class Column:
    """A column: its header, alignment, whether it labels rows (repeated in every stacked table) and whether its
    cells are prose that may wrap at spaces rather than values kept on one line."""

    header: str
    justify: Literal["left", "right"] = "right"
    key: bool = False
    wrap: bool = False


def _longest_word(texts: Sequence[str]) -> int:
    return max((len(word) for text in texts for word in text.split()), default=0)


@dataclass(frozen=True)
class _Sizing:
    """A column's widths, each the floor of one way of saving space."""

    natural: int  # header and cells on one line
    spaced: int  # the header (and row labels, prose) wrapped at spaces
    folded: int  # long header words and row labels folded
    wrapped: int  # value cells wrapped at spaces: the last resort for a column too wide on its own


#: The ways of saving space, cheapest first: (row-label columns?, floor).
PHASES = ((False, "spaced"), (True, "spaced"), (False, "folded"), (True, "folded"))


class FittedTable:
    """A titled table whose columns fit the console: whole, wrapped at spaces, or stacked (see the module)."""

    def __init__(self, columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str | None = None):
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.title = title
        self.sizing = [self._sizing(i) for i in range(len(self.columns))]

    def _sizing(self, index: int) -> _Sizing:
        column = self.columns[index]
        cells = [row[index] for row in self.rows]
        longest = max((len(cell) for cell in cells), default=0)
        natural = max(len(column.header), longest, 1)
        if column.key:
            spaced = max(_longest_word([*cells, column.header]), 1)
            folded = min(spaced, KEY_MIN)
            return _Sizing(natural, spaced, folded, folded)
        header_word = _longest_word([column.header])
        cell_words = _longest_word(cells)
        body = cell_words if column.wrap else longest
        short_header = min(header_word, HEADER_WORD_MAX)
        return _Sizing(
            natural, max(body, header_word, 1), max(body, short_header, 1), max(cell_words, short_header, 1)
        )

    def _fit(self, indices: list[int], width: int, last_resort: bool = False) -> list[int] | None:
        """Widths of ``indices`` within ``width``: natural if they fit, else saving space in the order of
        :data:`PHASES` (widest slack first within a phase); None if that does not fit."""
        widths = [self.sizing[i].natural for i in indices]
        excess = sum(widths) + GAP * (len(widths) - 1) - width
        for keys, floor in PHASES + (((False, "wrapped"),) if last_resort else ()):
            members = [j for j, i in enumerate(indices) if self.columns[i].key == keys]
            while excess > 0 and members:
                slack = {j: widths[j] - getattr(self.sizing[indices[j]], floor) for j in members}
                j = max(slack, key=slack.__getitem__)
                if slack[j] <= 0:
                    break
                widths[j] -= 1
                excess -= 1
        return widths if excess <= 0 else None

    def layout(self, width: int) -> list[tuple[list[int], list[int]]]:
        """The tables to print at ``width``: (column indices, their widths) for each."""
        everything = list(range(len(self.columns)))
        widths = self._fit(everything, width)
        if widths is not None:
            return [(everything, widths)]
        keys = [i for i in everything if self.columns[i].key]
        groups: list[list[int]] = []
        for i in everything:
            if i in keys:
                continue
            if groups and self._fit(keys + groups[-1] + [i], width) is not None:
                groups[-1].append(i)
            else:
                groups.append([i])
        out = []
        for group in groups:
            indices = keys + group
            fitted = self._fit(indices, width, last_resort=True)
            out.append((indices, fitted or [self.sizing[i].wrapped for i in indices]))
        return out

    def tables(self, width: int) -> Iterator[Table]:
        """The rich tables at ``width`` (one, or several stacked)."""
        for indices, widths in self.layout(width):
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))
            for i, column_width in zip(indices, widths):
                column = self.columns[i]
                table.add_column(Text(column.header), justify=column.justify, width=column_width, overflow="fold")
            for row in self.rows:
                table.add_row(*(Text(row[i]) for i in indices))
            yield table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.title:
            yield Text(self.title, style="table.title")
        yield from self.tables(options.max_width)
