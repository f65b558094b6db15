"""Wording shared by the terminal outputs."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` with its noun in the right number: "1 trial", "2 trials", "1,000 trials"."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
