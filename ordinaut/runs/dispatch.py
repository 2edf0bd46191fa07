"""Dispatch: turn due_work rows into queued runs, under dedupe, overlap and concurrency rules.

One transaction per batch leases rows with ``FOR UPDATE SKIP LOCKED`` (so dispatchers on
several workers never take the same row), decides each row, inserts the runs, deletes the
consumed rows and writes outbox events. Only after that commit are ``execute_run`` messages
published; a run whose message is lost stays ``queued`` and the sweeper re-sends it.

Decisions per row:
- task canceled → the occurrence is recorded as ``skipped`` (reason given), row consumed;
- dedupe key with a window, and a live or successful run with that key inside the window
  → ``skipped``;
- overlap ``skip`` and the task has a queued/running run → ``skipped``; overlap ``queue`` →
  the row stays due until the previous run finishes;
- concurrency key at its limit (queued + running runs) → the row stays due;
- otherwise → a ``queued`` run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine, Row

from ordinaut.runs.states import RunStatus, TaskStatus, Trigger
from ordinaut.store import queries


@dataclass
class DispatchResult:
    """What one dispatch pass did."""

    leased: int = 0
    queued: list[uuid.UUID] = field(default_factory=list)
    skipped: int = 0
    waiting: int = 0


def dispatch_batch(engine: Engine, namespace: str, now: datetime, limit: int) -> DispatchResult:
    """Lease up to ``limit`` due rows and decide each; commits before returning."""
    result = DispatchResult()
    with engine.begin() as conn:
        rows = queries.lease_due_work(conn, now, limit)
        result.leased = len(rows)
        if not rows:
            return result
        slots: dict[str, int] = {}
        runs: list[dict[str, Any]] = []
        consumed: list[int] = []
        events: list[tuple[str, dict[str, Any]]] = []
        for row in rows:
            verdict = _decide(conn, namespace, row, now, slots)
            if verdict is None:
                result.waiting += 1
                continue
            consumed.append(row.id)
            status, reason = verdict
            runs.append(_run_row(row, status, reason, now))
            if status is RunStatus.SKIPPED:
                result.skipped += 1
                events.append(("task.run.skipped", {"task_id": row.task_id, "reason": reason}))
        ids = queries.insert_runs(conn, runs)
        queries.delete_due_work(conn, consumed)
        queries.emit(conn, events)
        result.queued = [
            run_id for run_id, run in zip(ids, runs, strict=True) if run["status"] == "queued"
        ]
    return result


def _decide(
    conn: Connection, namespace: str, row: Row[Any], now: datetime, slots: dict[str, int]
) -> tuple[RunStatus, str | None] | None:
    """(status, reason) for a row, or None to leave it due."""
    if row.task_status == TaskStatus.CANCELED:
        return RunStatus.SKIPPED, "task was canceled before this occurrence ran"
    if row.dedupe_key and row.dedupe_window_seconds > 0 and row.trigger != Trigger.RETRY:
        queries.lock_key(conn, f"{namespace}:dedupe", row.dedupe_key)
        window = timedelta(seconds=row.dedupe_window_seconds)
        earlier = queries.recent_dedupe_run(
            conn, row.dedupe_key, row.run_at - window, row.run_at + window
        )
        if earlier is not None:
            return RunStatus.SKIPPED, (
                f"dedupe: run {earlier} with key {row.dedupe_key!r} is within "
                f"{row.dedupe_window_seconds}s"
            )
    if row.overlap_policy != "allow" and queries.task_has_open_run(conn, row.task_id):
        if row.overlap_policy == "skip":
            return RunStatus.SKIPPED, "overlap: the previous run of this task is still open"
        return None
    if row.concurrency_key:
        key = row.concurrency_key
        if key not in slots:
            queries.lock_key(conn, f"{namespace}:concurrency", key)
            slots[key] = queries.count_open_runs_by_key(conn, key)
        if slots[key] >= row.concurrency_limit:
            return None
        slots[key] += 1
    return RunStatus.QUEUED, None


def _run_row(row: Row[Any], status: RunStatus, reason: str | None, now: datetime) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "status": status.value,
        "trigger": row.trigger,
        "scheduled_for": row.run_at,
        "attempt": row.attempt,
        "priority": row.priority,
        "concurrency_key": row.concurrency_key,
        "dedupe_key": row.dedupe_key,
        "event": row.event,
        "reason": reason,
        "finished_at": now if status is RunStatus.SKIPPED else None,
    }


def dispatch(
    engine: Engine,
    namespace: str,
    clock: Callable[[], datetime],
    publish: Callable[[Sequence[uuid.UUID]], None],
    *,
    batch_size: int,
    max_batches: int = 20,
) -> DispatchResult:
    """Dispatch until nothing is leasable (bounded), publishing each batch after its commit."""
    total = DispatchResult()
    for _ in range(max_batches):
        batch = dispatch_batch(engine, namespace, clock(), batch_size)
        if batch.queued:
            publish(batch.queued)
            with engine.begin() as conn:
                queries.mark_published(conn, batch.queued)
        total.leased += batch.leased
        total.queued.extend(batch.queued)
        total.skipped += batch.skipped
        total.waiting += batch.waiting
        if batch.leased < batch_size or batch.leased == batch.waiting:
            break
    return total
