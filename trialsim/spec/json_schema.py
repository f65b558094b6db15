"""JSON Schema of scenario files, analysis-plan files and summary.json, generated from the pydantic models.

Editors that read JSON Schema (e.g. through a ``# yaml-language-server: $schema=scenario.schema.json`` first line)
complete and check YAML files with it; cross-field rules (one control arm, a primary endpoint at a visit, …) are
checked by ``trialsim validate`` only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_models() -> dict[str, type[BaseModel]]:
    """The documents that have a schema, by the name ``trialsim schema`` takes."""
    from trialsim.spec.plan import AnalysisPlan
    from trialsim.spec.scenario import Scenario
    from trialsim.spec.summary import Summary

    return {"scenario": Scenario, "plan": AnalysisPlan, "summary": Summary}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``scenario``, ``plan`` or ``summary``."""
    model = schema_models()[kind]
    return {"$schema": DIALECT, **model.model_json_schema(mode="validation")}
