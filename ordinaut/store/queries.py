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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.tables import outbox

# --- beat -------------------------------------------------------------------------------
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


# --- runs -------------------------------------------------------------------------------


_RUN_FIELDS = frozenset(
    {
        "task_id",
        "status",
        "trigger",
        "scheduled_for",
        "not_before",
        "work_created_at",
        "attempt",
        "priority",
        "concurrency_key",
        "dedupe_key",
        "event",
        "reason",
        "finished_at",
    }
)

_INSERT_RUNS = sa.text(
    """
    INSERT INTO task_run (id, task_id, status, trigger, scheduled_for, not_before,
                          work_created_at, attempt, priority, concurrency_key, dedupe_key,
                          event, reason, finished_at)
    SELECT CAST(v->>'id' AS uuid), CAST(v->>'task_id' AS uuid),
           CAST(coalesce(v->>'status', 'queued') AS run_status),
           coalesce(v->>'trigger', 'schedule'), CAST(v->>'scheduled_for' AS timestamptz),
           CAST(v->>'not_before' AS timestamptz), CAST(v->>'work_created_at' AS timestamptz),
           coalesce(CAST(v->>'attempt' AS int), 1), coalesce(CAST(v->>'priority' AS int), 5),
           v->>'concurrency_key', v->>'dedupe_key', NULLIF(v->'event', 'null'), v->>'reason',
           CAST(v->>'finished_at' AS timestamptz)
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e(v)
    """
)


def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Insert task_run rows (one statement, any count) and return their new ids, in order.

    Keys are task_run columns (``_RUN_FIELDS``); missing ones take the column defaults.
    """
    if not rows:
        return []
    unknown = set().union(*rows) - _RUN_FIELDS
    if unknown:
        raise ValueError(f"insert_runs: not task_run fields: {sorted(unknown)}")
    ids = [uuid.uuid4() for _ in rows]
    conn.execute(
        _INSERT_RUNS,
        {"rows": _dumps([{**row, "id": run_id} for run_id, row in zip(ids, rows, strict=True)])},
    )
    return ids


# --- dispatch ---------------------------------------------------------------------------

# Rows that could become runs right now. The concurrency and overlap filters read a snapshot
# taken before any lock, so they only keep hopeless rows out of the batch (no head-of-line
# blocking behind a full key); dispatch decides again under advisory locks.
_LEASE_DUE_WORK = sa.text(
    """
    SELECT d.id, d.task_id, d.run_at, d.not_before, d.trigger, d.attempt, d.priority, d.event,
           d.created_at AS work_created_at,
           t.status AS task_status, t.dedupe_key, t.dedupe_window_seconds,
           t.concurrency_key, t.concurrency_limit, t.overlap_policy
    FROM due_work d JOIN task t ON t.id = d.task_id
    WHERE d.not_before <= :now AND t.status <> 'paused'
      AND (t.concurrency_key IS NULL
           OR (SELECT count(*) FROM task_run r
               WHERE r.concurrency_key = t.concurrency_key
                 AND r.status IN ('queued', 'running')) < t.concurrency_limit)
      AND (t.overlap_policy = 'allow'
           OR (t.overlap_policy = 'skip' AND d.trigger <> 'retry')
           OR NOT EXISTS (SELECT 1 FROM task_run r
                          WHERE r.task_id = d.task_id AND r.status IN ('queued', 'running')))
    ORDER BY d.priority, d.not_before, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


