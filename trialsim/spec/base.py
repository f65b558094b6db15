"""Shared building blocks of the file schemas: the strict base model, constrained types, scale ranges."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PANSS_TOTAL_RANGE = (30.0, 210.0)
PANSS_SUBSCALE_RANGE = (7.0, 49.0)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(gt=0, le=100)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]


class ConsistencyError(ValueError):
    """Several cross-field problems of one model, each with its own field path (dotted, relative to the file)."""

    def __init__(self, problems: list[tuple[str, object, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, _, message in problems))


class Strict(BaseModel):
    """Base: unknown keys rejected, every float finite (NaN and ±inf rejected, also inside lists, tuples and
    dicts), instances frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
