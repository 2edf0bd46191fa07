"""Beat's statements: claim due tasks, write due_work and skipped runs, advance, plan sleep."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

# Batches travel as one JSON parameter (jsonb_to_recordset): one short statement to parse
# and plan whatever the batch size, where a multi-row VALUES list costs a bind per cell.

_CLAIM_DUE_TASKS = sa.text(
    """
    SELECT id, schedule_kind, schedule_expr, timezone, created_at, next_occurrence_at,
           next_run_at, misfire_policy, jitter_seconds, priority
    FROM task
    WHERE status = 'active' AND next_run_at IS NOT NULL AND next_run_at <= :now
    ORDER BY next_run_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def claim_due_tasks(conn: Connection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Lock up to ``limit`` active tasks whose next_run_at has come, earliest first.

    Rows another transaction holds are skipped, not waited for; a row changed and committed
    since this statement's snapshot is re-checked against its new ``next_run_at``.
    """
    return conn.execute(_CLAIM_DUE_TASKS, {"now": now, "limit": limit}).all()


_INSERT_DUE_WORK = sa.text(
    """
    INSERT INTO due_work (task_id, run_at, not_before, trigger, attempt, priority, event)
    SELECT v.task_id, v.run_at, coalesce(v.not_before, v.run_at), coalesce(v.trigger, 'schedule'),
           coalesce(v.attempt, 1), coalesce(v.priority, 5), v.event
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(task_id uuid, run_at timestamptz, not_before timestamptz, trigger text,
              attempt int, priority int, event jsonb)
    ON CONFLICT (task_id, run_at) DO NOTHING
    """
)


def insert_due_work(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert due_work rows; an existing (task_id, run_at) is left alone. Returns rows added.

    Each row has ``task_id`` and ``run_at``; ``not_before`` (default ``run_at``),
    ``trigger`` (``schedule``), ``attempt`` (1), ``priority`` (5) and ``event`` are optional.
    """
    if not rows:
        return 0
    payload = [
        {
            "task_id": str(r["task_id"]),
            "run_at": _iso(r["run_at"]),
            "not_before": _iso(r.get("not_before")),
            "trigger": None if r.get("trigger") is None else str(r["trigger"]),
            "attempt": r.get("attempt"),
            "priority": r.get("priority"),
            "event": r.get("event"),
        }
        for r in rows
    ]
    result = conn.execute(_INSERT_DUE_WORK, {"rows": json.dumps(payload, default=str)})
    return int(result.rowcount)


_RECORD_SKIPPED_RUNS = sa.text(
    """
    WITH runs AS (
        INSERT INTO task_run (task_id, status, trigger, scheduled_for, attempt, priority,
                              reason, finished_at)
        SELECT v.task_id, 'skipped', v.trigger, v.scheduled_for, 1, v.priority, v.reason,
               v.finished_at
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS v(task_id uuid, trigger text, scheduled_for timestamptz, priority int,
                  reason text, finished_at timestamptz)
        RETURNING id, task_id, scheduled_for, reason
    )
    INSERT INTO outbox (topic, payload)
    SELECT 'task.run.skipped',
           jsonb_build_object('task_id', task_id, 'run_id', id,
                              'scheduled_for', scheduled_for, 'reason', reason)
    FROM runs
    """
)


def record_skipped_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record occurrences beat did not run as ``skipped`` runs, each with a
    ``task.run.skipped`` event. Rows: ``task_id``, ``trigger``, ``scheduled_for``,
    ``priority``, ``reason``, ``finished_at``. Returns the runs recorded."""
    if not rows:
        return 0
    payload = [
        {
            "task_id": str(r["task_id"]),
            "trigger": str(r["trigger"]),
            "scheduled_for": _iso(r["scheduled_for"]),
            "priority": r["priority"],
            "reason": r["reason"],
            "finished_at": _iso(r["finished_at"]),
        }
        for r in rows
    ]
    return int(conn.execute(_RECORD_SKIPPED_RUNS, {"rows": json.dumps(payload)}).rowcount)


_ADVANCE_TASKS = sa.text(
    """
    WITH moved AS (
        UPDATE task AS t
        SET next_occurrence_at = v.next_occurrence_at,
            next_run_at = v.next_run_at,
            status = coalesce(v.status, t.status),
            updated_at = now()
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS v(id uuid, next_occurrence_at timestamptz, next_run_at timestamptz, status text)
        WHERE t.id = v.id
        RETURNING t.id, v.status
    )
    INSERT INTO outbox (topic, payload)
    SELECT 'task.' || status, jsonb_build_object('task_id', id, 'by', 'scheduler')
    FROM moved WHERE status IS NOT NULL
    """
)


def advance_tasks(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Move claimed tasks to their next occurrence, in one statement.

    Each update has ``id``, ``next_occurrence_at``, ``next_run_at`` and ``status`` (``None``
    keeps the task's status; beat sets ``completed`` or ``paused``, and each such change
    writes a ``task.<status>`` event).
    """
    if not updates:
        return
    payload = [
        {
            "id": str(u["id"]),
            "next_occurrence_at": _iso(u["next_occurrence_at"]),
            "next_run_at": _iso(u["next_run_at"]),
            "status": None if u["status"] is None else str(u["status"]),
        }
        for u in updates
    ]
    conn.execute(_ADVANCE_TASKS, {"rows": json.dumps(payload)})


_NEXT_WAKE = sa.text(
    """
    SELECT (SELECT min(next_run_at) FROM task
             WHERE status = 'active' AND next_run_at IS NOT NULL),
           (SELECT min(not_before) FROM due_work WHERE not_before > :now),
           EXISTS (SELECT 1 FROM due_work
                   WHERE not_before <= :now AND (CAST(:since AS timestamptz) IS NULL
                                                 OR not_before > :since))
    """
)


@dataclass(frozen=True)
class Wake:
    """What beat needs to know to sleep exactly as long as it may."""

    next_task_at: datetime | None  # earliest next_run_at of an active task
    next_work_at: datetime | None  # earliest not_before still in the future
    became_due: bool  # some due_work's not_before fell in (since, now]


def next_wake(conn: Connection, now: datetime, *, since: datetime | None) -> Wake:
    """When beat must wake next, and whether due_work became dispatchable after ``since``.

    ``since`` None asks whether any due_work is dispatchable at all.
    """
    row = conn.execute(_NEXT_WAKE, {"now": now, "since": since}).one()
    return Wake(row[0], row[1], bool(row[2]))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
