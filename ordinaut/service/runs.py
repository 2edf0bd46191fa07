"""Run read operations: list (summaries), show (with step receipts, large data truncated),
and one step's whole input or output."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Connection, Row

from ordinaut.errors import NotFound, PayloadTooLarge, ValidationError
from ordinaut.service import cursor
from ordinaut.service.auth import Principal
from ordinaut.service.models import RunPublic, RunSummary, StepData, StepPublic
from ordinaut.store import queries
from ordinaut.vocabulary import RunStatus, Scope, StepPart


def list_runs(
    conn: Connection,
    principal: Principal,
    *,
    task_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[RunSummary], str | None]:
    """Runs the caller may see, newest first, with a cursor for the next page (no outputs)."""
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
    page = [RunSummary.model_validate(dict(r._mapping)) for r in rows[:limit]]
    more = None
    if len(rows) > limit:
        more = cursor.encode(rows[limit - 1].created_at, rows[limit - 1].id)
    return page, more


def get_run(
    conn: Connection, principal: Principal, run_id: uuid.UUID, *, scope: str = Scope.RUNS_READ
) -> RunPublic:
    """One run with its step receipts (404 for another agent's run, unless admin).

    Inputs and outputs over ``limits.INLINE_STEP_DATA_BYTES`` are shown as the truncation
    marker; :func:`get_step_data` returns them whole.
    """
    principal.require(scope)
    row = _visible_run(conn, principal, run_id)
    steps = queries.steps_of_run(conn, run_id)
    run = RunPublic.model_validate(dict(row._mapping))
    run.steps = [StepPublic.model_validate(dict(s._mapping)) for s in steps]
    return run


def get_step_data(
    conn: Connection,
    principal: Principal,
    run_id: uuid.UUID,
    step_path: str,
    part: StepPart,
    *,
    max_bytes: int,
) -> StepData:
    """The whole input or output of one step of a run the caller may see.

    404 for another agent's run or a step the run does not have; 413 when the value is
    over ``max_bytes`` of JSON text (only a row written before the caps can be).
    """
    principal.require(Scope.RUNS_READ)
    _visible_run(conn, principal, run_id)
    found = queries.step_data(conn, run_id, step_path, part, max_bytes=max_bytes)
    if found is None:
        raise NotFound(f"run {run_id} has no step {step_path!r}", field="step_path")
    if found.bytes > max_bytes:
        raise PayloadTooLarge(
            f"the {part.value} of step {step_path!r} is {found.bytes} bytes of JSON, more than "
            f"this API returns ({max_bytes})",
            field="part",
        )
    return StepData(
        run_id=run_id,
        step_path=step_path,
        part=part,
        attempt=found.attempt,
        bytes=found.bytes,
        value=found.value,
    )


def _visible_run(conn: Connection, principal: Principal, run_id: uuid.UUID) -> Row[Any]:
    """The run's row, or NotFound when there is none or it is another agent's (unless admin)."""
    row = queries.get_run(conn, run_id)
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no run {run_id}", field="run_id")
    return row
