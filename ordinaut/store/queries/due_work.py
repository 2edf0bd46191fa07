"""due_work rows: occurrences waiting for dispatch. Written by beat (and retries, run_now),
leased and consumed by dispatch; when beat must wake next."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import driver
from ordinaut.store.queries.jsonb import iso
from ordinaut.store.queries.render import literal, one_of
from ordinaut.store.queries.runs import OPEN
from ordinaut.vocabulary import OverlapPolicy, TaskStatus, Trigger


def insert_due_work_sql(param: str) -> str:
    """The INSERT of due_work rows from ``:param``; an existing (task, run_at) stays."""
    return f"""
    INSERT INTO due_work (task_id, run_at, not_before, trigger, attempt, priority, event)
    SELECT v.task_id, v.run_at, coalesce(v.not_before, v.run_at),
           coalesce(v.trigger, {literal(Trigger.SCHEDULE)}),
           coalesce(v.attempt, 1), coalesce(v.priority, 5), v.event
    FROM jsonb_to_recordset(CAST(:{param} AS jsonb))
         AS v(task_id uuid, run_at timestamptz, not_before timestamptz, trigger text,
              attempt int, priority int, event jsonb)
    ON CONFLICT (task_id, run_at) DO NOTHING
    RETURNING task_id
    """


_INSERT_DUE_WORK = sa.text(insert_due_work_sql("rows"))


def due_work_batch(rows: Sequence[Mapping[str, Any]]) -> str:
    """The JSON parameter of :func:`insert_due_work`."""
    return json.dumps(
        [
            {
                "task_id": str(r["task_id"]),
                "run_at": iso(r["run_at"]),
                "not_before": iso(r.get("not_before")),
                "trigger": None if r.get("trigger") is None else str(r["trigger"]),
                "attempt": r.get("attempt"),
                "priority": r.get("priority"),
                "event": r.get("event"),
            }
            for r in rows
        ],
        default=str,
    )


def insert_due_work(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert due_work rows; an existing (task_id, run_at) is left alone. Returns rows added.

    Each row has ``task_id`` and ``run_at``; ``not_before`` (default ``run_at``),
    ``trigger`` (``schedule``), ``attempt`` (1), ``priority`` (5) and ``event`` are optional.
    """
    if not rows:
        return 0
    return int(conn.execute(_INSERT_DUE_WORK, {"rows": due_work_batch(rows)}).rowcount)


@dataclass(frozen=True)
class LeasedWork:
    """A due_work row dispatch holds (``FOR UPDATE``), with what it needs of its task."""

    id: int
    task_id: uuid.UUID
    run_at: datetime
    not_before: datetime
    trigger: str  # a Trigger value; the column has no CHECK, so a stray value stays text
    attempt: int
    priority: int
    event: Any
    work_created_at: datetime
    task_status: TaskStatus
    dedupe_key: str | None
    dedupe_window_seconds: int
    concurrency_key: str | None
    concurrency_limit: int
    overlap_policy: OverlapPolicy
    title: str = ""
    created_by: uuid.UUID | None = None
    worker_pool: str | None = None
    turn: int = 1  # this row's place among its agent's due rows of the same priority


# Rows that could become runs right now. The concurrency and overlap filters read a snapshot
# taken before any lock, so they only keep hopeless rows out of the batch (no head-of-line
# blocking behind a full key); dispatch decides again under advisory locks.
_DISPATCHABLE = f"""
    d.not_before <= :now AND t.status <> {literal(TaskStatus.PAUSED)}
      AND (t.concurrency_key IS NULL
           OR (SELECT count(*) FROM task_run r
               WHERE r.concurrency_key = t.concurrency_key
                 AND {one_of("r.status", OPEN)}) < t.concurrency_limit)
      AND (t.overlap_policy = {literal(OverlapPolicy.ALLOW)}
           OR (t.overlap_policy = {literal(OverlapPolicy.SKIP)}
               AND d.trigger <> {literal(Trigger.RETRY)})
           OR NOT EXISTS (SELECT 1 FROM task_run r
                          WHERE r.task_id = d.task_id AND {one_of("r.status", OPEN)}))
"""

# the worker pool of a catalog tool the task's pipeline uses (any step, foreach bodies too)
TOOL_POOL = """(SELECT min(tl.worker_pool) FROM tool tl
    WHERE tl.worker_pool IS NOT NULL
      AND tl.address IN (SELECT jsonb_path_query({task}.payload, '$.**.uses') #>> '{{}}'))"""

