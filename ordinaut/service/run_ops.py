"""Run operations: cancel, approve, reject."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.engine import Connection

from ordinaut.errors import Conflict, NotFound
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import RunPublic
from ordinaut.service.runs import get_run
from ordinaut.store import queries
from ordinaut.store.queries import transitions
from ordinaut.vocabulary import RunStatus, Scope


def _owned_run(conn: Connection, principal: Principal, run_id: uuid.UUID) -> queries.LockedRun:
    row = queries.lock_run(conn, run_id)
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no run {run_id}", field="run_id")
    return row


def cancel_run(
    conn: Connection, principal: Principal, run_id: uuid.UUID, *, now: datetime
) -> RunPublic:
    """Cancel a queued, waiting or running run (a running one stops between steps)."""
    principal.require(Scope.TASKS_WRITE)
    row = _owned_run(conn, principal, run_id)
    if row.status not in transitions.CANCEL.sources:
        raise Conflict(f"run is already {row.status}", field="status")
    queries.cancel_run(conn, run_id, now=now, reason="canceled by request")
    record(conn, principal, "run.cancel", run_id, details={"from": row.status.value})
    queries.emit(
        conn, [("task.run.canceled", {"run_id": str(run_id), "task_id": str(row.task_id)})]
    )
    return get_run(conn, principal, run_id, scope=Scope.TASKS_WRITE)


def decide_run(
    conn: Connection, principal: Principal, run_id: uuid.UUID, *, approve: bool, now: datetime
) -> RunPublic:
    """Approve (→ queued) or reject (→ canceled) a run waiting for approval; 409 otherwise."""
    principal.require(Scope.RUNS_APPROVE)
    row = _owned_run(conn, principal, run_id)
    if row.status is not RunStatus.WAITING_APPROVAL:
        raise Conflict(f"run is {row.status}, not waiting for approval", field="status")
    if approve:
        queries.approve_run(conn, run_id)
    else:
        queries.reject_run(conn, run_id, now=now, reason="rejected")
    action = "approve" if approve else "reject"
    record(conn, principal, f"run.{action}", run_id)
    topic = "task.run.approved" if approve else "task.run.rejected"
    queries.emit(conn, [(topic, {"run_id": str(run_id), "task_id": str(row.task_id)})])
    return get_run(conn, principal, run_id, scope=Scope.RUNS_APPROVE)
