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
from ordinaut.vocabulary import ResumeAction, RunStatus, Scope


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
    conn: Connection,
    principal: Principal,
    run_id: uuid.UUID,
    *,
    approve: bool,
    now: datetime,
    comment: str | None = None,
) -> RunPublic:
    """Approve or reject a run waiting for approval; 409 otherwise (or when it was decided).

    Approving makes the run's resume due now: the next dispatch pass queues it again (when
    its concurrency slot is free) and it goes on from the gated step; rejecting ends it
    ``canceled`` with the reason. Both are audited with who decided and the comment.
    """
    principal.require(Scope.RUNS_APPROVE)
    row = _owned_run(conn, principal, run_id)
    if row.status is not RunStatus.WAITING_APPROVAL:
        raise Conflict(f"run is {row.status}, not waiting for approval", field="status")
    who = principal.name or str(principal.agent_id)
    if approve:
        if not queries.request_resume(
            conn, run_id, ResumeAction.APPROVE, at=now, by=principal.agent_id
        ):
            raise Conflict("run was already decided; it is about to resume or end", field="status")
    else:
        reason = f"rejected by {who}" + (f": {comment}" if comment else "")
        if not queries.reject_run(conn, run_id, now=now, reason=reason):
            raise Conflict("run is not waiting for approval any more", field="status")
    action = "approve" if approve else "reject"
    details = {"step": row.suspended_step, "decided_by": who, "comment": comment}
    record(conn, principal, f"run.{action}", run_id, details=details)
    topic = "task.run.approved" if approve else "task.run.rejected"
    payload = {"run_id": str(run_id), "task_id": str(row.task_id), **details}
    queries.emit(conn, [(topic, payload)])
    return get_run(conn, principal, run_id, scope=Scope.RUNS_APPROVE)
