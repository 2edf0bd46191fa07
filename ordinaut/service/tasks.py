"""Task operations: create, read, list. Validation happens here, before anything is stored."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Row

from ordinaut.errors import Forbidden, NotFound, OrdinautError, ValidationError
from ordinaut.pipeline.template import TemplateError, compile_expr
from ordinaut.pipeline.validate import validate_payload
from ordinaut.policy import scopes
from ordinaut.scheduling.planning import fire_time
from ordinaut.scheduling.recurrence import ensure_not_past, parse_schedule
from ordinaut.service import cursor, policies
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import CheckPublic, TaskCreate, TaskPublic, TimePoint
from ordinaut.store import queries
from ordinaut.tools.registry import tools_for_payload
from ordinaut.vocabulary import TIMED_KINDS, ScheduleKind, Scope, TaskStatus


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
    check_event_fields(body.schedule_kind, body.event_filter, body.event_sources)
    check_condition(conn, principal, body.schedule_kind, body.condition, body.cooldown_seconds)
    tz = body.timezone or default_tz
    schedule = parse_schedule(body.schedule_kind, body.schedule_expr, tz, created_at=now)
    ensure_not_past(schedule, now)
    check_pipeline(conn, principal, body.payload)
    occurrence = schedule.next_after(now)
    if occurrence is None and body.schedule_kind in CADENCED_KINDS:
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
        **schedule_columns(body.schedule_kind, task_id, occurrence, body.jitter_seconds),
        created_at=now,
        updated_at=now,
    )
    row = queries.insert_task(conn, values)
    record(conn, principal, "task.create", task_id, details={"after": values, **(audit or {})})
    queries.emit(conn, [("task.created", {"task_id": str(task_id), "title": body.title})])
    return task_public(row)


CADENCED_KINDS = TIMED_KINDS | {ScheduleKind.CONDITION}
CONDITION_KEYS = ("uses", "with", "when")


def schedule_columns(
    kind: str, task_id: uuid.UUID, occurrence: datetime | None, jitter_seconds: int
) -> dict[str, Any]:
    """Where a task's next occurrence goes: ``next_run_at`` (beat fires it) for timed tasks,
    ``next_check_at`` (the condition checker) for condition tasks."""
    if kind == ScheduleKind.CONDITION:
        return {"next_occurrence_at": None, "next_run_at": None, "next_check_at": occurrence}
    return {
        "next_occurrence_at": occurrence,
        "next_run_at": fire_time(task_id, occurrence, jitter_seconds),
        "next_check_at": None,
    }


def check_condition(
    conn: Connection,
    principal: Principal,
    kind: str,
    condition: dict[str, Any] | None,
    cooldown_seconds: int | None,
) -> None:
    """A condition task's ``{"uses", "with", "when"}``, validated like a step: the tool
    exists and the caller holds its scopes, the arguments fit its schema, ``when`` is
    JMESPath; ``condition`` and ``cooldown_seconds`` belong to condition tasks only."""
    if kind != ScheduleKind.CONDITION:
        for name, value in (("condition", condition), ("cooldown_seconds", cooldown_seconds)):
            if value is not None:
                raise ValidationError(
                    f"{name} applies to schedule_kind 'condition' only (this task is {kind!r})",
                    field=name,
                )
        return
    if condition is None:
        raise ValidationError(
            'a condition task needs condition: {"uses": TOOL, "with": {...}, "when": JMESPATH}',
            field="condition",
        )
    for key in condition:
        if key not in CONDITION_KEYS:
            raise ValidationError(
                f"unknown key {key!r} (allowed: uses, with, when)", field=f"condition.{key}"
            )
    uses, args, when = condition.get("uses"), condition.get("with", {}), condition.get("when")
    if not isinstance(uses, str) or not uses:
        raise ValidationError("uses must name a tool (see list_tools)", field="condition.uses")
    if not isinstance(args, dict):
        raise ValidationError("with must be an object of arguments", field="condition.with")
    if not isinstance(when, str) or not 1 <= len(when) <= 1000:
        raise ValidationError(
            "when must be a JMESPath expression over the tool's output (1..1000 characters), "
            'e.g. "price < `100`"',
            field="condition.when",
        )
    try:
        compile_expr(when)
    except TemplateError as exc:
        raise ValidationError(exc.message, field="condition.when") from None
    step = {"pipeline": [{"id": "condition", "uses": uses, "with": args}]}
    try:
        check_pipeline(conn, principal, step)
    except OrdinautError as exc:
        if exc.field and exc.field.startswith("payload.pipeline[0]"):
            exc.field = "condition" + exc.field.removeprefix("payload.pipeline[0]")
        elif exc.field in ("payload", "payload.pipeline"):
            exc.field = "condition"
        raise


def check_event_fields(kind: str, event_filter: str | None, event_sources: list[Any]) -> None:
    """``event_filter`` and ``event_sources`` belong to event tasks; a filter must compile."""
    if kind != ScheduleKind.EVENT:
        for name, value in (("event_filter", event_filter), ("event_sources", event_sources)):
            if value:
                raise ValidationError(
                    f"{name} applies to schedule_kind 'event' only (this task is {kind!r})",
                    field=name,
                )
        return
    if event_filter is not None:
        try:
            compile_expr(event_filter)
        except TemplateError as exc:
            raise ValidationError(
                f"event_filter: {exc.message} (a JMESPath expression over the event's "
                "payload, e.g. \"priority == 'high'\")",
                field="event_filter",
            ) from None


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


def list_checks(
    conn: Connection,
    principal: Principal,
    task_id: uuid.UUID,
    *,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[CheckPublic], str | None]:
    """A condition task's checks, newest first: each result and why it did or did not fire."""
    get_task(conn, principal, task_id)  # 404 unless the caller may see the task
    before = None
    if after is not None:
        if not after.isdigit() or len(after) > 19:
            raise ValidationError("cursor must be a next_cursor this call returned", field="cursor")
        before = int(after)
    rows = queries.list_checks(conn, task_id, before=before, limit=limit + 1)
    page = [CheckPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    more = str(page[-1].id) if len(rows) > limit else None
    return page, more
