"""The statements that need care, each one named: claims, ON CONFLICT inserts, leases.

Callers pass a Connection inside a transaction they own; nothing here commits. Row locks
taken with ``FOR UPDATE SKIP LOCKED`` are held until the caller's transaction ends, which
is what makes two beats or two dispatchers safe to run side by side.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.tables import due_work, outbox, step_result, task_run

# --- beat -------------------------------------------------------------------------------

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
    """Lock up to ``limit`` active tasks whose next_run_at has come (others' locks skipped)."""
    return conn.execute(_CLAIM_DUE_TASKS, {"now": now, "limit": limit}).all()


def insert_due_work(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert due_work rows; an existing (task_id, run_at) is left alone. Returns rows added."""
    if not rows:
        return 0
    stmt = (
        sa.dialects.postgresql.insert(due_work)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["task_id", "run_at"])
        .returning(due_work.c.id)
    )
    return len(conn.execute(stmt).all())


_ADVANCE_TASK = sa.text(
    """
    UPDATE task AS t
    SET next_occurrence_at = v.next_occurrence_at,
        next_run_at = v.next_run_at,
        status = CASE WHEN v.completed THEN 'completed' ELSE t.status END,
        updated_at = now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(id uuid, next_occurrence_at timestamptz, next_run_at timestamptz, completed boolean)
    WHERE t.id = v.id
    """
)


def advance_tasks(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Move each claimed task to its next occurrence (or mark it completed), in one statement."""
    if not updates:
        return
    payload = [
        {
            "id": str(u["id"]),
            "next_occurrence_at": _iso(u["next_occurrence_at"]),
            "next_run_at": _iso(u["next_run_at"]),
            "completed": bool(u["completed"]),
        }
        for u in updates
    ]
    conn.execute(_ADVANCE_TASK, {"rows": json.dumps(payload)})


_NEXT_WAKE = sa.text(
    """
    SELECT (SELECT min(next_run_at) FROM task
             WHERE status = 'active' AND next_run_at IS NOT NULL),
           (SELECT min(not_before) FROM due_work WHERE not_before > :now)
    """
)


def next_wake(conn: Connection, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(earliest next_run_at of an active task, earliest not_before still in the future)."""
    row = conn.execute(_NEXT_WAKE, {"now": now}).one()
    return row[0], row[1]


# --- runs -------------------------------------------------------------------------------


def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Insert task_run rows and return their ids, in order."""
    if not rows:
        return []
    result = conn.execute(sa.insert(task_run).values(list(rows)).returning(task_run.c.id))
    return [r[0] for r in result]


# --- dispatch ---------------------------------------------------------------------------

_LEASE_DUE_WORK = sa.text(
    """
    SELECT d.id, d.task_id, d.run_at, d.trigger, d.attempt, d.priority, d.event,
           t.status AS task_status, t.dedupe_key, t.dedupe_window_seconds,
           t.concurrency_key, t.concurrency_limit, t.overlap_policy
    FROM due_work d JOIN task t ON t.id = d.task_id
    WHERE d.not_before <= :now AND t.status <> 'paused'
    ORDER BY d.priority, d.not_before
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


def lease_due_work(conn: Connection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Lock the most urgent dispatchable due_work rows (priority 1 first, then oldest)."""
    return conn.execute(_LEASE_DUE_WORK, {"now": now, "limit": limit}).all()


def delete_due_work(conn: Connection, ids: Iterable[int]) -> None:
    """Remove due_work rows that became runs (in the same transaction as the runs)."""
    id_list = list(ids)
    if id_list:
        conn.execute(sa.delete(due_work).where(due_work.c.id.in_(id_list)))


def lock_key(conn: Connection, namespace: str, key: str) -> None:
    """Serialise, until commit, every transaction that takes the same (namespace, key)."""
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
        {"a": zlib.crc32(namespace.encode()) - 2**31, "b": zlib.crc32(key.encode()) - 2**31},
    )


_COUNT_OPEN_BY_KEY = sa.text(
    """
    SELECT count(*) FROM task_run
    WHERE concurrency_key = :key AND status IN ('queued', 'running')
    """
)


def count_open_runs_by_key(conn: Connection, key: str) -> int:
    """Runs holding a slot of concurrency key ``key`` (queued ones are about to run)."""
    return int(conn.execute(_COUNT_OPEN_BY_KEY, {"key": key}).scalar_one())


_HAS_OPEN_RUN = sa.text(
    """
    SELECT EXISTS (SELECT 1 FROM task_run
                   WHERE task_id = :task_id AND status IN ('queued', 'running'))
    """
)


def task_has_open_run(conn: Connection, task_id: uuid.UUID) -> bool:
    """True when the task has a run queued or running."""
    return bool(conn.execute(_HAS_OPEN_RUN, {"task_id": task_id}).scalar_one())


_RECENT_DEDUPE_RUN = sa.text(
    """
    SELECT id FROM task_run
    WHERE dedupe_key = :key
      AND status IN ('queued', 'running', 'succeeded', 'waiting_approval')
      AND scheduled_for > :since AND scheduled_for <= :until
    ORDER BY scheduled_for DESC LIMIT 1
    """
)


def recent_dedupe_run(
    conn: Connection, key: str, since: datetime, until: datetime
) -> uuid.UUID | None:
    """A live or successful run with dedupe key ``key`` scheduled inside (since, until]."""
    value: uuid.UUID | None = conn.execute(
        _RECENT_DEDUPE_RUN, {"key": key, "since": since, "until": until}
    ).scalar()
    return value


_MARK_PUBLISHED = sa.text(
    "UPDATE task_run SET published_at = now() WHERE id = ANY(:ids) AND status = 'queued'"
)


def mark_published(conn: Connection, run_ids: Sequence[uuid.UUID]) -> None:
    """Record that execute_run messages went out for these runs."""
    if run_ids:
        conn.execute(_MARK_PUBLISHED, {"ids": list(run_ids)})


_UNPUBLISHED_RUNS = sa.text(
    """
    SELECT id FROM task_run
    WHERE status = 'queued'
      AND ((published_at IS NULL AND created_at < :stale_before)
           OR published_at < :republish_before)
    ORDER BY priority, created_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def stale_queued_runs(
    conn: Connection, stale_before: datetime, republish_before: datetime, limit: int
) -> list[uuid.UUID]:
    """Queued runs whose message never went out, or went out long ago without a claim."""
    rows = conn.execute(
        _UNPUBLISHED_RUNS,
        {"stale_before": stale_before, "republish_before": republish_before, "limit": limit},
    )
    return [r[0] for r in rows]


# --- execution --------------------------------------------------------------------------

_CLAIM_RUN = sa.text(
    """
    UPDATE task_run AS r
    SET status = 'running', lease_owner = :owner, leased_until = :until,
        started_at = now()
    FROM task AS t
    WHERE r.id = :run_id AND r.status = 'queued' AND t.id = r.task_id
    RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.trigger, r.event, r.started_at,
              r.priority,
              t.payload, t.max_retries, t.backoff_strategy, t.timeout_seconds,
              t.concurrency_key, t.overlap_policy, t.title, t.created_by
    """
)


def claim_run(conn: Connection, run_id: uuid.UUID, owner: str, until: datetime) -> Row[Any] | None:
    """queued → running, taking the lease; None when the run is not queued any more."""
    return conn.execute(_CLAIM_RUN, {"run_id": run_id, "owner": owner, "until": until}).first()


_EXTEND_LEASE = sa.text(
    """
    UPDATE task_run SET leased_until = :until
    WHERE id = :run_id AND status = 'running' AND lease_owner = :owner
    RETURNING id
    """
)


def extend_lease(conn: Connection, run_id: uuid.UUID, owner: str, until: datetime) -> bool:
    """Push the lease forward; False when the run is no longer ours (reaped or canceled)."""
    return (
        conn.execute(_EXTEND_LEASE, {"run_id": run_id, "owner": owner, "until": until}).first()
        is not None
    )


_FINISH_RUN = sa.text(
    """
    UPDATE task_run
    SET status = CAST(:status AS run_status), finished_at = now(), success = :success,
        output = CAST(:output AS jsonb), error = :error, leased_until = NULL
    WHERE id = :run_id AND status = 'running' AND lease_owner = :owner
    RETURNING id, task_id, attempt, scheduled_for, started_at, finished_at
    """
)


def finish_run(
    conn: Connection,
    run_id: uuid.UUID,
    owner: str,
    *,
    status: str,
    output: Any,
    error: str | None,
) -> Row[Any] | None:
    """running → a final state, only while we still hold the lease."""
    return conn.execute(
        _FINISH_RUN,
        {
            "run_id": run_id,
            "owner": owner,
            "status": status,
            "success": status == "succeeded",
            "output": None if output is None else json.dumps(output),
            "error": error,
        },
    ).first()


_RUN_STATUS = sa.text("SELECT status FROM task_run WHERE id = :run_id")


def run_status(conn: Connection, run_id: uuid.UUID) -> str | None:
    """The run's current status, or None when there is no such run."""
    value: str | None = conn.execute(_RUN_STATUS, {"run_id": run_id}).scalar()
    return value


_REAP_EXPIRED = sa.text(
    """
    UPDATE task_run AS r
    SET status = 'failed', finished_at = now(), success = false,
        error = 'lease expired: worker ' || coalesce(r.lease_owner, '?') || ' stopped responding',
        leased_until = NULL
    FROM task AS t
    WHERE r.id IN (SELECT id FROM task_run
                   WHERE status = 'running' AND leased_until < :now
                   ORDER BY leased_until LIMIT :limit FOR UPDATE SKIP LOCKED)
      AND t.id = r.task_id
    RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.priority, r.event,
              t.max_retries, t.backoff_strategy, t.status AS task_status
    """
)


def reap_expired_runs(conn: Connection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """running runs whose lease expired → failed; returned so the caller can plan retries."""
    return conn.execute(_REAP_EXPIRED, {"now": now, "limit": limit}).all()


_CACHED_STEP = sa.text(
    """
    SELECT output FROM step_result
    WHERE idempotency_key = :key AND status = 'succeeded'
    ORDER BY id LIMIT 1
    """
)


def cached_step_output(conn: Connection, key: str) -> tuple[bool, Any]:
    """(True, output) when a step with this idempotency key already succeeded."""
    row = conn.execute(_CACHED_STEP, {"key": key}).first()
    return (True, row[0]) if row is not None else (False, None)


def insert_step_result(conn: Connection, row: Mapping[str, Any]) -> None:
    """Record one step's receipt."""
    conn.execute(sa.insert(step_result).values(dict(row)))


# --- outbox -----------------------------------------------------------------------------


def emit(conn: Connection, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Write events to the outbox in the caller's transaction."""
    rows = [{"topic": topic, "payload": _jsonable(payload)} for topic, payload in events]
    if rows:
        conn.execute(sa.insert(outbox).values(rows))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
