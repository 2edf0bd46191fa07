"""Every statement that changes a run's status, each along a declared transition.

``claim_run`` (queued → running, or → canceled when the task's owner is revoked) and
``finish_run`` (running → a final state) on a worker; ``hand_back_run`` (running → failed,
next attempt due at once) on a worker shutting down; ``reap_expired_runs`` (running →
failed) in the reaper; ``cancel_run``/``cancel_task_runs``/``cancel_runs_of`` (any live
state → canceled) and ``reject_run`` (waiting_approval → canceled) in the service; a
suspended run's suspend, resume and expiry are in :mod:`.suspension`. The edges come from
:mod:`.transitions`; the status guard in each ``WHERE`` makes a move that lost a race (the
run changed meanwhile) change nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import driver, jsonb
from ordinaut.store.queries.render import literal
from ordinaut.store.queries.steps import RECEIPTS_FROM_JSON, receipts_json
from ordinaut.store.queries.transitions import (
    CANCEL,
    CLAIM,
    FINISH,
    HAND_BACK,
    REAP,
    REFUSE,
    REJECT,
)
from ordinaut.vocabulary import BackoffStrategy, OverlapPolicy, RunStatus, TaskStatus, Trigger


@dataclass(frozen=True)
class ClaimedRun:
    """A run this worker claimed (now ``running`` under its lease), with its task's settings."""

    id: uuid.UUID
    task_id: uuid.UUID
    attempt: int
    scheduled_for: datetime
    trigger: str  # a Trigger value
    event: Any
    started_at: datetime
    priority: int
    concurrency_key: str | None
    payload: Any
    max_retries: int
    backoff_strategy: BackoffStrategy
    timeout_seconds: int | None
    overlap_policy: OverlapPolicy
    title: str
    created_by: uuid.UUID
    # set when the run was suspended before a step earlier (it is being resumed)
    suspended_at: datetime | None = None
    suspended_step: str | None = None
    approved_steps: tuple[str, ...] = ()
    pipeline_now: datetime | None = None
    # policies (ordinaut.policy): quiet hours (the task's, else its agent's) and budgets
    quiet_hours: dict[str, Any] | None = None
    task_budgets: dict[str, Any] | None = None
    agent_budgets: dict[str, Any] | None = None


OWNER_REVOKED = "the agent that owns this task was revoked"

# The owner's row is read FOR KEY SHARE: a revocation holds it FOR UPDATE, so a claim
# either finishes before the revocation stamps revoked_at, or waits for it and sees it.
_CLAIM_RUN = sa.text(
    f"""
    WITH owner AS (
        SELECT a.revoked_at, a.quiet_hours, a.budgets FROM agent AS a
        WHERE a.id = (SELECT t.created_by FROM task_run AS r JOIN task AS t ON t.id = r.task_id
                      WHERE r.id = :run_id)
        FOR KEY SHARE
    ), claimed AS (
        UPDATE task_run AS r
        SET {CLAIM.assign()}, lease_owner = :owner,
            leased_until = now() + make_interval(secs => :lease_seconds),
            started_at = now()
        FROM task AS t
        WHERE r.id = :run_id AND {CLAIM.guard("r.status")} AND t.id = r.task_id
          AND NOT EXISTS (SELECT 1 FROM owner WHERE revoked_at IS NOT NULL)
        RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.trigger, r.event,
                  r.started_at, r.priority, r.concurrency_key,
                  t.payload, t.max_retries, t.backoff_strategy, t.timeout_seconds,
                  t.overlap_policy, t.title, t.created_by, r.suspended_at, r.approved_steps,
                  r.pipeline_now, r.suspended_step,
                  coalesce(t.quiet_hours, (SELECT quiet_hours FROM owner)) AS quiet_hours,
                  t.budgets AS task_budgets, (SELECT budgets FROM owner) AS agent_budgets
    ), refused AS (
        UPDATE task_run
        SET {REFUSE.assign()}, finished_at = now(), reason = '{OWNER_REVOKED}',
            leased_until = NULL
        WHERE id = :run_id AND {REFUSE.guard()}
          AND EXISTS (SELECT 1 FROM owner WHERE revoked_at IS NOT NULL)
        RETURNING id, task_id
    ), started AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.started',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'status', {literal(RunStatus.RUNNING)})
        FROM claimed
    ), canceled AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.canceled',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'reason', '{OWNER_REVOKED}')
        FROM refused
    )
    SELECT * FROM claimed
    """
)


