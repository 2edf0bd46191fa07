"""Run read operations: list and show, with step receipts."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from ordinaut.errors import NotFound, ValidationError
from ordinaut.service import cursor
from ordinaut.service.auth import Principal
from ordinaut.service.models import RunPublic, StepPublic
from ordinaut.store import queries
from ordinaut.vocabulary import RunStatus, Scope


def list_runs(
    conn: Connection,
    principal: Principal,
    *,
    task_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[RunPublic], str | None]:
    """Runs the caller may see, newest first, with a cursor for the next page."""
    principal.require(Scope.RUNS_READ)
    if status is not None and status not in set(RunStatus):
        raise ValidationError(
            f"status must be one of {', '.join(s.value for s in RunStatus)}", field="status"
        )
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    rows = queries.list_runs(
        conn,
        created_by=None if principal.is_admin else principal.agent_id,
        task_id=task_id,
        status=RunStatus(status) if status is not None else None,
        before=cursor.decode(after) if after is not None else None,
        limit=limit + 1,
    )
    page = [RunPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    more = None
    if len(rows) > limit:
        more = cursor.encode(rows[limit - 1].created_at, rows[limit - 1].id)
    return page, more


def get_run(
    conn: Connection, principal: Principal, run_id: uuid.UUID, *, scope: str = Scope.RUNS_READ
) -> RunPublic:
    """One run with its step receipts (404 for another agent's run, unless admin)."""
    principal.require(scope)
    row = queries.get_run(conn, run_id)
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no run {run_id}", field="run_id")
    steps = queries.steps_of_run(conn, run_id)
    run = RunPublic.model_validate(dict(row._mapping))
    run.steps = [StepPublic.model_validate(dict(s._mapping)) for s in steps]
    return run
