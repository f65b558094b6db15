"""README.md's evidence table is generated from the library and must agree with it."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from trialsim.evidence import load_library
from trialsim.evidence.table import END, START, library_table, replace_table

README = ROOT / "README.md"


def test_readme_table_agrees_with_the_library() -> None:
    """Regenerate with `python -m trialsim.evidence.table README.md` after changing the library."""
    text = README.read_text(encoding="utf-8")
    assert replace_table(text, library_table(load_library())) == text


def test_table_has_one_row_per_entry_and_control_context() -> None:
    library = load_library()
    rows = library_table(library).splitlines()[2:]
    assert len(rows) == sum(len(entry.contexts) for entry in library)
    antidepressant = next(row for row in rows if row.startswith("| `antidepressant_augmentation` vs placebo |"))
    cells = [cell.strip() for cell in antidepressant.strip("|").split("|")]
    assert cells[2:7] == [
        "TRS off clozapine",
        "low",
        "+0.69 SMD [+0.38, +1.00]",
        f"{0.69 * 0.38 / 0.47:.3f} ({(1.00 - 0.38) / 3.92 * 1.5:.3f})",
        "shrunk ×0.81 (low certainty; small-study discount)",
    ]
    mirtazapine = next(row for row in rows if row.startswith("| `mirtazapine_augmentation` vs placebo |"))
    assert "+5.20 points [+2.70, +7.70]" in mirtazapine and "Clin Psychopharmacol Neurosci 2024" in mirtazapine


def test_replace_table_needs_both_markers() -> None:
    assert replace_table(f"a\n{START}\nold\n{END}\nb", "new") == f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError, match="markers"):
        replace_table("no markers here", "new")