def claim_run(
    conn: Connection, run_id: uuid.UUID, owner: str, lease_seconds: float
) -> ClaimedRun | None:
    """queued → running, taking the lease, with its ``task.run.started`` event (one statement).

    Lease ends are computed with the database's clock (as is every comparison with them), so
    workers and reapers on hosts whose clocks disagree still agree on who holds a lease.
    None when the run is not queued any more (finished, canceled, or claimed by another), or
    when its task's owner is revoked: then the run is refused (queued → canceled, with the
    reason and a ``task.run.canceled`` event), before any step.
    """
    row = driver.first(
        conn, _CLAIM_RUN, {"run_id": run_id, "owner": owner, "lease_seconds": lease_seconds}
    )
    if row is None:
        return None
    return ClaimedRun(
        **{
            **row._asdict(),
            "backoff_strategy": BackoffStrategy(row.backoff_strategy),
            "overlap_policy": OverlapPolicy(row.overlap_policy),
            "approved_steps": tuple(row.approved_steps or ()),
        }
    )


_FINISH_RUN = sa.text(
    f"""
    WITH done AS (
        UPDATE task_run
        SET {FINISH.assign()}, finished_at = now(), success = :success,
            output = CAST(:output AS jsonb), error = :error, leased_until = NULL
        WHERE id = :run_id AND {FINISH.guard()} AND lease_owner = :owner
        RETURNING id
    ), receipts AS ({RECEIPTS_FROM_JSON}
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
    status: RunStatus,
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
    row = driver.first(
        conn,
        _FINISH_RUN,
        {
            "run_id": run_id,
            "owner": owner,
            **FINISH.bind(status),
            "success": status is RunStatus.SUCCEEDED,
            "output": None if output is None else json.dumps(output),
            "error": error,
            "events": jsonb.dumps([{"topic": t, "payload": p} for t, p in events]),
            "steps": receipts_json(steps),
            "retry": jsonb.dumps([retry] if retry is not None else []),
        },
    )
    return row is not None


_HAND_BACK_RUN = sa.text(
    f"""
    WITH back AS (
        UPDATE task_run AS r
        SET {HAND_BACK.assign()}, finished_at = now(), success = false, error = :error,
            leased_until = NULL
        FROM task AS t
        WHERE r.id = :run_id AND {HAND_BACK.guard("r.status")} AND r.lease_owner = :owner
          AND t.id = r.task_id
        RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.priority, r.event,
                  t.status <> {literal(TaskStatus.CANCELED)} AS again
    ), receipts AS ({RECEIPTS_FROM_JSON}
    ), next_attempt AS (
        INSERT INTO due_work (task_id, run_at, not_before, trigger, attempt, priority, event)
        SELECT task_id, scheduled_for, now() + make_interval(secs => :delay),
               {literal(Trigger.RETRY)},
               attempt + 1, priority, event
        FROM back WHERE again
        ON CONFLICT (task_id, run_at) DO NOTHING
        RETURNING task_id, attempt, not_before
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.failed',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'status', {literal(RunStatus.FAILED)},
                                  'error', CAST(:error AS text),
                                  'handed_back', true)
        FROM back
        UNION ALL
        SELECT 'task.run.retry_planned',
               jsonb_build_object('task_id', b.task_id, 'run_id', b.id, 'attempt', n.attempt,
                                  'not_before', n.not_before)
        FROM back AS b JOIN next_attempt AS n ON n.task_id = b.task_id
    )
    SELECT id, (SELECT count(*) FROM next_attempt) AS planned FROM back
    """
)


def hand_back_run(
    conn: Connection,
    run_id: uuid.UUID,
    owner: str,
    *,
    error: str,
    delay: float = 0.0,
    steps: Sequence[Mapping[str, Any]] = (),
) -> bool | None:
    """running → failed while we hold the lease, its next attempt due ``delay`` seconds after
    now (database clock).

    For a worker that stops before the run could end: the run did not fail by itself, so its
    next attempt (same occurrence, ``attempt + 1``) is planned whatever ``max_retries`` says,
    unless the task was canceled. One statement with the receipts not written yet (recorded
    either way, like :func:`finish_run`) and the events. None when the run was no longer
    ours; else whether a next attempt was planned.
    """
    row = conn.execute(
        _HAND_BACK_RUN,
        {
            "run_id": run_id,
            "owner": owner,
            "error": error,
            "delay": delay,
            "steps": receipts_json(steps),
        },
    ).first()
    return None if row is None else bool(row.planned)


@dataclass(frozen=True)
class ReapedRun:
    """A run the reaper failed because its lease expired, with what its retry needs."""

    id: uuid.UUID
    task_id: uuid.UUID
    attempt: int
    scheduled_for: datetime
    priority: int
    event: Any
    lease_owner: str | None
    concurrency_key: str | None
    max_retries: int
    backoff_strategy: BackoffStrategy
    overlap_policy: OverlapPolicy
    task_status: TaskStatus


_REAP_EXPIRED = sa.text(
    f"""
    UPDATE task_run AS r
    SET {REAP.assign()}, finished_at = now(), success = false,
        error = 'lease expired: worker ' || coalesce(r.lease_owner, '?') || ' stopped responding',
        leased_until = NULL
    FROM task AS t
    WHERE r.id IN (SELECT id FROM task_run
                   WHERE {REAP.guard()} AND leased_until < now()
                   ORDER BY leased_until LIMIT :limit FOR UPDATE SKIP LOCKED)
      AND t.id = r.task_id
    RETURNING r.id, r.task_id, r.attempt, r.scheduled_for, r.priority, r.event, r.lease_owner,
              r.concurrency_key, t.max_retries, t.backoff_strategy, t.overlap_policy,
              t.status AS task_status
    """
)


def reap_expired_runs(conn: Connection, limit: int) -> list[ReapedRun]:
    """running runs whose lease expired (database clock) → failed; returned for retries."""
    rows = conn.execute(_REAP_EXPIRED, {"limit": limit}).all()
    return [
        ReapedRun(
            **{
                **r._mapping,
                "backoff_strategy": BackoffStrategy(r.backoff_strategy),
                "overlap_policy": OverlapPolicy(r.overlap_policy),
                "task_status": TaskStatus(r.task_status),
            }
        )
        for r in rows
    ]


_CANCEL_RUN = sa.text(
    f"""
    UPDATE task_run
    SET {CANCEL.assign()}, finished_at = :now, reason = :reason, leased_until = NULL
    WHERE id = :run_id AND {CANCEL.guard()}
    """
)


def cancel_run(conn: Connection, run_id: uuid.UUID, *, now: datetime, reason: str) -> bool:
    """A queued, waiting or running run → canceled (a running one stops between steps).

    False when the run was in none of those states.
    """
    result = conn.execute(_CANCEL_RUN, {"run_id": run_id, "now": now, "reason": reason})
    return bool(result.rowcount)


_CANCEL_TASK_RUNS = sa.text(
    f"""
    UPDATE task_run
    SET {CANCEL.assign()}, finished_at = :now, reason = :reason, leased_until = NULL
    WHERE task_id = :task_id AND {CANCEL.guard()}
    """
)


def cancel_task_runs(conn: Connection, task_id: uuid.UUID, *, now: datetime, reason: str) -> int:
    """Every queued, waiting or running run of a task → canceled; returns how many."""
    result = conn.execute(_CANCEL_TASK_RUNS, {"task_id": task_id, "now": now, "reason": reason})
    return int(result.rowcount)


_CANCEL_RUNS_OF = sa.text(
    f"""
    WITH canceled AS (
        UPDATE task_run AS r
        SET {CANCEL.assign()}, finished_at = :now, reason = :reason, leased_until = NULL
        FROM task AS t
        WHERE t.created_by = :owner AND r.task_id = t.id AND {CANCEL.guard("r.status")}
        RETURNING r.id, r.task_id
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.canceled',
               jsonb_build_object('run_id', id, 'task_id', task_id,
                                  'reason', CAST(:reason AS text))
        FROM canceled
    )
    SELECT count(*) FROM canceled
    """
)


def cancel_runs_of(conn: Connection, owner: uuid.UUID, *, now: datetime, reason: str) -> int:
    """Every queued, waiting or running run of ``owner``'s tasks → canceled, each with a
    ``task.run.canceled`` event carrying ``reason``; returns how many (a running one stops
    between steps)."""
    params = {"owner": owner, "now": now, "reason": reason}
    return int(conn.execute(_CANCEL_RUNS_OF, params).scalar_one())


_REJECT_RUN = sa.text(
    f"""
    UPDATE task_run SET {REJECT.assign()}, finished_at = :now, reason = :reason, resume_at = NULL
    WHERE id = :run_id AND {REJECT.guard()} AND (resume_at IS NULL OR resume_at > :now)
    """
)


def reject_run(conn: Connection, run_id: uuid.UUID, *, now: datetime, reason: str) -> bool:
    """waiting_approval → canceled; False when the run was not waiting, or its resume was
    already due (approved, or timed out) at ``now``."""
    result = conn.execute(_REJECT_RUN, {"run_id": run_id, "now": now, "reason": reason})
    return bool(result.rowcount)
