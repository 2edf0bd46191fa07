"""Task operations: create, read, list. Validation happens here, before anything is stored."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Row

from ordinaut.errors import Forbidden, NotFound, ValidationError
from ordinaut.pipeline.validate import validate_payload
from ordinaut.policy import scopes
from ordinaut.scheduling.planning import fire_time
from ordinaut.scheduling.recurrence import ensure_not_past, parse_schedule
from ordinaut.service import cursor, policies
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import TaskCreate, TaskPublic, TimePoint
from ordinaut.store import queries
from ordinaut.tools.registry import tools_for_payload
from ordinaut.vocabulary import TIMED_KINDS, Scope, TaskStatus


def create_task(
    conn: Connection,
    principal: Principal,
    body: TaskCreate,
    *,
    now: datetime,
    default_tz: str,
    audit: Mapping[str, Any] | None = None,
) -> TaskPublic:
    """Validate and store a task; it is picked up by the next beat tick.

    ``audit`` adds to the audit entry (an approved change names its approver there).
    """
    principal.require(Scope.TASKS_WRITE)
    reject_untriggered(body.schedule_kind)
    tz = body.timezone or default_tz
    schedule = parse_schedule(body.schedule_kind, body.schedule_expr, tz, created_at=now)
    ensure_not_past(schedule, now)
    check_pipeline(conn, principal, body.payload)
    occurrence = schedule.next_after(now)
    if occurrence is None and body.schedule_kind in TIMED_KINDS:
        raise ValidationError(
            "the schedule has no occurrence after now (COUNT/UNTIL already used up?)",
            field="schedule_expr",
        )
    task_id = uuid.uuid4()
    values: dict[str, Any] = body.model_dump(exclude={"created_by", "timezone"})
    values.update(
        id=task_id,
        timezone=tz,
        quiet_hours=policies.quiet_hours_json(body.quiet_hours, "quiet_hours", tz),
        budgets=policies.budgets_json(body.budgets, "budgets", tz),
        created_by=principal.agent_id,
        next_occurrence_at=occurrence,
        next_run_at=fire_time(task_id, occurrence, body.jitter_seconds),
        created_at=now,
        updated_at=now,
    )
    row = queries.insert_task(conn, values)
    record(conn, principal, "task.create", task_id, details={"after": values, **(audit or {})})
    queries.emit(conn, [("task.created", {"task_id": str(task_id), "title": body.title})])
    return task_public(row)


UNTRIGGERED_KINDS = ("event", "condition")


def reject_untriggered(kind: str | None) -> None:
    """422 for schedule kinds whose trigger is not built yet, instead of a task that never runs."""
    if kind in UNTRIGGERED_KINDS:
        raise ValidationError(
            f"schedule_kind {kind!r} is not supported yet (no {kind} trigger runs); "
            "use cron, rrule or once",
            field="schedule_kind",
        )


def check_pipeline(conn: Connection, principal: Principal, payload: Any) -> None:
    """Validate a pipeline and make sure the caller holds every scope its tools need."""
    tools = tools_for_payload(conn, payload)
    pipeline = validate_payload(payload, tools)
    lacking = scopes.first_missing(pipeline, tools, principal.scopes)
    if lacking is not None:
        step, index = lacking.step, lacking.index
        raise Forbidden(
            f"step {step.id!r} uses {step.uses}, which needs the scope "
            f"{', '.join(sorted(lacking.scopes))} that this agent lacks",
            field=f"payload.pipeline[{index}].uses" if index is not None else "payload",
        )


def get_task(
    conn: Connection, principal: Principal, task_id: uuid.UUID, *, scope: str = Scope.TASKS_READ
) -> TaskPublic:
    """One task the caller may see (404 for another agent's, unless admin).

    Write operations pass ``scope=Scope.TASKS_WRITE``: an agent may always see what it changed.
    """
    principal.require(scope)
    row = queries.get_task(conn, task_id)
    if row is None or (row.created_by != principal.agent_id and not principal.is_admin):
        raise NotFound(f"no task {task_id}", field="task_id")
    return task_public(row)


def list_tasks(
    conn: Connection,
    principal: Principal,
    *,
    status: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[TaskPublic], str | None]:
    """The caller's tasks, newest first, with a cursor for the next page."""
    principal.require(Scope.TASKS_READ)
    if status is not None and status not in set(TaskStatus):
        names = ", ".join(TaskStatus)
        raise ValidationError(f"status must be one of {names}", field="status")
    rows = queries.list_tasks(
        conn,
        created_by=None if principal.is_admin else principal.agent_id,
        status=TaskStatus(status) if status is not None else None,
        before=cursor.decode(after) if after is not None else None,
        limit=limit + 1,
    )
    page = [task_public(r) for r in rows[:limit]]
    more = (
        cursor.encode(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return page, more


def task_public(row: Row[Any]) -> TaskPublic:
    """The public view of a task row, with next_run in UTC and local time."""
    data = dict(row._mapping)
    nxt = data["next_run_at"]
    data["next_run"] = (
        TimePoint(utc=nxt, local=nxt.astimezone(ZoneInfo(data["timezone"]))) if nxt else None
    )
    return TaskPublic.model_validate(data)
