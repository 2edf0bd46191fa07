"""Suspended runs: stop a running run before a step, ask for its resume, resume or expire it.

A run is *suspended* in one of :data:`ordinaut.vocabulary.SUSPENDED` (``waiting_approval``)
with ``suspended_step``/``suspended_input``/``suspend_reason`` saying where and why, and
``resume_at``/``resume_action`` saying what happens when (``resume_at`` NULL: only when
someone acts). Every move of its status is along :data:`~.transitions.SUSPEND`,
:data:`~.transitions.RESUME` or :data:`~.transitions.EXPIRE`; a suspended run holds no
lease, no concurrency slot and no overlap guard (it is not in ``runs.OPEN``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import jsonb
from ordinaut.store.queries.render import literal, one_of
from ordinaut.store.queries.steps import RECEIPTS_FROM_JSON, receipts_json
from ordinaut.store.queries.transitions import EXPIRE, RESUME, SUSPEND
from ordinaut.vocabulary import SUSPENDED, OverlapPolicy, ResumeAction, RunStatus, TaskStatus

_SUSPEND_RUN = sa.text(
    f"""
    WITH stopped AS (
        UPDATE task_run
        SET {SUSPEND.assign()}, leased_until = NULL, suspended_at = now(),
            suspended_step = :step, suspended_input = CAST(:input AS jsonb),
            suspend_reason = :reason, resume_at = :resume_at, resume_action = :action,
            pipeline_now = coalesce(pipeline_now, :pipeline_now), decided_by = NULL
        WHERE id = :run_id AND {SUSPEND.guard()} AND lease_owner = :owner
        RETURNING id, task_id, attempt
    ), receipts AS ({RECEIPTS_FROM_JSON}
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.' || CAST(:target AS text),
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'status', CAST(:target AS text), 'step', CAST(:step AS text),
                                  'reason', CAST(:reason AS text),
                                  'resume_at', CAST(:resume_at AS timestamptz))
        FROM stopped
    )
    SELECT id FROM stopped
    """
)


def suspend_run(
    conn: Connection,
    run_id: uuid.UUID,
    owner: str,
    *,
    status: RunStatus,
    step_path: str,
    step_input: Any,
    reason: str,
    resume_at: datetime | None,
    action: ResumeAction,
    pipeline_now: datetime,
    steps: Sequence[Mapping[str, Any]] = (),
) -> bool:
    """running → ``status`` (suspended) while we hold the lease; True if it moved.

    One statement with the receipts not written yet (recorded either way, like a finish)
    and the ``task.run.<status>`` event. The lease ends; the run keeps ``pipeline_now``
    (the ``${now}`` of its first start) for when it resumes.
    """
    row = conn.execute(
        _SUSPEND_RUN,
        {
            "run_id": run_id,
            "owner": owner,
            **_bind_suspended(status),
            "step": step_path,
            "input": jsonb.dumps(step_input),
            "reason": reason,
            "resume_at": resume_at,
            "action": action.value,
            "pipeline_now": pipeline_now,
            "steps": receipts_json(steps),
        },
    ).first()
    return row is not None


def _bind_suspended(status: RunStatus) -> dict[str, str]:
    if status not in SUSPENDED:
        raise ValueError(f"{status} is not a suspended state")
    return {"target": status.value}


_DONE_STEPS = sa.text(
    """
    SELECT DISTINCT ON (step_path) step_path, status, output
    FROM step_result WHERE run_id = :run_id AND attempt = :attempt
    ORDER BY step_path, id DESC
    """
)


def done_steps(conn: Connection, run_id: uuid.UUID, attempt: int) -> dict[str, tuple[str, Any]]:
    """(status, output) by step path of the receipts this attempt of the run has."""
    rows = conn.execute(_DONE_STEPS, {"run_id": run_id, "attempt": attempt}).all()
    return {r.step_path: (r.status, r.output) for r in rows}


_REQUEST_RESUME = sa.text(
    f"""
    UPDATE task_run SET resume_at = :at, resume_action = :action, decided_by = :by
    WHERE id = :run_id AND {one_of("status", SUSPENDED)}
      AND (resume_at IS NULL OR resume_at > :at)
    RETURNING id
    """
)


def request_resume(
    conn: Connection,
    run_id: uuid.UUID,
    action: ResumeAction,
    *,
    at: datetime,
    by: uuid.UUID | None = None,
) -> bool:
    """Make a suspended run's resume due at ``at`` with ``action``, decided ``by`` an agent
    (status unchanged: the resumer moves it). False when it is not suspended or its resume
    is already due."""
    params = {"run_id": run_id, "action": action.value, "at": at, "by": by}
    return conn.execute(_REQUEST_RESUME, params).first() is not None


@dataclass(frozen=True)
class DueResume:
    """A suspended run whose ``resume_at`` came, locked for the resumer, with its task's rules."""

    id: uuid.UUID
    task_id: uuid.UUID
    status: RunStatus
    attempt: int
    priority: int
    suspended_step: str | None
    resume_action: ResumeAction
    resume_at: datetime
    concurrency_key: str | None
    concurrency_limit: int
    overlap_policy: OverlapPolicy
    task_status: TaskStatus
    decided_by: uuid.UUID | None  # None: the resume came by itself (a timeout, a deferral)


