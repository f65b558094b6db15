"""Matplotlib figures as inline SVG: one style, one palette, deterministic markup (no dates, fixed ids).

Uses ``matplotlib.figure.Figure`` directly (no pyplot, no GUI backend); glyphs are written as paths, so the SVG
needs no font.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

from trialsim.report.content import Figure

#: Okabe–Ito colours (distinguishable with colour-vision deficiencies and in greyscale print).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: Colours of a trial's stop: efficacy, futility, none (it ran to the final analysis).
STOP_COLOURS = {"efficacy": "#009E73", "futility": "#D55E00", "": "#777777"}
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "svg.fonttype": "path",
}
#: Resolution of rasterised layers (dense scatters and trajectories) inside the SVG.
RASTER_DPI = 150


def render(
    key: str,
    caption: str,
    draw: Callable[[MplFigure, np.ndarray], None],
    *,
    size: tuple[float, float] = (9.0, 3.4),
    grid: tuple[int, int] = (1, 1),
) -> Figure:
    """Draw a figure with ``draw(figure, axes)`` (axes of shape ``grid``) and return it as inline SVG."""
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": key}):
        figure = MplFigure(figsize=size, layout="constrained")
        axes = figure.subplots(*grid, squeeze=False)
        draw(figure, axes)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", dpi=RASTER_DPI, metadata={"Date": None})
    markup = buffer.getvalue()
    return Figure(key, caption, markup[markup.index("<svg") :])


def colours(names: list[str]) -> dict[str, str]:
    """A stable colour per name (arms in scenario order)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def panel_grid(panels: int, columns: int = 3) -> tuple[int, int]:
    """(rows, columns) for ``panels`` small multiples."""
    columns = max(1, min(panels, columns))
    return -(-panels // columns), columns


def panels_width(grid: tuple[int, int]) -> float:
    """Figure width (inches) for a grid of small multiples."""
    return min(9.5, 1.0 + 3.2 * grid[1]) if grid[1] > 1 else 5.0


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Switch off the panels of a grid beyond the first ``used``."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def as_float(values) -> np.ndarray:
    """Numbers from the summary as floats (``None`` → NaN)."""
    return np.array([np.nan if v is None else float(v) for v in values])
