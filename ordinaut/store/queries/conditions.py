"""Condition tasks: due checks claimed and advanced, each check recorded with its verdict."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.queries.jsonb import among, iso
from ordinaut.store.queries.render import literal
from ordinaut.store.tables import condition_check
from ordinaut.vocabulary import ScheduleKind, TaskStatus, Trigger


@dataclass(frozen=True)
class DueCheck:
    """A condition task whose check is due (claimed and advanced in one transaction)."""

    id: uuid.UUID
    created_by: uuid.UUID
    schedule_expr: str
    timezone: str
    created_at: datetime
    payload: Any
    condition: Any
    scheduled_for: datetime
    priority: int


_CLAIM_CHECKS = sa.text(
    f"""
    SELECT id, created_by, schedule_expr, timezone, created_at, payload, condition,
           next_check_at, priority
    FROM task
    WHERE status = {literal(TaskStatus.ACTIVE)}
      AND schedule_kind = {literal(ScheduleKind.CONDITION)}
      AND next_check_at IS NOT NULL AND next_check_at <= :now
    ORDER BY next_check_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def claim_due_checks(conn: Connection, now: datetime, limit: int) -> list[DueCheck]:
    """Lock up to ``limit`` active condition tasks whose next check has come."""
    rows = conn.execute(_CLAIM_CHECKS, {"now": now, "limit": limit}).all()
    return [
        DueCheck(
            id=r.id,
            created_by=r.created_by,
            schedule_expr=r.schedule_expr or "",
            timezone=r.timezone,
            created_at=r.created_at,
            payload=r.payload,
            condition=r.condition,
            scheduled_for=r.next_check_at,
            priority=r.priority,
        )
        for r in rows
    ]


_ADVANCE = sa.text(
    f"""
    UPDATE task AS t SET next_check_at = v.next_check_at, updated_at = now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, next_check_at timestamptz)
    WHERE t.id = v.id AND {among("t.id", "rows")}
    """
)


def advance_checks(conn: Connection, moves: Sequence[tuple[uuid.UUID, datetime | None]]) -> None:
    """Move claimed condition tasks to their next check (None: their cadence ended)."""
    if moves:
        rows = json.dumps([{"id": str(i), "next_check_at": iso(at)} for i, at in moves])
        conn.execute(_ADVANCE, {"rows": rows})


@dataclass(frozen=True)
class ConditionState:
    """What deciding a check needs of its task (locked)."""

    status: TaskStatus
    condition_state: bool | None
    condition_fired_at: datetime | None
    cooldown_seconds: int | None


_LOCK_STATE = sa.text(
    """
    SELECT status, condition_state, condition_fired_at, cooldown_seconds
    FROM task WHERE id = :id FOR UPDATE
    """
)


def lock_condition_state(conn: Connection, task_id: uuid.UUID) -> ConditionState | None:
    """The task's condition state, locked until commit (None if the task is gone)."""
    row = conn.execute(_LOCK_STATE, {"id": task_id}).first()
    if row is None:
        return None
    return ConditionState(
        TaskStatus(row.status), row.condition_state, row.condition_fired_at, row.cooldown_seconds
    )


_SET_STATE = sa.text(
    """
    UPDATE task SET condition_state = :state,
                    condition_fired_at = coalesce(:fired_at, condition_fired_at)
    WHERE id = :id
    """
)

_FIRE = sa.text(
    f"""
    INSERT INTO due_work (task_id, run_at, not_before, trigger, priority, event)
    VALUES (:task_id, :run_at, :run_at, {literal(Trigger.CONDITION)}, :priority,
            CAST(:event AS jsonb))
    ON CONFLICT (task_id, run_at) DO NOTHING
    """
)


def record_check(
    conn: Connection,
    *,
    task_id: uuid.UUID,
    scheduled_for: datetime,
    checked_at: datetime,
    result: bool | None,
    state: bool | None,
    fired: bool,
    reason: str,
    output: Any,
    error: str | None,
    priority: int,
) -> int:
    """Record one check, the task's new state and, when it fired, its due_work (the
    pipeline reads the check as ``${event.output}``); returns the check's id."""
    check_id: int = conn.execute(
        sa.insert(condition_check)
        .values(
            task_id=task_id,
            scheduled_for=scheduled_for,
            checked_at=checked_at,
            result=result,
            fired=fired,
            reason=reason,
            output=output,
            error=error,
        )
        .returning(condition_check.c.id)
    ).scalar_one()
    conn.execute(
        _SET_STATE, {"id": task_id, "state": state, "fired_at": checked_at if fired else None}
    )
    if fired:
        event = {"topic": "condition", "check_id": check_id, "output": output}
        conn.execute(
            _FIRE,
            {
                "task_id": task_id,
                "run_at": scheduled_for,
                "priority": priority,
                "event": json.dumps(event, default=str),
            },
        )
    return check_id


def list_checks(
    conn: Connection, task_id: uuid.UUID, *, before: int | None, limit: int
) -> Sequence[Row[Any]]:
    """A task's checks, newest first, at most ``limit`` (``before``: a check id to page on)."""
    query = sa.select(condition_check).where(condition_check.c.task_id == task_id)
    if before is not None:
        query = query.where(condition_check.c.id < before)
    return conn.execute(query.order_by(condition_check.c.id.desc()).limit(limit)).all()
