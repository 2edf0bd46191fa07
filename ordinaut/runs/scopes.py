"""Tool scopes, checked again at call time: the task owner's scopes may have changed since
the task was created (or the owner was revoked)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.engine import Connection

from ordinaut.errors import Forbidden
from ordinaut.pipeline.model import Pipeline
from ordinaut.policy import scopes
from ordinaut.store import queries
from ordinaut.tools.spec import ToolSpec


def check_tool_scopes(
    conn: Connection, owner: uuid.UUID, pipeline: Pipeline, tools: Mapping[str, ToolSpec]
) -> None:
    """Forbidden unless the owner (alive, not revoked) holds every scope the steps' tools need.

    Costs one query, and only for pipelines that use a tool with scopes.
    """
    if not any(tools[step.uses].scopes for step in pipeline.walk()):
        return
    row = queries.get_agent(conn, owner)
    if row is None or row.revoked_at is not None:
        raise Forbidden("the agent that owns this task was revoked", field="created_by")
    lacking = scopes.first_missing(pipeline, tools, frozenset(row.scopes))
    if lacking is not None:
        raise Forbidden(
            f"step {lacking.step.id!r}: the task's agent no longer holds the scope "
            f"{', '.join(sorted(lacking.scopes))}",
            field="scope",
        )
