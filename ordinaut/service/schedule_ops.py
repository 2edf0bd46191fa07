"""Operations on a task's schedule: snooze, skip the next occurrences, preview any expression."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.errors import Conflict, ValidationError
from ordinaut.scheduling.expansion import Budget
from ordinaut.scheduling.planning import fire_time
from ordinaut.scheduling.recurrence import MAX_PREVIEW, parse_schedule, preview
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.inputs import check_instant
from ordinaut.service.models import SkipIn, SnoozeIn, TaskPublic
from ordinaut.service.task_ops import owned_task
from ordinaut.service.tasks import get_task
from ordinaut.store import queries
from ordinaut.vocabulary import Scope, TaskStatus, Trigger

MAX_RECORDED_SKIPS = 100


def _record_skipped(
    conn: Connection, row: Any, occurrences: list[datetime], now: datetime, reason: str
) -> None:
    """Record occurrences that will not run, each with its event (the statement beat uses)."""
    queries.record_skipped_runs(
        conn,
        [
            {
                "task_id": row.id,
                "trigger": Trigger.SCHEDULE.value,
                "scheduled_for": at,
                "priority": row.priority,
                "reason": reason,
                "finished_at": now,
            }
            for at in occurrences
        ],
    )


def snooze(
    conn: Connection, principal: Principal, task_id: uuid.UUID, body: SnoozeIn, *, now: datetime
) -> TaskPublic:
    """Move the next occurrence later; occurrences it jumps over are recorded as skipped."""
    if body.until is not None:
        check_instant(body.until, "until")
    row = owned_task(conn, principal, task_id)
    if row.status != TaskStatus.ACTIVE or row.next_run_at is None:
        raise Conflict(f"task is {row.status} and has nothing scheduled to snooze", field="status")
    target = row.next_run_at + timedelta(seconds=body.seconds) if body.seconds else body.until
    assert target is not None
    check_instant(target, "seconds" if body.seconds else "until")
    if target <= now:
        raise ValidationError("until must be in the future", field="until")
    schedule = parse_schedule(
        row.schedule_kind, row.schedule_expr, row.timezone, created_at=row.created_at
    )
    jumped: list[datetime] = []
    cursor = row.next_occurrence_at or row.next_run_at
    budget = Budget()  # one expansion budget for the whole walk
    following = schedule.next_after(cursor, budget)
    while following is not None and following <= target and len(jumped) < MAX_RECORDED_SKIPS:
        jumped.append(following)
        following = schedule.next_after(following, budget)
    _record_skipped(conn, row, jumped, now, "superseded by snooze")
    values = {"next_occurrence_at": target, "next_run_at": target, "updated_at": now}
    queries.update_task(conn, task_id, values)
    record(conn, principal, "task.snooze", task_id, before=row, changes=values)
    queries.emit(
        conn, [("task.snoozed", {"task_id": str(task_id), "next_run_at": target.isoformat()})]
    )
    return get_task(conn, principal, task_id, scope=Scope.TASKS_WRITE)


def skip_next(
    conn: Connection, principal: Principal, task_id: uuid.UUID, body: SkipIn, *, now: datetime
) -> TaskPublic:
    """Drop the next ``count`` occurrences, each recorded as a skipped run."""
    row = owned_task(conn, principal, task_id)
    if row.status not in (TaskStatus.ACTIVE, TaskStatus.PAUSED) or row.next_occurrence_at is None:
        raise Conflict(f"task is {row.status} and has no next occurrence", field="status")
    schedule = parse_schedule(
        row.schedule_kind, row.schedule_expr, row.timezone, created_at=row.created_at
    )
    skipped: list[datetime] = []
    current: datetime | None = row.next_occurrence_at
    budget = Budget()  # one expansion budget for the whole walk
    while current is not None and len(skipped) < body.count:
        skipped.append(current)
        current = schedule.next_after(current, budget)
    _record_skipped(conn, row, skipped, now, "skipped on request")
    values: dict[str, Any] = {
        "next_occurrence_at": current,
        "next_run_at": fire_time(row.id, current, row.jitter_seconds),
        "updated_at": now,
    }
    if current is None:
        values["status"] = TaskStatus.COMPLETED
    queries.update_task(conn, task_id, values)
    record(conn, principal, "task.skip_next", task_id, before=row, changes=values)
    return get_task(conn, principal, task_id, scope=Scope.TASKS_WRITE)


def preview_schedule(
    kind: str, expr: str, tz: str, *, count: int, after: datetime | None, now: datetime
) -> dict[str, Any]:
    """The next ``count`` occurrences strictly after ``after`` (default now), with DST notes."""
    if not 1 <= count <= MAX_PREVIEW:
        raise ValidationError(f"count must be between 1 and {MAX_PREVIEW}", field="count")
    if after is not None and after.tzinfo is None:
        raise ValidationError("after needs a UTC offset, e.g. 2026-12-01T09:00:00Z", field="after")
    if after is not None:
        check_instant(after, "after")
    result = preview(kind, expr, tz, count=count, after=after or now)
    return {
        "occurrences": [
            {
                "utc": o.utc.isoformat().replace("+00:00", "Z"),
                "local": o.local.isoformat(),
                **({"note": o.note} if o.note else {}),
            }
            for o in result.occurrences
        ],
        "notes": list(result.notes),
    }
