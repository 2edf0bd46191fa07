"""Task rows: created, read, listed and changed by the service; claimed and advanced by beat."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.queries import driver
from ordinaut.store.queries.due_work import TOOL_POOL
from ordinaut.store.queries.jsonb import among, iso
from ordinaut.store.queries.render import literal
from ordinaut.store.tables import task
from ordinaut.vocabulary import MisfirePolicy, OverlapPolicy, ScheduleKind, TaskStatus


@dataclass(frozen=True)
class DueTask:
    """A task beat claimed because its ``next_run_at`` has come (locked until commit)."""

    id: uuid.UUID
    schedule_kind: ScheduleKind
    schedule_expr: str | None
    timezone: str
    created_at: datetime
    next_occurrence_at: datetime | None
    next_run_at: datetime
    misfire_policy: MisfirePolicy
    jitter_seconds: int
    priority: int
    overlap_policy: OverlapPolicy
    concurrency_key: str | None
    dedupe_key: str | None
    dedupe_window_seconds: int
    title: str = ""
    # a worker pool, or a runs_per_day budget (its own or its agent's): dispatch decides
    dispatched: bool = False

    @property
    def runs_freely(self) -> bool:
        """True when no rule relates its runs to other runs (no concurrency key, dedupe
        window, overlap guard, runs budget or worker pool): beat may then create its runs
        itself, without dispatch."""
        return (
            not self.dispatched
            and self.concurrency_key is None
            and not (self.dedupe_key and self.dedupe_window_seconds > 0)
            and self.overlap_policy is OverlapPolicy.ALLOW
        )


# Batches travel as one JSON parameter (jsonb_to_recordset): one short statement to parse
# and plan whatever the batch size, where a multi-row VALUES list costs a bind per cell.

_CLAIM_DUE_TASKS = sa.text(
    f"""
    SELECT id, schedule_kind, schedule_expr, timezone, created_at, next_occurrence_at,
           next_run_at, misfire_policy, jitter_seconds, priority, overlap_policy,
           concurrency_key, dedupe_key, dedupe_window_seconds, title,
           (worker_pool IS NOT NULL OR budgets->'runs_per_day' IS NOT NULL
            OR EXISTS (SELECT 1 FROM agent a
                       WHERE a.id = task.created_by AND a.budgets->'runs_per_day' IS NOT NULL)
            OR (EXISTS (SELECT 1 FROM tool WHERE worker_pool IS NOT NULL)
                AND {TOOL_POOL.format(task="task")} IS NOT NULL))
             AS dispatched
    FROM task
    WHERE status = {literal(TaskStatus.ACTIVE)} AND next_run_at IS NOT NULL
      AND next_run_at <= :now
    ORDER BY next_run_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def claim_due_tasks(conn: Connection, now: datetime, limit: int) -> list[DueTask]:
    """Lock up to ``limit`` active tasks whose next_run_at has come, earliest first.

    Rows another transaction holds are skipped, not waited for; a row changed and committed
    since this statement's snapshot is re-checked against its new ``next_run_at``.
    """
    rows = driver.rows(conn, _CLAIM_DUE_TASKS, {"now": now, "limit": limit})
    return [
        DueTask(
            id=r.id,
            schedule_kind=ScheduleKind(r.schedule_kind),
            schedule_expr=r.schedule_expr,
            timezone=r.timezone,
            created_at=r.created_at,
            next_occurrence_at=r.next_occurrence_at,
            next_run_at=r.next_run_at,
            misfire_policy=MisfirePolicy(r.misfire_policy),
            jitter_seconds=r.jitter_seconds,
            priority=r.priority,
            overlap_policy=OverlapPolicy(r.overlap_policy),
            concurrency_key=r.concurrency_key,
            dedupe_key=r.dedupe_key,
            dedupe_window_seconds=r.dedupe_window_seconds,
            title=r.title,
            dispatched=r.dispatched,
        )
        for r in rows
    ]


def advance_tasks_sql(param: str) -> str:
    """The UPDATE moving claimed tasks to their next occurrence, from ``:param``."""
    return f"""
        UPDATE task AS t
        SET next_occurrence_at = v.next_occurrence_at,
            next_run_at = v.next_run_at,
            status = coalesce(v.status, t.status),
            updated_at = now()
        FROM jsonb_to_recordset(CAST(:{param} AS jsonb))
             AS v(id uuid, next_occurrence_at timestamptz, next_run_at timestamptz, status text)
        WHERE t.id = v.id AND {among("t.id", param)}
        RETURNING t.id, v.status
    """


def advanced_events_sql(moved: str) -> str:
    """A ``task.<status>`` event for each task of the CTE ``moved`` whose status changed."""
    return f"""
    INSERT INTO outbox (topic, payload)
    SELECT 'task.' || status, jsonb_build_object('task_id', id, 'by', 'scheduler')
    FROM {moved} WHERE status IS NOT NULL
    """


def advance_batch(updates: Sequence[Mapping[str, Any]]) -> str:
    """The JSON parameter of the advance: each update has ``id``, ``next_occurrence_at``,
    ``next_run_at`` and ``status`` (``None`` keeps the task's status; beat sets
    ``completed`` or ``paused``, and each such change writes a ``task.<status>`` event)."""
    return json.dumps(
        [
            {
                "id": str(u["id"]),
                "next_occurrence_at": iso(u["next_occurrence_at"]),
                "next_run_at": iso(u["next_run_at"]),
                "status": None if u["status"] is None else TaskStatus(u["status"]).value,
            }
            for u in updates
        ]
    )