def lease_due_work(conn: Connection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Lock the most urgent dispatchable due_work rows: priority 1 first, then not_before."""
    return conn.execute(_LEASE_DUE_WORK, {"now": now, "limit": limit}).all()


_DELETE_DUE_WORK = sa.text("DELETE FROM due_work WHERE id = ANY(:ids)")


def delete_due_work(conn: Connection, ids: Iterable[int]) -> None:
    """Remove due_work rows that became runs (in the same transaction as the runs)."""
    id_list = list(ids)
    if id_list:
        conn.execute(_DELETE_DUE_WORK, {"ids": id_list})


_LOCK_KEYS = sa.text(
    """
    SELECT count(pg_advisory_xact_lock(k.a, k.b))
    FROM (SELECT a, b FROM unnest(CAST(:a AS int[]), CAST(:b AS int[])) AS u(a, b)
          ORDER BY a, b) AS k
    """
)


def advisory_key(space: str, key: str) -> tuple[int, int]:
    """The (int, int) advisory lock id of ``key`` in lock space ``space``."""
    return zlib.crc32(space.encode()) - 2**31, zlib.crc32(key.encode()) - 2**31


def lock_keys(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Take transaction-scoped advisory locks on (space, key) pairs, in one global order.

    Every caller locks in ascending (space hash, key hash) order, so two dispatchers that
    need overlapping sets of keys queue behind each other instead of deadlocking.
    """
    ids = sorted({advisory_key(space, key) for space, key in keys})
    if ids:
        conn.execute(_LOCK_KEYS, {"a": [i[0] for i in ids], "b": [i[1] for i in ids]})


_OPEN_RUNS_BY_KEY = sa.text(
    """
    SELECT concurrency_key, count(*) FROM task_run
    WHERE concurrency_key = ANY(:keys) AND status IN ('queued', 'running')
    GROUP BY concurrency_key
    """
)


def open_runs_by_key(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """Runs holding a slot of each concurrency key (queued ones are about to run)."""
    key_list = sorted(set(keys))
    if not key_list:
        return {}
    rows = conn.execute(_OPEN_RUNS_BY_KEY, {"keys": key_list}).all()
    return {str(r[0]): int(r[1]) for r in rows}


_TASKS_WITH_OPEN_RUNS = sa.text(
    """
    SELECT DISTINCT task_id FROM task_run
    WHERE task_id = ANY(:ids) AND status IN ('queued', 'running')
    """
)


def tasks_with_open_runs(conn: Connection, task_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``task_ids`` that have a run queued or running."""
    id_list = sorted(set(task_ids))
    if not id_list:
        return set()
    return {r[0] for r in conn.execute(_TASKS_WITH_OPEN_RUNS, {"ids": id_list})}


_RECENT_DEDUPE_RUN = sa.text(
    """
    SELECT id FROM task_run
    WHERE dedupe_key = :key
      AND status IN ('queued', 'running', 'succeeded', 'waiting_approval')
      AND scheduled_for > :since AND scheduled_for < :until
    ORDER BY scheduled_for DESC LIMIT 1
    """
)


def recent_dedupe_run(
    conn: Connection, key: str, since: datetime, until: datetime
) -> uuid.UUID | None:
    """A live or successful run with dedupe key ``key`` scheduled inside (since, until)."""
    value: uuid.UUID | None = conn.execute(
        _RECENT_DEDUPE_RUN, {"key": key, "since": since, "until": until}
    ).scalar()
    return value


_MARK_PUBLISHED = sa.text(
    "UPDATE task_run SET published_at = :at WHERE id = ANY(:ids) AND published_at IS NULL"
)


def mark_published(conn: Connection, run_ids: Sequence[uuid.UUID], at: datetime) -> None:
    """Record that execute_run messages went out at ``at`` (whatever the runs' states now)."""
    if run_ids:
        conn.execute(_MARK_PUBLISHED, {"ids": list(run_ids), "at": at})


_REPUBLISH_STALE = sa.text(
    """
    UPDATE task_run SET published_at = now(), lease_owner = NULL, leased_until = NULL
    WHERE id IN (SELECT id FROM task_run
                 WHERE status = 'queued'
                   AND ((published_at IS NULL AND created_at < :stale_before)
                        OR published_at < :republish_before
                        OR leased_until < :now)
                 ORDER BY priority, created_at
                 LIMIT :limit
                 FOR UPDATE SKIP LOCKED)
    RETURNING id, priority
    """
)


def take_stale_queued_runs(
    conn: Connection,
    now: datetime,
    stale_before: datetime,
    republish_before: datetime,
    limit: int,
) -> Sequence[Row[Any]]:
    """Queued runs without a live message: never published (created before
    ``stale_before``), published before ``republish_before`` and never claimed, or reserved
    by a worker whose reservation ran out (it died holding their message).

    Stamps them published now, drops the reservation and returns (id, priority); the caller
    publishes before it commits, so a failed publish rolls it all back for the next sweep.
    """
    return conn.execute(
        _REPUBLISH_STALE,
        {
            "now": now,
            "stale_before": stale_before,
            "republish_before": republish_before,
            "limit": limit,
        },
    ).all()


# --- execution --------------------------------------------------------------------------

_CLAIM_RUN = sa.text(
    """
    WITH claimed AS (
        UPDATE task_run AS r
        SET status = 'running', lease_owner = :owner, leased_until = :until,
            started_at = now()
        FROM task AS t
        WHERE r.id = :run_id AND r.status = 'queued' AND t.id = r.task_id
        RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.trigger, r.event,
                  r.started_at, r.priority, r.concurrency_key,
                  t.payload, t.max_retries, t.backoff_strategy, t.timeout_seconds,
                  t.overlap_policy, t.title, t.created_by
    ), started AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.started',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'status', 'running')
        FROM claimed
    )
    SELECT * FROM claimed
    """
)


def claim_run(conn: Connection, run_id: uuid.UUID, owner: str, until: datetime) -> Row[Any] | None:
    """queued → running, taking the lease, with its ``task.run.started`` event (one statement).

    None when the run is not queued any more (finished, canceled, or claimed by another).
    """
    return conn.execute(_CLAIM_RUN, {"run_id": run_id, "owner": owner, "until": until}).first()


_RESERVE_RUNS = sa.text(
    """
    UPDATE task_run SET lease_owner = :owner, leased_until = :until
    WHERE id = ANY(:ids) AND status = 'queued'
    """
)


def reserve_runs(
    conn: Connection, run_ids: Sequence[uuid.UUID], owner: str, until: datetime
) -> None:
    """Mark queued runs as held by ``owner`` (whose message it has) until ``until``.

    Advisory only — any worker may still claim them — but a reservation that runs out tells
    the sweeper their message died with its worker.
    """
    if run_ids:
        conn.execute(_RESERVE_RUNS, {"ids": list(run_ids), "owner": owner, "until": until})


_EXTEND_LEASE = sa.text(
    """
    UPDATE task_run SET leased_until = :until
    WHERE lease_owner = :owner
      AND ((id = :run_id AND status = 'running')
           OR (id = ANY(:reserved) AND status = 'queued'))
    RETURNING id, status
    """
)


def extend_lease(
    conn: Connection,
    run_id: uuid.UUID,
    owner: str,
    until: datetime,
    reserved: Sequence[uuid.UUID] = (),
) -> bool:
    """Push the lease (and our reservations) forward; False when the run is no longer ours
    (reaped or canceled)."""
    rows = conn.execute(
        _EXTEND_LEASE,
        {"run_id": run_id, "owner": owner, "until": until, "reserved": list(reserved)},
    ).all()
    return any(r.id == run_id and r.status == "running" for r in rows)


# step receipts travel as one JSON array; each element has the step_result columns
_RECEIPTS_FROM_JSON = """
    INSERT INTO step_result (run_id, step_path, step_id, address, status, attempt,
                             idempotency_key, cached, input, output, error,
                             started_at, finished_at)
    SELECT CAST(s.v->>'run_id' AS uuid), s.v->>'step_path', s.v->>'step_id',
           s.v->>'address', s.v->>'status', CAST(s.v->>'attempt' AS int),
           s.v->>'idempotency_key', CAST(s.v->>'cached' AS boolean),
           NULLIF(s.v->'input', 'null'), NULLIF(s.v->'output', 'null'), s.v->>'error',
           CAST(s.v->>'started_at' AS timestamptz), CAST(s.v->>'finished_at' AS timestamptz)
    FROM jsonb_array_elements(CAST(:steps AS jsonb)) WITH ORDINALITY AS s(v, n)
    ORDER BY s.n
"""

_INSERT_STEP_RESULTS = sa.text(_RECEIPTS_FROM_JSON)


def insert_step_results(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record step receipts, in order (one statement)."""
    if rows:
        conn.execute(_INSERT_STEP_RESULTS, {"steps": _receipts_json(rows)})


_FINISH_RUN = sa.text(
    f"""
    WITH done AS (
        UPDATE task_run
        SET status = CAST(:status AS run_status), finished_at = now(), success = :success,
            output = CAST(:output AS jsonb), error = :error, leased_until = NULL
        WHERE id = :run_id AND status = 'running' AND lease_owner = :owner
        RETURNING id
    ), receipts AS ({_RECEIPTS_FROM_JSON}
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT e.v->>'topic', e.v->'payload'
        FROM done, jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS e(v, n)
        ORDER BY e.n
    ), retry AS (
        INSERT INTO due_work (task_id, run_at, not_before, trigger, attempt, priority, event)
        SELECT CAST(w.v->>'task_id' AS uuid), CAST(w.v->>'run_at' AS timestamptz),
               CAST(w.v->>'not_before' AS timestamptz), w.v->>'trigger',
               CAST(w.v->>'attempt' AS int), CAST(w.v->>'priority' AS int),
               NULLIF(w.v->'event', 'null')
        FROM done, jsonb_array_elements(CAST(:retry AS jsonb)) AS w(v)
        ON CONFLICT (task_id, run_at) DO NOTHING
    )
    SELECT id FROM done
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
    events: Sequence[tuple[str, Mapping[str, Any]]],
    steps: Sequence[Mapping[str, Any]] = (),
    retry: Mapping[str, Any] | None = None,
) -> bool:
    """running → a final state while we hold the lease; True if it moved. One statement.

    With the move come its ``events`` and, for a retry, the next attempt's due_work row
    (``retry``), so an autocommit connection gets all or nothing. ``steps`` (receipts not
    written yet) are recorded either way: they describe work that happened, and a retry
    must find them.
    """
    row = conn.execute(
        _FINISH_RUN,
        {
            "run_id": run_id,
            "owner": owner,
            "status": status,
            "success": status == "succeeded",
            "output": None if output is None else json.dumps(output),
            "error": error,
            "events": _dumps([{"topic": t, "payload": p} for t, p in events]),
            "steps": _receipts_json(steps),
            "retry": _dumps([retry] if retry is not None else []),
        },
    ).first()
    return row is not None


def _receipts_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return _dumps([{**row, "run_id": str(row["run_id"])} for row in rows])


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


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
    RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.priority, r.event, r.lease_owner,
              r.concurrency_key, t.max_retries, t.backoff_strategy, t.overlap_policy,
              t.status AS task_status
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
