"""The reaper and the sweeper: what brings runs back when a process or a message is lost.

- :func:`reap` — runs ``running`` whose lease expired (their worker died or stalled for a
  whole lease) become ``failed`` ("lease expired: worker … stopped responding"); with
  retries left (the task's ``max_retries``, counted by attempt) and the task not canceled,
  the next attempt gets a due_work row after the task's backoff, in the same transaction.
  A worker that was only stalled finds its lease gone at its next heartbeat, stops before
  its next step, and cannot overwrite the failure (its finish is guarded by the lease).
- :func:`sweep` — runs left ``queued`` without a message: never published ``lease_seconds``
  after they were created (the dispatcher died between commit and publish, or the broker
  refused); reserved by a worker whose reservation ran out (it died holding a message for
  several runs, see :func:`~ordinaut.store.queries.reserve_runs`); or published a while ago
  and still unclaimed (the broker lost the message). "A while" depends on the runs queue:
  when it is empty (``backlog == 0``), no message of a queued run is waiting there, so one
  published :data:`EMPTY_QUEUE_RESEND_SECONDS` ago (at most a lease) has lost its message —
  after a broker restart or outage they are re-sent promptly, at most ``limit`` per sweep,
  and the next sweep finds the queue busy again; with a backlog (or the queue unknown) only
  after five leases, so a long queue being worked through is not flooded with duplicates.
  They are stamped and published again inside the same transaction, so a failed publish
  leaves them for the next sweep. A duplicate message is a no-op claim.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runs.dispatch import Publish, QueuedRun
from ordinaut.runs.retry import plan_retry
from ordinaut.store import queries
from ordinaut.vocabulary import BackoffStrategy, OverlapPolicy, TaskStatus

log = logging.getLogger("ordinaut.runs")

REAP_LIMIT = 500
SWEEP_LIMIT = 1000
EMPTY_QUEUE_RESEND_SECONDS = 15.0


@dataclass(frozen=True)
class Reaped:
    """One run the reaper failed; ``retry_at`` is when its next attempt may start."""

    run_id: uuid.UUID
    task_id: uuid.UUID
    attempt: int
    retry_at: datetime | None
    frees_slot: bool


def reap(
    engine: Engine, settings: Settings, now: datetime, limit: int = REAP_LIMIT
) -> list[Reaped]:
    """Fail runs whose lease expired (by the database's clock) and plan their retries.

    ``now`` is when the backoff of a retry starts.
    """
    reaped: list[Reaped] = []
    with engine.begin() as conn:
        expired = queries.reap_expired_runs(conn, limit)
        events: list[tuple[str, dict[str, Any]]] = []
        for run in expired:
            retry_at = None
            if run.attempt <= run.max_retries and run.task_status is not TaskStatus.CANCELED:
                retry_at = plan_retry(
                    conn, settings, run, BackoffStrategy(run.backoff_strategy), now=now
                )
            frees = bool(run.concurrency_key) or run.overlap_policy is OverlapPolicy.QUEUE
            reaped.append(Reaped(run.id, run.task_id, run.attempt, retry_at, frees))
            log.warning(
                "run %s reaped: lease of %s expired attempt=%d retry_at=%s",
                run.id,
                run.lease_owner,
                run.attempt,
                retry_at.isoformat() if retry_at else "none",
                extra={"run_id": str(run.id), "task_id": str(run.task_id)},
            )
            events.append(
                (
                    "task.run.failed",
                    {
                        "run_id": str(run.id),
                        "task_id": str(run.task_id),
                        "attempt": run.attempt,
                        "status": "failed",
                        "error": "lease expired",
                        "retry": retry_at is not None,
                    },
                )
            )
        queries.emit(conn, events)
    return reaped


def sweep(
    engine: Engine,
    settings: Settings,
    now: datetime,
    publish: Publish,
    limit: int = SWEEP_LIMIT,
    backlog: int | None = None,
) -> list[uuid.UUID]:
    """Re-send ``execute_run`` for queued runs without a live message; returns their ids.

    ``backlog`` is how many messages wait in the runs queue (None when unknown).
    """
    with engine.begin() as conn:
        stale = queries.take_stale_queued_runs(conn, **_stale(settings, now, backlog), limit=limit)
        if stale:
            publish([QueuedRun(r.id, r.priority, r.title, r.worker_pool) for r in stale])
    if stale:
        log.warning(
            "re-sent %d queued runs without a message: %s",
            len(stale),
            ", ".join(str(r.id) for r in stale[:10]),
            extra={"count": len(stale)},
        )
    return [r.id for r in stale]


def _stale(settings: Settings, now: datetime, backlog: int | None) -> dict[str, datetime]:
    """When a queued run's message counts as missing: never published a lease after its
    creation, or published and not claimed since: five leases with a backlog in the runs
    queue (``backlog``; None when unknown), min(lease, EMPTY_QUEUE_RESEND_SECONDS) when the
    queue is empty (its message cannot still be waiting there)."""
    lease = timedelta(seconds=settings.lease_seconds)
    resend_after = (
        min(lease, timedelta(seconds=EMPTY_QUEUE_RESEND_SECONDS)) if backlog == 0 else 5 * lease
    )
    return {"stale_before": now - lease, "republish_before": now - resend_after}


Backlog = queries.Backlog


def backlog(engine: Engine, settings: Settings, now: datetime) -> queries.Backlog:
    """Which maintenance jobs may have work: one read-only query (no commit when idle).

    Queued runs count as stale here by the empty-queue rule (the looser one); the sweep
    itself then measures the queue and applies the right one.
    """
    with engine.connect() as conn:
        return queries.backlog(conn, now, **_stale(settings, now, backlog=0))