def insert_task(conn: Connection, values: Mapping[str, Any]) -> Row[Any]:
    """Store a new task (``values`` are task columns) and return its row."""
    return conn.execute(sa.insert(task).values(dict(values)).returning(task)).one()


def get_task(conn: Connection, task_id: uuid.UUID, *, lock: bool = False) -> Row[Any] | None:
    """The task row, or None; ``lock`` holds it (``FOR UPDATE``) until the transaction ends."""
    query = sa.select(task).where(task.c.id == task_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def list_tasks(
    conn: Connection,
    *,
    created_by: uuid.UUID | None,
    status: TaskStatus | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Tasks newest first (by ``created_at``, then id), at most ``limit``.

    ``created_by`` None lists every agent's; ``before`` is the (created_at, id) a page
    continues after.
    """
    query = sa.select(task)
    if created_by is not None:
        query = query.where(task.c.created_by == created_by)
    if status is not None:
        query = query.where(task.c.status == status.value)
    if before is not None:
        query = query.where(sa.tuple_(task.c.created_at, task.c.id) < sa.tuple_(*before))
    return conn.execute(
        query.order_by(task.c.created_at.desc(), task.c.id.desc()).limit(limit)
    ).all()


def update_task(conn: Connection, task_id: uuid.UUID, values: Mapping[str, Any]) -> None:
    """Change a task's columns (``values``); the caller checked what may change."""
    conn.execute(sa.update(task).where(task.c.id == task_id).values(dict(values)))


_PAUSE_TASKS_OF = sa.text(
    f"""
    WITH paused AS (
        UPDATE task SET status = {literal(TaskStatus.PAUSED)}, updated_at = :now
        WHERE created_by = :owner AND status = {literal(TaskStatus.ACTIVE)}
        RETURNING id
    ), audit AS (
        INSERT INTO audit_log (actor_agent_id, action, subject_id, details)
        SELECT :actor, 'task.pause', id,
               jsonb_build_object('reason', CAST(:reason AS text),
                                  'before', jsonb_build_object('status',
                                                               {literal(TaskStatus.ACTIVE)}),
                                  'after', jsonb_build_object('status',
                                                              {literal(TaskStatus.PAUSED)}))
        FROM paused
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.paused', jsonb_build_object('task_id', id, 'reason', CAST(:reason AS text))
        FROM paused
    )
    SELECT id FROM paused
    """
)


def pause_tasks_of(
    conn: Connection, owner: uuid.UUID, *, actor: uuid.UUID, reason: str, now: datetime
) -> list[uuid.UUID]:
    """Every active task of ``owner`` → paused, each with its audit entry (by ``actor``) and
    ``task.paused`` event carrying ``reason``; returns their ids."""
    params = {"owner": owner, "actor": actor, "reason": reason, "now": now}
    return list(conn.execute(_PAUSE_TASKS_OF, params).scalars())


def count_active_tasks(
    conn: Connection, created_by: uuid.UUID, *, excluding: uuid.UUID | None = None
) -> int:
    """How many of an agent's tasks are active (leaving ``excluding`` out)."""
    query = sa.select(sa.func.count()).where(
        task.c.created_by == created_by, task.c.status == TaskStatus.ACTIVE.value
    )
    if excluding is not None:
        query = query.where(task.c.id != excluding)
    return int(conn.execute(query).scalar_one())


_EARLIEST = "LEAST(next_run_at, COALESCE(next_occurrence_at, next_run_at))"
_AGENDA_TASKS = sa.text(
    f"""
    SELECT id, title, schedule_kind, schedule_expr, timezone, created_at, next_occurrence_at,
           next_run_at, jitter_seconds, misfire_policy, {_EARLIEST} AS earliest
    FROM task
    WHERE status = {literal(TaskStatus.ACTIVE)} AND next_run_at IS NOT NULL
      AND next_run_at < :before AND (CAST(:owner AS uuid) IS NULL OR created_by = :owner)
      AND (CAST(:task AS uuid) IS NULL OR id = :task)
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR ({_EARLIEST}, id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    ORDER BY earliest, id
    LIMIT :limit
    """
)


def agenda_tasks(
    conn: Connection,
    *,
    created_by: uuid.UUID | None,
    before: datetime,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    task_id: uuid.UUID | None = None,
) -> Sequence[Row[Any]]:
    """Up to ``limit`` active tasks (of ``created_by``, or everyone's; only ``task_id`` if
    given) that fire before ``before``, in order of ``earliest`` (the first instant each can
    fire: the smaller of next_run_at and next_occurrence_at) then id, strictly after the
    ``(earliest, id)`` of ``after``: the schedule columns the agenda needs, not the payload."""
    after_at, after_id = after if after is not None else (None, None)
    params = {
        "owner": created_by,
        "before": before,
        "task": task_id,
        "after_at": after_at,
        "after_id": after_id,
        "limit": limit,
    }
    return conn.execute(_AGENDA_TASKS, params).all()
