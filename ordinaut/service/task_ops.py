"""Task lifecycle operations: update, run now, pause, resume, cancel.

Each is one transaction that checks ownership and state, changes the row with a
conditional UPDATE, writes the audit entry (before/after) and an outbox event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from ordinaut.errors import Conflict, NotFound
from ordinaut.scheduling.recurrence import ensure_not_past, parse_schedule
from ordinaut.service import policies
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import RunNowAccepted, TaskPublic, TaskUpdate
from ordinaut.service.tasks import (
    CADENCED_KINDS,
    check_condition,
    check_event_fields,
    check_pipeline,
    get_task,
    schedule_columns,
    task_public,
)
from ordinaut.store import queries
from ordinaut.vocabulary import ScheduleKind, Scope, TaskStatus, Trigger

_SCHEDULE_FIELDS = {"schedule_kind", "schedule_expr", "timezone"}


def owned_task(conn: Connection, principal: Principal, task_id: uuid.UUID) -> Row[Any]:
    """The task row, locked for update, if the caller may change it (404 otherwise)."""
    principal.require(Scope.TASKS_WRITE)
    row = queries.get_task(conn, task_id, lock=True)
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no task {task_id}", field="task_id")
    return row


def update_task(
    conn: Connection,
    principal: Principal,
    task_id: uuid.UUID,
    body: TaskUpdate,
    *,
    now: datetime,
    audit: Mapping[str, Any] | None = None,
) -> TaskPublic:
    """Change any mutable field; a schedule change recomputes the next run from now.

    ``audit`` adds to the audit entry (an approved change names its approver there).
    """
    row = owned_task(conn, principal, task_id)
    if (
        row.status in (TaskStatus.CANCELED, TaskStatus.COMPLETED)
        and body.model_fields_set & _SCHEDULE_FIELDS
    ):
        raise Conflict(f"task is {row.status}; create a new task instead", field="status")
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if not changes:
        return task_public(row)
    if "payload" in changes:
        check_pipeline(conn, principal, changes["payload"])
    check_event_fields(
        changes.get("schedule_kind", row.schedule_kind),
        changes.get("event_filter", row.event_filter),
        changes.get("event_sources", row.event_sources),
    )
    if changes.keys() & {"schedule_kind", "condition", "cooldown_seconds"}:
        check_condition(
            conn,
            principal,
            changes.get("schedule_kind", row.schedule_kind),
            changes.get("condition", row.condition),
            changes.get("cooldown_seconds", row.cooldown_seconds),
        )
    tz = changes.get("timezone", row.timezone)
    if "quiet_hours" in changes:
        changes["quiet_hours"] = policies.quiet_hours_json(body.quiet_hours, "quiet_hours", tz)
    if "budgets" in changes:
        changes["budgets"] = policies.budgets_json(body.budgets, "budgets", tz)
    if changes.keys() & _SCHEDULE_FIELDS or "jitter_seconds" in changes:
        kind = changes.get("schedule_kind", row.schedule_kind)
        expr = changes.get("schedule_expr", row.schedule_expr)
        tz = changes.get("timezone", row.timezone)
        schedule = parse_schedule(kind, expr, tz, created_at=row.created_at)
        if changes.keys() & _SCHEDULE_FIELDS:
            ensure_not_past(schedule, now)
        occurrence = schedule.next_after(now)
        jitter = changes.get("jitter_seconds", row.jitter_seconds)
        changes.update(schedule_columns(kind, row.id, occurrence, jitter))
        if occurrence is None and kind in CADENCED_KINDS:
            changes["status"] = TaskStatus.COMPLETED
    changes["updated_at"] = now
    queries.update_task(conn, task_id, changes)
    after = get_task(conn, principal, task_id, scope=Scope.TASKS_WRITE)
    record(
        conn,
        principal,
        "task.update",
        task_id,
        before=row,
        changes=changes,
        details=dict(audit or {}),
    )
    queries.emit(conn, [("task.updated", {"task_id": str(task_id), "fields": sorted(changes)})])
    return after


def _refuse_revoked_owner(conn: Connection, row: Row[Any]) -> None:
    """A revoked agent's tasks stay paused: nothing may set them going again."""
    owner = queries.get_agent(conn, row.created_by)
    if owner is not None and owner.revoked_at is not None:
        raise Conflict(f"{queries.OWNER_REVOKED}; its tasks stay paused", field="created_by")


def run_now(
    conn: Connection, principal: Principal, task_id: uuid.UUID, *, now: datetime
) -> RunNowAccepted:
    """Queue an extra occurrence for right now (active or completed tasks; 409 otherwise)."""
    row = owned_task(conn, principal, task_id)
    if row.status == TaskStatus.CANCELED:
        raise Conflict("task is canceled", field="status")
    if row.status == TaskStatus.PAUSED:
        raise Conflict("task is paused; resume it first", field="status")
    _refuse_revoked_owner(conn, row)
    queries.insert_due_work(
        conn,
        [
            {
                "task_id": task_id,
                "run_at": now,
                "not_before": now,
                "trigger": Trigger.MANUAL.value,
                "priority": row.priority,
            }
        ],
    )
    record(conn, principal, "task.run_now", task_id, details={"run_at": now.isoformat()})
    queries.emit(conn, [("task.run_now", {"task_id": str(task_id), "run_at": now.isoformat()})])
    return RunNowAccepted(task_id=task_id, scheduled_for=now)


def set_status(
    conn: Connection,
    principal: Principal,
    task_id: uuid.UUID,
    action: str,
    *,
    now: datetime,
) -> TaskPublic:
    """pause (active → paused), resume (paused → active) or cancel (any live → canceled)."""
    row = owned_task(conn, principal, task_id)
    allowed = {
        "pause": ({TaskStatus.ACTIVE}, TaskStatus.PAUSED),
        "resume": ({TaskStatus.PAUSED}, TaskStatus.ACTIVE),
        "cancel": (
            {TaskStatus.ACTIVE, TaskStatus.PAUSED, TaskStatus.COMPLETED},
            TaskStatus.CANCELED,
        ),
    }[action]
    sources, target = allowed
    if row.status not in sources:
        raise Conflict(f"cannot {action} a task that is {row.status}", field="status")
    if action == "resume":
        _refuse_revoked_owner(conn, row)
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "cancel":
        values.update(next_run_at=None, next_occurrence_at=None)
        queries.delete_task_due_work(conn, task_id)
        queries.cancel_task_runs(conn, task_id, now=now, reason="task canceled")
    if action == "resume" and row.next_run_at is None and row.schedule_kind == ScheduleKind.ONCE:
        values["status"] = TaskStatus.COMPLETED  # its moment passed while it was paused
    queries.update_task(conn, task_id, values)
    record(conn, principal, f"task.{action}", task_id, before=row, changes=values)
    queries.emit(conn, [(f"task.{target}", {"task_id": str(task_id)})])
    return get_task(conn, principal, task_id, scope=Scope.TASKS_WRITE)
