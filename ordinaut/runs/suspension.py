"""Suspension: a run stops before a step, holding nothing, and later resumes from that step.

The mechanism, end to end:

1. **Gates** (pure, :mod:`ordinaut.pipeline.gates`) look at each tool step just before its
   call, with the rendered arguments; :func:`gate_for` combines the gates of a run (today:
   approvals). A gate that answers a :class:`~ordinaut.pipeline.executor.Suspension` stops
   the pipeline there (:class:`~ordinaut.pipeline.executor.Suspended`).
2. **Suspend** (the worker, :mod:`ordinaut.runs.execute`): one statement
   (:func:`~ordinaut.store.queries.suspend_run`) moves the run ``running →`` the suspension's
   status (``waiting_approval``) under its lease, writes the receipts of the steps before,
   the step's path, rendered input and reason, ``resume_at``/``resume_action`` and the
   pipeline's ``${now}``, and the ``task.run.<status>`` event. The lease ends; the worker
   is free. A suspended run is not counted by concurrency keys nor by the overlap guard.
3. **Resume request**: ``resume_at`` set at suspension (a timeout, a deferral) or later by
   :func:`~ordinaut.store.queries.request_resume` (a person approves: ``resume_at = now``,
   action ``approve``). It is data in PostgreSQL, so it survives a restart of every process.
4. **Resume** (:func:`resume_due`, run by every dispatch pass, which the maintenance pass
   starts whenever a resume is due — at most a maintenance period late): due runs are
   locked ``FOR UPDATE SKIP LOCKED``; with action ``reject`` (or their task canceled) they
   end ``canceled``; otherwise, under the same advisory locks as dispatch, a run whose
   concurrency key is full or whose task (overlap ``skip``/``queue``) has an open run waits
   for the next pass; the others go back to ``queued`` (``approve`` also records the step's
   approval in ``approved_steps``) and are published after the commit.
5. **Continue**: the worker that claims a resumed run (``suspended_at`` set) loads the
   receipts of this attempt (:func:`~ordinaut.store.queries.done_steps`) and runs the
   pipeline with them as ``done``: completed steps are not run again (their receipts
   stand), the pipeline's ``${now}`` is the first start's, and the gated step runs (its
   approval is in ``approved_steps``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from ordinaut.pipeline.executor import Gate
from ordinaut.pipeline.gates import approval_gate, first_of
from ordinaut.runs.dispatch import Publish, QueuedRun
from ordinaut.store import queries
from ordinaut.vocabulary import OverlapPolicy, ResumeAction, RunStatus, TaskStatus

log = logging.getLogger("ordinaut.runs")

RESUME_LIMIT = 200
APPROVALS = (RunStatus.WAITING_APPROVAL,)  # suspensions whose resume is a decision


def gate_for(claimed: queries.ClaimedRun, clock: Callable[[], datetime]) -> Gate:
    """The gates ``claimed`` passes before each tool call, in order (the first to stop it
    wins). A new kind of suspension adds its gate here."""
    return first_of([approval_gate(claimed.approved_steps, clock)])


@dataclass
class ResumeResult:
    """What one resume pass did."""

    queued: list[QueuedRun] = field(default_factory=list)
    canceled: list[uuid.UUID] = field(default_factory=list)
    waiting: int = 0


def timeout_reason(run: queries.DueResume) -> str:
    """Why a run whose resume came with action ``reject`` ends canceled."""
    if run.task_status is TaskStatus.CANCELED:
        return "task was canceled while the run was suspended"
    return f"approval of step {run.suspended_step!r} was not given in time (on_timeout: reject)"


def _audit_timeouts(conn: Connection, due: list[queries.DueResume], moved: set[uuid.UUID]) -> None:
    """An approval decided by its timeout is audited like a person's decision, by nobody."""
    for run in due:
        if run.id not in moved or run.decided_by is not None or run.status not in APPROVALS:
            continue
        action = "approve" if run.resume_action is ResumeAction.APPROVE else "reject"
        queries.insert_audit(
            conn,
            actor=None,
            action=f"run.{action}",
            subject_id=run.id,
            details={"step": run.suspended_step, "decided_by": "timeout"},
        )


def resume_due(
    engine: Engine, namespace: str, now: datetime, publish: Publish, limit: int = RESUME_LIMIT
) -> ResumeResult:
    """Resume or cancel suspended runs whose ``resume_at`` came; publish the resumed ones."""
    result = ResumeResult()
    with engine.begin() as conn:
        due = queries.take_due_resumes(conn, now, limit)
        if not due:
            return result
        keys = {(f"{namespace}:concurrency", r.concurrency_key) for r in due if r.concurrency_key}
        keys |= {
            (f"{namespace}:overlap", str(r.task_id))
            for r in due
            if r.overlap_policy is not OverlapPolicy.ALLOW
        }
        queries.lock_keys(conn, keys)
        slots = queries.open_runs_by_key(
            conn, (r.concurrency_key for r in due if r.concurrency_key)
        )
        busy = queries.tasks_with_open_runs(
            conn, (r.task_id for r in due if r.overlap_policy is not OverlapPolicy.ALLOW)
        )
        resume: list[tuple[uuid.UUID, bool]] = []
        expire: list[tuple[uuid.UUID, str]] = []
        for run in due:
            if run.resume_action is ResumeAction.REJECT or run.task_status is TaskStatus.CANCELED:
                expire.append((run.id, timeout_reason(run)))
                continue
            if run.overlap_policy is not OverlapPolicy.ALLOW and run.task_id in busy:
                result.waiting += 1
                continue
            if run.concurrency_key:
                used = slots.get(run.concurrency_key, 0)
                if used >= run.concurrency_limit:
                    result.waiting += 1
                    continue
                slots[run.concurrency_key] = used + 1
            busy.add(run.task_id)
            resume.append((run.id, run.resume_action is ResumeAction.APPROVE))
        moved = queries.resume_runs(conn, resume)
        result.canceled = queries.expire_runs(conn, expire, now=now)
        _audit_timeouts(conn, due, {r for r, _, _ in moved} | set(result.canceled))
        result.queued = [QueuedRun(run_id, priority, pool=pool) for run_id, priority, pool in moved]
    if result.queued:
        publish(result.queued)
        with engine.begin() as conn:
            queries.mark_published(conn, [q.id for q in result.queued], now)
    if result.queued or result.canceled:
        log.info(
            "suspended runs: resumed=%d canceled=%d waiting=%d",
            len(result.queued),
            len(result.canceled),
            result.waiting,
        )
    return result
