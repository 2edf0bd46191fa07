"""/schemas/pipeline: the pipeline language as JSON Schema, readable without a token.

Public on purpose, like ``/openapi.json``: it holds no one's data, and an agent should be
able to learn how to write a payload before it has a task (or any scope).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ordinaut.api.deps import Svc

router = APIRouter(prefix="/schemas", tags=["schemas"])


@router.get("/pipeline", operation_id="pipeline_schema")
def pipeline_schema(svc: Svc) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a task's ``payload``: steps, loops, templates, limits."""
    return svc.pipeline_schema()