# a paused task's runs do not resume until the task does (as its due work waits); a resume
# that cancels (reject) still happens
_NOT_HELD_BY_PAUSE = (
    f"(r.resume_action = {literal(ResumeAction.REJECT)} "
    f"OR t.status <> {literal(TaskStatus.PAUSED)})"
)
DUE_RESUME = f"""
    EXISTS (SELECT 1 FROM task_run r JOIN task t ON t.id = r.task_id
            WHERE r.resume_at <= :now AND {one_of("r.status", SUSPENDED)}
              AND {_NOT_HELD_BY_PAUSE})
"""
"""SQL condition: some suspended run's resume is due at ``:now`` (for the maintenance look)."""

_TAKE_DUE = sa.text(
    f"""
    SELECT r.id, r.task_id, r.status, r.attempt, r.priority, r.suspended_step,
           coalesce(r.resume_action, {literal(ResumeAction.RESUME)}) AS resume_action,
           r.resume_at, r.concurrency_key, t.concurrency_limit, t.overlap_policy,
           t.status AS task_status, r.decided_by
    FROM task_run r JOIN task t ON t.id = r.task_id
    WHERE {one_of("r.status", SUSPENDED)} AND r.resume_at <= :now AND {_NOT_HELD_BY_PAUSE}
    ORDER BY r.priority, r.resume_at, r.id
    LIMIT :limit
    FOR UPDATE OF r SKIP LOCKED
    """
)


def take_due_resumes(conn: Connection, now: datetime, limit: int) -> list[DueResume]:
    """Lock suspended runs whose ``resume_at`` is at or before ``now``, most urgent first
    (those of a paused task only when they are to be canceled)."""
    rows = conn.execute(_TAKE_DUE, {"now": now, "limit": limit}).all()
    return [
        DueResume(
            **{
                **r._mapping,
                "status": RunStatus(r.status),
                "resume_action": ResumeAction(r.resume_action),
                "overlap_policy": OverlapPolicy(r.overlap_policy),
                "task_status": TaskStatus(r.task_status),
            }
        )
        for r in rows
    ]


_RESUME_RUNS = sa.text(
    f"""
    WITH resumed AS (
        UPDATE task_run AS r
        SET {RESUME.assign()}, published_at = NULL, lease_owner = NULL, resume_at = NULL,
            resume_action = NULL,
            approved_steps = CASE WHEN v.approve AND r.suspended_step IS NOT NULL
                                  THEN array_append(r.approved_steps, r.suspended_step)
                                  ELSE r.approved_steps END
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, approve boolean)
        WHERE r.id = v.id AND {jsonb.among("r.id", "rows")} AND {RESUME.guard("r.status")}
        RETURNING r.id, r.task_id, r.attempt, r.priority, r.suspended_step, v.approve,
                  r.worker_pool
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.resumed',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'step', suspended_step, 'approved', approve)
        FROM resumed
    )
    SELECT id, priority, worker_pool FROM resumed
    """
)


def resume_runs(
    conn: Connection, runs: Sequence[tuple[uuid.UUID, bool]]
) -> list[tuple[uuid.UUID, int, str | None]]:
    """Suspended runs → queued (unpublished), each ``(id, approve)``: with ``approve`` its
    suspended step's approval counts as given. Returns (id, priority) of those moved."""
    if not runs:
        return []
    rows = jsonb.dumps([{"id": str(i), "approve": a} for i, a in runs])
    return [(r.id, r.priority, r.worker_pool) for r in conn.execute(_RESUME_RUNS, {"rows": rows})]


_EXPIRE_RUNS = sa.text(
    f"""
    WITH ended AS (
        UPDATE task_run AS r
        SET {EXPIRE.assign()}, finished_at = :now, reason = v.reason, resume_at = NULL,
            leased_until = NULL
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, reason text)
        WHERE r.id = v.id AND {jsonb.among("r.id", "rows")} AND {EXPIRE.guard("r.status")}
        RETURNING r.id, r.task_id, r.attempt, v.reason
    ), events AS (
        INSERT INTO outbox (topic, payload)
        SELECT 'task.run.canceled',
               jsonb_build_object('run_id', id, 'task_id', task_id, 'attempt', attempt,
                                  'status', {literal(RunStatus.CANCELED)}, 'reason', reason)
        FROM ended
    )
    SELECT id FROM ended
    """
)


def expire_runs(
    conn: Connection, runs: Sequence[tuple[uuid.UUID, str]], *, now: datetime
) -> list[uuid.UUID]:
    """Suspended runs → canceled, each ``(id, reason)``, with ``task.run.canceled`` events."""
    if not runs:
        return []
    rows = jsonb.dumps([{"id": str(i), "reason": reason} for i, reason in runs])
    return [r.id for r in conn.execute(_EXPIRE_RUNS, {"rows": rows, "now": now})]
