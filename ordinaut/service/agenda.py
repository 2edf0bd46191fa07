"""The agenda operation: the caller's fires in a window, computed as beat computes them.

The math is :mod:`ordinaut.scheduling.agenda` (pure); this reads the caller's active tasks
(only their schedule columns, ``chunk`` rows a query, in the order the merge takes them, and
only as many chunks as the page needs), checks the window, tz, limit and cursor, and shapes
the page. Memory per request: one chunk of rows and the page, whatever the task count.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ordinaut.errors import ValidationError
from ordinaut.scheduling import agenda as plan
from ordinaut.scheduling.planning import schedule_of
from ordinaut.scheduling.wall import parse_timezone
from ordinaut.service.auth import Principal
from ordinaut.service.inputs import check_instant
from ordinaut.store import queries
from ordinaut.vocabulary import MisfirePolicy, Scope

DEFAULT_LIMIT = 500
DEFAULT_CHUNK = 1000


class AgendaItem(BaseModel):
    """One fire of one task: when (UTC and in the asked zone), and for which occurrence."""

    at: datetime = Field(description="When the scheduler fires it (UTC; jitter included).")
    local: datetime = Field(description="The same instant in the asked zone (tz).")
    occurrence: datetime = Field(description="The schedule's nominal occurrence (UTC).")
    task_id: uuid.UUID
    title: str
    timezone: str = Field(description="The task's own zone.")
    notes: list[str] = Field(
        default_factory=list, description="DST shifts, snooze, overdue (missed by beat)."
    )


class AgendaPage(BaseModel):
    """Fires in order, with the cursor for the next page (null at the end)."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    items: list[AgendaItem]
    next_cursor: str | None = None
    from_: datetime = Field(alias="from")
    to: datetime
    tz: str


def agenda(
    conn: Connection,
    principal: Principal,
    *,
    start: datetime | None,
    end: datetime | None,
    tz: str,
    limit: int,
    after: str | None,
    now: datetime,
    task_id: uuid.UUID | None = None,
    grace: timedelta = plan.DEFAULT_GRACE,
    cap: int = plan.DEFAULT_CAP,
    chunk: int = DEFAULT_CHUNK,
) -> AgendaPage:
    """Every fire of the caller's active tasks in ``[start, end)`` (default: the next 24 h)."""
    principal.require(Scope.TASKS_READ)
    zone = parse_timezone(tz, field="tz")
    if not 1 <= limit <= plan.MAX_ITEMS:
        raise ValidationError(f"limit must be between 1 and {plan.MAX_ITEMS}", field="limit")
    for value, name in ((start, "from"), (end, "to")):
        if value is not None:
            if value.tzinfo is None:
                raise ValidationError(f"{name} needs a UTC offset", field=name)
            check_instant(value, name)
    start = start or now
    end = end or start + timedelta(days=1)
    why = plan.check_window(start, end)
    if why:
        raise ValidationError(why, field="to")
    key = decode_cursor(after) if after is not None else None
    tasks = _tasks(
        conn,
        created_by=None if principal.is_admin else principal.agent_id,
        before=end,
        task_id=task_id,
        chunk=chunk,
    )
    items, more = plan.agenda(
        tasks,
        start,
        end,
        now,
        limit=limit,
        after=key,
        grace=grace,
        cap=cap,
        ordered=True,
    )
    return AgendaPage.model_validate(
        {
            "items": [
                AgendaItem(
                    at=i.at,
                    local=i.at.astimezone(zone),
                    occurrence=i.occurrence,
                    task_id=i.task_id,
                    title=i.title,
                    timezone=i.timezone,
                    notes=list(i.notes),
                )
                for i in items
            ],
            "next_cursor": encode_cursor(items[-1].key) if more and items else None,
            "from": start,
            "to": end,
            "tz": zone.key,
        }
    )


def _tasks(
    conn: Connection,
    *,
    created_by: uuid.UUID | None,
    before: datetime,
    task_id: uuid.UUID | None,
    chunk: int,
) -> Iterator[plan.AgendaTask]:
    """The active tasks in order of their earliest fire, read ``chunk`` rows at a time
    (keyset paging), as the merge asks for them."""
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        rows = queries.agenda_tasks(
            conn, created_by=created_by, before=before, limit=chunk, after=after, task_id=task_id
        )
        for row in rows:
            task = _task(row)
            if task is not None:
                yield task
        if len(rows) < chunk:
            return
        after = (rows[-1].earliest, rows[-1].id)


def _task(row: Any) -> plan.AgendaTask | None:
    """The row as the agenda reads it; ``None`` for a schedule beat would pause (it does not
    fire: beat pauses it at its next tick and says why)."""
    try:
        schedule = schedule_of(row.schedule_kind, row.schedule_expr, row.timezone, row.created_at)
    except Exception:  # the same rule as beat: one bad row must not hide the others
        return None
    return plan.AgendaTask(
        id=row.id,
        title=row.title,
        schedule=schedule,
        next_occurrence_at=row.next_occurrence_at,
        next_run_at=row.next_run_at,
        jitter_seconds=row.jitter_seconds,
        misfire_policy=MisfirePolicy(row.misfire_policy),
    )


def encode_cursor(key: plan.Key) -> str:
    """The cursor continuing after the agenda item with ``key``."""
    at, task_id, occurrence = key
    raw = f"{at.isoformat()}|{task_id}|{occurrence.isoformat()}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> plan.Key:
    """Parse a cursor made by :func:`encode_cursor`; ValidationError(field="cursor") otherwise."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at, task_id, occurrence = raw.split("|")
        parsed = (
            datetime.fromisoformat(at),
            uuid.UUID(task_id),
            datetime.fromisoformat(occurrence),
        )
        for moment in (parsed[0], parsed[2]):
            if moment.tzinfo is None:
                raise ValueError("naive")
            check_instant(moment, "cursor")
        return parsed
    except (ValueError, UnicodeDecodeError, ValidationError):
        raise ValidationError(
            "invalid cursor: pass back a next_cursor value", field="cursor"
        ) from None