# Fair sharing (ordinaut.policy.fair_share): within a priority, rows are taken round robin
# between agents: each agent's rows are numbered in their own not_before order (``turn``)
# and the batch takes every agent's first row, then every agent's second, and so on.
_LEASE_DUE_WORK = sa.text(
    f"""
    WITH ranked AS (
        SELECT d.id, row_number() OVER (PARTITION BY d.priority, t.created_by
                                        ORDER BY d.not_before, d.id) AS turn
        FROM due_work d JOIN task t ON t.id = d.task_id
        WHERE {_DISPATCHABLE}
    )
    SELECT d.id, d.task_id, d.run_at, d.not_before, d.trigger, d.attempt, d.priority, d.event,
           d.created_at AS work_created_at,
           t.status AS task_status, t.dedupe_key, t.dedupe_window_seconds,
           t.concurrency_key, t.concurrency_limit, t.overlap_policy, t.title,
           t.created_by, coalesce(t.worker_pool, {TOOL_POOL.format(task="t")}) AS worker_pool,
           k.turn
    FROM ranked k JOIN due_work d ON d.id = k.id JOIN task t ON t.id = d.task_id
    WHERE d.not_before <= :now
    ORDER BY d.priority, k.turn, d.not_before, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


def lease_due_work(conn: Connection, now: datetime, limit: int) -> list[LeasedWork]:
    """Lock the most urgent dispatchable due_work rows: priority 1 first, then round robin
    between agents (each agent's rows in not_before order)."""
    rows = conn.execute(_LEASE_DUE_WORK, {"now": now, "limit": limit}).all()
    return [
        LeasedWork(
            **{
                **r._mapping,
                "task_status": TaskStatus(r.task_status),
                "overlap_policy": OverlapPolicy(r.overlap_policy),
            }
        )
        for r in rows
    ]


_DELETE_DUE_WORK = sa.text("DELETE FROM due_work WHERE id = ANY(:ids)")


def delete_due_work(conn: Connection, ids: Iterable[int]) -> None:
    """Remove due_work rows that became runs (in the same transaction as the runs)."""
    id_list = list(ids)
    if id_list:
        conn.execute(_DELETE_DUE_WORK, {"ids": id_list})


_DELETE_TASK_DUE_WORK = sa.text("DELETE FROM due_work WHERE task_id = :task_id")


def delete_task_due_work(conn: Connection, task_id: uuid.UUID) -> None:
    """Remove every occurrence of a task still waiting for dispatch (it was canceled)."""
    conn.execute(_DELETE_TASK_DUE_WORK, {"task_id": task_id})


# suspended runs with a time to resume (or expire) count as due work: the dispatch pass
# resumes them (ordinaut.runs.suspension), so beat wakes for their resume_at too
_NEXT_WAKE = sa.text(
    f"""
    SELECT (SELECT min(next_run_at) FROM task
             WHERE status = {literal(TaskStatus.ACTIVE)} AND next_run_at IS NOT NULL),
           least((SELECT min(not_before) FROM due_work WHERE not_before > :now),
                 (SELECT min(resume_at) FROM task_run
                  WHERE resume_at IS NOT NULL AND resume_at > :now)),
           EXISTS (SELECT 1 FROM due_work
                   WHERE not_before <= :now AND (CAST(:since AS timestamptz) IS NULL
                                                 OR not_before > :since))
           OR EXISTS (SELECT 1 FROM task_run
                      WHERE resume_at IS NOT NULL AND resume_at <= :now
                        AND (CAST(:since AS timestamptz) IS NULL OR resume_at > :since)),
           EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)
    """
)


@dataclass(frozen=True)
class Wake:
    """What beat needs to know to sleep exactly as long as it may."""

    next_task_at: datetime | None  # earliest next_run_at of an active task
    next_work_at: datetime | None  # earliest not_before or resume_at still in the future
    became_due: bool  # some due_work's not_before or run's resume_at fell in (since, now]
    unrelayed: bool = False  # outbox rows wait for the relay


def next_wake(conn: Connection, now: datetime, *, since: datetime | None) -> Wake:
    """When beat must wake next, and whether due_work (or a suspended run's resume) became
    dispatchable after ``since``.

    ``since`` None asks whether any due_work is dispatchable at all.
    """
    row = driver.first(conn, _NEXT_WAKE, {"now": now, "since": since})
    return Wake(row[0], row[1], bool(row[2]), bool(row[3]))
