"""Run read operations: list and show, with step receipts."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.errors import NotFound, ValidationError
from ordinaut.service import cursor
from ordinaut.service.auth import Principal
from ordinaut.service.models import RunPublic, StepPublic
from ordinaut.store.tables import step_result, task, task_run
from ordinaut.vocabulary import RunStatus, Scope

_RUN_COLUMNS = [c for c in task_run.c if c.name not in ("lease_owner", "leased_until")]


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
    query = sa.select(*_RUN_COLUMNS).select_from(task_run)
    if not principal.is_admin:
        query = query.join(task, task.c.id == task_run.c.task_id).where(
            task.c.created_by == principal.agent_id
        )
    if task_id is not None:
        query = query.where(task_run.c.task_id == task_id)
    if status is not None:
        query = query.where(task_run.c.status == status)
    if after is not None:
        at, last_id = cursor.decode(after)
        query = query.where(
            sa.tuple_(task_run.c.created_at, task_run.c.id) < sa.tuple_(at, last_id)
        )
    rows = conn.execute(
        query.order_by(task_run.c.created_at.desc(), task_run.c.id.desc()).limit(limit + 1)
    ).all()
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
    row: Any = conn.execute(
        sa.select(*_RUN_COLUMNS, task.c.created_by)
        .join(task, task.c.id == task_run.c.task_id)
        .where(task_run.c.id == run_id)
    ).first()
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no run {run_id}", field="run_id")
    steps = conn.execute(
        sa.select(step_result).where(step_result.c.run_id == run_id).order_by(step_result.c.id)
    ).all()
    run = RunPublic.model_validate(dict(row._mapping))
    run.steps = [StepPublic.model_validate(dict(s._mapping)) for s in steps]
    return run
