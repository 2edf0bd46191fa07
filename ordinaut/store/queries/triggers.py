"""Event triggers: the event tasks an event may fire, the fire ledger, and the backstop's
read of external events the stream never handed over (see ordinaut.events.trigger)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries.jsonb import iso
from ordinaut.store.queries.outbox import OutboxEvent
from ordinaut.store.queries.render import literal, one_of
from ordinaut.vocabulary import ScheduleKind, TaskStatus, Trigger

EXTERNAL_PREFIX = "event.external."


@dataclass(frozen=True)
class EventTask:
    """An active or paused event task, with what matching an event against it needs."""

    id: uuid.UUID
    created_by: uuid.UUID
    pattern: str
    event_filter: str | None
    status: TaskStatus
    priority: int


_EVENT_TASKS = sa.text(
    f"""
    SELECT id, created_by, schedule_expr, event_filter, status, priority
    FROM task
    WHERE schedule_kind = {literal(ScheduleKind.EVENT)}
      AND {one_of("status", (TaskStatus.ACTIVE, TaskStatus.PAUSED))}
      AND (CAST(:admin AS boolean) OR created_by = :publisher
           OR CAST(:publisher AS uuid) = ANY(event_sources))
      AND created_at <= :at
      AND (CAST(:after AS uuid) IS NULL OR id > :after)
    ORDER BY id
    LIMIT :limit
    """
)


def event_tasks(
    conn: Connection,
    *,
    publisher: uuid.UUID,
    admin: bool,
    at: datetime,
    after: uuid.UUID | None,
    limit: int,
) -> list[EventTask]:
    """Event tasks an event of ``publisher`` may reach (its own, those that name it in
    ``event_sources``, or all when ``admin``) that existed at ``at``; a page by id."""
    rows = conn.execute(
        _EVENT_TASKS,
        {"admin": admin, "publisher": publisher, "at": at, "after": after, "limit": limit},
    ).all()
    return [
        EventTask(
            id=r.id,
            created_by=r.created_by,
            pattern=r.schedule_expr or "",
            event_filter=r.event_filter,
            status=TaskStatus(r.status),
            priority=r.priority,
        )
        for r in rows
    ]


_CLAIM_FIRES = sa.text(
    """
    INSERT INTO event_fire (task_id, event_id)
    SELECT v.task_id, v.event_id
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(task_id uuid, event_id uuid)
    ON CONFLICT DO NOTHING
    RETURNING task_id, event_id
    """
)


def claim_fires(
    conn: Connection, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Record (task, event) pairs in the fire ledger; returns those not recorded before."""
    if not pairs:
        return set()
    rows = json.dumps([{"task_id": str(t), "event_id": str(e)} for t, e in pairs])
    return {(r.task_id, r.event_id) for r in conn.execute(_CLAIM_FIRES, {"rows": rows})}


_INSERT_EVENT_WORK = sa.text(
    f"""
    INSERT INTO due_work (task_id, run_at, not_before, trigger, priority, event)
    SELECT v.task_id, v.run_at, v.run_at, {literal(Trigger.EVENT)}, v.priority, v.event
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(task_id uuid, run_at timestamptz, priority int, event jsonb)
    ON CONFLICT (task_id, run_at) DO NOTHING
    RETURNING task_id, run_at
    """
)

_NUDGE = timedelta(microseconds=1)


def insert_event_work(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert event due_work (``task_id``, ``run_at``, ``priority``, ``event``), every row.

    ``UNIQUE (task_id, run_at)`` would drop a second event of the same task at the same
    microsecond; such a row is moved one microsecond later until it fits (the fire ledger,
    not this key, is what keeps an event from starting a task twice).
    """
    taken: set[tuple[uuid.UUID, datetime]] = set()
    pending: list[dict[str, Any]] = []
    for row in rows:
        item = dict(row)
        while (item["task_id"], item["run_at"]) in taken:
            item["run_at"] += _NUDGE
        taken.add((item["task_id"], item["run_at"]))
        pending.append(item)
    written = 0
    for _ in range(1000):
        if not pending:
            return written
        batch = json.dumps(
            [
                {
                    "task_id": str(p["task_id"]),
                    "run_at": iso(p["run_at"]),
                    "priority": p["priority"],
                    "event": p["event"],
                }
                for p in pending
            ]
        )
        done = {(r.task_id, r.run_at) for r in conn.execute(_INSERT_EVENT_WORK, {"rows": batch})}
        written += len(done)
        pending = [p for p in pending if (p["task_id"], p["run_at"]) not in done]
        for p in pending:
            p["run_at"] += _NUDGE
    raise RuntimeError("insert_event_work: could not place event work")  # pragma: no cover


_MARK_TRIGGERED = sa.text(
    "UPDATE outbox SET triggered_at = now() WHERE id = ANY(:ids) AND triggered_at IS NULL"
)


def mark_triggered(conn: Connection, outbox_ids: Sequence[int]) -> None:
    """Record that these external events were matched against the event tasks."""
    if outbox_ids:
        conn.execute(_MARK_TRIGGERED, {"ids": list(outbox_ids)})


_UNTRIGGERED = sa.text(
    """
    SELECT id, topic, payload, created_at FROM outbox
    WHERE triggered_at IS NULL AND topic LIKE 'event.external.%'
      AND published_at IS NOT NULL AND published_at < :before
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def untriggered_events(conn: Connection, *, before: datetime, limit: int) -> list[OutboxEvent]:
    """External events relayed before ``before`` that no trigger pass handled (locked)."""
    rows = conn.execute(_UNTRIGGERED, {"before": before, "limit": limit}).all()
    return [OutboxEvent(r.id, r.topic, r.payload, r.created_at) for r in rows]


@dataclass(frozen=True)
class EventBacklog:
    """What the maintenance pass has to do for events (all False when idle)."""

    untriggered: bool  # external events relayed before the cut-off that no pass handled
    checks_due: bool  # condition tasks whose check has come
    deliveries_due: bool  # webhook deliveries to try (new or retries)


_EVENT_BACKLOG = sa.text(
    f"""
    SELECT EXISTS (SELECT 1 FROM outbox
                   WHERE triggered_at IS NULL AND topic LIKE 'event.external.%'
                     AND published_at IS NOT NULL AND published_at < :before),
           EXISTS (SELECT 1 FROM task
                   WHERE status = {literal(TaskStatus.ACTIVE)}
                     AND schedule_kind = {literal(ScheduleKind.CONDITION)}
                     AND next_check_at IS NOT NULL AND next_check_at <= :now),
           EXISTS (SELECT 1 FROM webhook_delivery
                   WHERE status = 'pending' AND next_attempt_at <= :now)
    """
)


def event_backlog(conn: Connection, now: datetime, *, before: datetime) -> EventBacklog:
    """One read-only round trip, each part answered from a partial index."""
    row = conn.execute(_EVENT_BACKLOG, {"now": now, "before": before}).one()
    return EventBacklog(bool(row[0]), bool(row[1]), bool(row[2]))
