"""A run's life on a worker: claim, reservations and lease, step receipts, finish, reap."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.queries import jsonb

_CLAIM_RUN = sa.text(
    """
    WITH claimed AS (
        UPDATE task_run AS r
        SET status = 'running', lease_owner = :owner,
            leased_until = now() + make_interval(secs => :lease_seconds),
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


def claim_run(
    conn: Connection, run_id: uuid.UUID, owner: str, lease_seconds: float
) -> Row[Any] | None:
    """queued → running, taking the lease, with its ``task.run.started`` event (one statement).

    Lease ends are computed with the database's clock (as is every comparison with them), so
    workers and reapers on hosts whose clocks disagree still agree on who holds a lease.
    None when the run is not queued any more (finished, canceled, or claimed by another).
    """
    return conn.execute(
        _CLAIM_RUN, {"run_id": run_id, "owner": owner, "lease_seconds": lease_seconds}
    ).first()


_RESERVE_RUNS = sa.text(
    """
    UPDATE task_run
    SET lease_owner = :owner, leased_until = now() + make_interval(secs => :lease_seconds)
    WHERE id = ANY(:ids) AND status = 'queued'
    """
)


def reserve_runs(
    conn: Connection, run_ids: Sequence[uuid.UUID], owner: str, lease_seconds: float
) -> None:
    """Mark queued runs as held by ``owner`` (whose message it has) for one lease.

    Advisory only — any worker may still claim them — but a reservation that runs out tells
    the sweeper their message died with its worker.
    """
    if run_ids:
        conn.execute(
            _RESERVE_RUNS,
            {"ids": list(run_ids), "owner": owner, "lease_seconds": lease_seconds},
        )


_EXTEND_LEASE = sa.text(
    """
    UPDATE task_run SET leased_until = now() + make_interval(secs => :lease_seconds)
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
    lease_seconds: float,
    reserved: Sequence[uuid.UUID] = (),
) -> bool:
    """Push the lease (and our reservations) forward; False when the run is no longer ours
    (reaped or canceled)."""
    rows = conn.execute(
        _EXTEND_LEASE,
        {
            "run_id": run_id,
            "owner": owner,
            "lease_seconds": lease_seconds,
            "reserved": list(reserved),
        },
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
            "events": jsonb.dumps([{"topic": t, "payload": p} for t, p in events]),
            "steps": _receipts_json(steps),
            "retry": jsonb.dumps([retry] if retry is not None else []),
        },
    ).first()
    return row is not None


def _receipts_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return jsonb.dumps([{**row, "run_id": str(row["run_id"])} for row in rows])


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
                   WHERE status = 'running' AND leased_until < now()
                   ORDER BY leased_until LIMIT :limit FOR UPDATE SKIP LOCKED)
      AND t.id = r.task_id
    RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.priority, r.event, r.lease_owner,
              r.concurrency_key, t.max_retries, t.backoff_strategy, t.overlap_policy,
              t.status AS task_status
    """
)


def reap_expired_runs(conn: Connection, limit: int) -> Sequence[Row[Any]]:
    """running runs whose lease expired (database clock) → failed; returned for retries."""
    return conn.execute(_REAP_EXPIRED, {"limit": limit}).all()


_CACHED_STEP = sa.text(
    """
    SELECT s.output FROM step_result s JOIN task_run r ON r.id = s.run_id
    WHERE s.idempotency_key = :key AND s.status = 'succeeded' AND r.task_id = :task_id
    ORDER BY s.id LIMIT 1
    """
)


def cached_step_output(conn: Connection, task_id: uuid.UUID, key: str) -> tuple[bool, Any]:
    """(True, output) when a step of this task with this idempotency key already succeeded.

    Scoped to the task: another task (or another agent) using the same key never sees it.
    """
    row = conn.execute(_CACHED_STEP, {"key": key, "task_id": task_id}).first()
    return (True, row[0]) if row is not None else (False, None)
