"""Tool scopes, checked again at call time: the task owner's scopes may have changed since
the task was created (or the owner was revoked)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.engine import Connection

from ordinaut.errors import Forbidden
from ordinaut.pipeline.model import Pipeline
from ordinaut.store import queries
from ordinaut.tools.spec import ToolSpec
from ordinaut.vocabulary import ADMIN_SCOPE


def check_tool_scopes(
    conn: Connection, owner: uuid.UUID, pipeline: Pipeline, tools: Mapping[str, ToolSpec]
) -> None:
    """Forbidden unless the owner (alive, not revoked) holds every scope the steps' tools need.

    Costs one query, and only for pipelines that use a tool with scopes.
    """
    needed = {step.id: set(tools[step.uses].scopes) for step in pipeline.walk()}
    if not any(needed.values()):
        return
    row = queries.get_agent(conn, owner)
    if row is None or row.revoked_at is not None:
        raise Forbidden("the agent that owns this task was revoked", field="created_by")
    held = set(row.scopes)
    if ADMIN_SCOPE in held:
        return
    for step_id, scopes in needed.items():
        missing = scopes - held
        if missing:
            raise Forbidden(
                f"step {step_id!r}: the task's agent no longer holds the scope "
                f"{', '.join(sorted(missing))}",
                field="scope",
            )
