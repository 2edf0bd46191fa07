"""Dispatch: turn due_work rows into queued runs, under dedupe, overlap and concurrency rules.

One transaction per batch:

1. lease up to ``batch_size`` due rows with ``FOR UPDATE SKIP LOCKED`` — dispatchers on
   several workers never take the same row — **most urgent first: priority 1 is the most
   urgent, 9 the least (default 5)**, then earliest ``not_before``. Rows whose concurrency
   key is already full, or whose task must wait for its previous run (overlap ``queue``),
   are left out of the lease, so a blocked key never holds up the work behind it;
2. take transaction-scoped advisory locks on every concurrency key, dedupe key and
   overlap-guarded task in the batch, in one global order (no deadlocks between
   dispatchers), then read the live counts — so the limits hold across workers and hosts
   because Postgres, not a process, serialises the decisions;
3. decide each row (below), insert the runs (``queued`` with their attempt number, or
   ``skipped`` with the reason), delete the consumed rows and write outbox events.

Only after that commit are ``execute_run`` messages published (and ``published_at``
stamped); a run left ``queued`` without a message — the process died between commit and
publish, or the broker refused — is re-sent by the sweeper. Small batches (the steady
state) go out one run per message; a burst goes out a few runs per message
(:func:`message_groups`), which a worker runs in order — throughput for a backlog that
waits anyway, at the price of a group's later runs waiting for its earlier ones.

Decisions per row, in order:

- task canceled → ``skipped`` ("task was canceled …"), row consumed;
- dedupe key with a window (not for retries), and a queued, running, waiting or succeeded
  run with that key scheduled less than the window away (in the store or earlier in this
  batch) → ``skipped`` naming that run;
- overlap ``skip`` and the task has a queued/running run → ``skipped`` (a retry waits
  instead); overlap ``queue`` → the row stays due until the previous run finishes;
- concurrency key with ``concurrency_limit`` queued + running runs → the row stays due;
  counting queued runs too means "running" can never exceed the limit, whatever order the
  workers claim in;
- a first attempt whose task or agent budget has used its ``runs_per_day`` → ``skipped``
  with reason ``budget_exceeded: budget runs_per_day 50 of 50 (…)`` and that decision on
  the run (:mod:`ordinaut.runs.budgets`; usage counted in this transaction, under an
  advisory lock per budget, so dispatchers on several hosts never pass a cap);
- otherwise → a ``queued`` run (to ``<namespace>.runs.<worker_pool>`` if its task has one).

**Fair sharing.** Within a priority, rows are leased round robin between agents (see
:mod:`ordinaut.policy.fair_share`), and with ``ORDINAUT_DISPATCH_QUEUE_WINDOW`` (default
1024) at most that many runs wait queued in the common runs queue: work due later is leased
into the next free places of the window, so it waits behind a bounded queue, not behind
another agent's whole burst.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ordinaut.runs.budgets import RunBudgets, pool_decision
from ordinaut.store import queries
from ordinaut.vocabulary import BUDGET_EXCEEDED, OverlapPolicy, RunStatus, TaskStatus, Trigger

log = logging.getLogger("ordinaut.dispatch")


@dataclass(frozen=True)
class QueuedRun:
    """A run that needs an ``execute_run`` message (to its worker pool's queue, if any)."""

    id: uuid.UUID
    priority: int
    title: str = ""  # the task's, for people watching the broker (Flower)
    pool: str | None = None


Publish = Callable[[Sequence[QueuedRun]], None]
"""Sends ``execute_run`` messages for queued runs (the Celery shell provides it)."""


@dataclass
class DispatchResult:
    """What one dispatch pass did."""

    leased: int = 0
    queued: list[QueuedRun] = field(default_factory=list)
    skipped: int = 0
    waiting: int = 0
    held_back: bool = False  # the queue window was full: due work was left for later

    def add(self, other: DispatchResult) -> None:
        self.leased += other.leased
        self.queued.extend(other.queued)
        self.skipped += other.skipped
        self.waiting += other.waiting
        self.held_back = self.held_back or other.held_back


@dataclass
class _Live:
    """What the batch may still start, read under the advisory locks and updated per row."""

    slots_used: dict[str, int]
    busy_tasks: set[uuid.UUID]
    dedupe_taken: dict[str, list[datetime]] = field(default_factory=dict)
    budgets: RunBudgets | None = None


def _dedupe_key(row: queries.LeasedWork) -> str | None:
    """The row's dedupe key when dedupe applies to it (a window, and not a retry)."""
    if row.dedupe_key and row.dedupe_window_seconds > 0 and row.trigger != Trigger.RETRY:
        return row.dedupe_key
    return None


def _lock_set(namespace: str, rows: Sequence[queries.LeasedWork]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for row in rows:
        if row.concurrency_key:
            keys.add((f"{namespace}:concurrency", row.concurrency_key))
        if (dedupe := _dedupe_key(row)) is not None:
            keys.add((f"{namespace}:dedupe", dedupe))
        if row.overlap_policy is not OverlapPolicy.ALLOW:
            keys.add((f"{namespace}:overlap", str(row.task_id)))
    return keys


def counts_as_run(row: queries.LeasedWork) -> bool:
    """Whether a row's run counts against ``runs_per_day``: a first attempt (retries and
    resumed runs belong to an occurrence already counted)."""
    return row.attempt == 1 and row.trigger != Trigger.RETRY


def dispatch_batch(
    engine: Engine, namespace: str, now: datetime, limit: int, *, window: int = 0
) -> DispatchResult:
    """Lease up to ``limit`` due rows and decide each; commits before returning.

    With ``window`` > 0, at most that many runs are kept queued in the common runs queue:
    the batch shrinks to what fits (fair sharing: later work waits behind a bounded queue),
    and nothing is leased until at least half the window is free.
    """
    result = DispatchResult()
    with engine.begin() as conn:
        if window:
            room = window - queries.queued_ahead(conn)
            if room < limit:
                result.held_back, limit = True, room
            # refill in chunks of at least half the window: big batches travel as few
            # messages (message_groups), where many small refills would cost one each
            if limit <= 0 or (result.held_back and room < window // 2):
                return result
        rows = queries.lease_due_work(conn, now, limit)
        result.leased = len(rows)
        if not rows:
            return result
        policies = queries.task_policies(
            conn, {r.task_id for r in rows if counts_as_run(r) or r.worker_pool}
        )
        budgets = RunBudgets.of(policies, now)
        queries.lock_keys(conn, _lock_set(namespace, rows) | budgets.lock_keys(namespace))
        budgets.load(conn)
        live = _Live(
            slots_used=queries.open_runs_by_key(
                conn, (r.concurrency_key for r in rows if r.concurrency_key)
            ),
            busy_tasks=queries.tasks_with_open_runs(
                conn, (r.task_id for r in rows if r.overlap_policy is not OverlapPolicy.ALLOW)
            ),
        )
        live.budgets = budgets
        runs: list[dict[str, Any]] = []
        titles: list[str] = []
        consumed: list[int] = []
        events: list[tuple[str, dict[str, Any]]] = []
        for row in rows:
            verdict = _decide(conn, row, live)
            if verdict is None:
                result.waiting += 1
                continue
            consumed.append(row.id)
            status, reason = verdict
            run = _run_row(row, status, reason, now)
            run["decisions"] = budgets.decisions.pop(row.id, [])
            if status is RunStatus.QUEUED and row.worker_pool:
                run["decisions"].append(pool_decision(row.worker_pool, namespace, now))
            runs.append(run)
            titles.append(row.title)
            if status is RunStatus.SKIPPED:
                result.skipped += 1
                events.append(
                    (
                        "task.run.skipped",
                        {
                            "task_id": str(row.task_id),
                            "scheduled_for": row.run_at.isoformat(),
                            "reason": reason,
                        },
                    )
                )
        ids = queries.insert_runs(conn, runs)
        queries.delete_due_work(conn, consumed)
        budgets.save(conn)
        for run_id, run in zip(ids, runs, strict=True):
            for entry in run["decisions"] if run_id is not None else ():
                events.append(
                    (
                        "task.run.policy",
                        {"run_id": str(run_id), "task_id": str(run["task_id"]), **entry},
                    )
                )
        queries.emit(conn, events)
        result.queued = [
            QueuedRun(run_id, run["priority"], title, run["worker_pool"])
            for run_id, run, title in zip(ids, runs, titles, strict=True)
            if run_id is not None and run["status"] == RunStatus.QUEUED.value
        ]
    return result


def _decide(
    conn: Connection, row: queries.LeasedWork, live: _Live
) -> tuple[RunStatus, str | None] | None:
    """(status, reason) for a row, or None to leave it due; updates ``live`` when queued."""
    if row.task_status == TaskStatus.CANCELED:
        return RunStatus.SKIPPED, "task was canceled before this occurrence ran"
    key = _dedupe_key(row)
    if key is not None:
        window = timedelta(seconds=row.dedupe_window_seconds)
        if any(abs(at - row.run_at) < window for at in live.dedupe_taken.get(key, ())):
            return RunStatus.SKIPPED, (
                f"dedupe: another run with key {key!r} in this dispatch is within "
                f"{row.dedupe_window_seconds}s"
            )
        earlier = queries.recent_dedupe_run(conn, key, row.run_at - window, row.run_at + window)
        if earlier is not None:
            return RunStatus.SKIPPED, (
                f"dedupe: run {earlier} with key {key!r} is within {row.dedupe_window_seconds}s"
            )
    if row.overlap_policy is not OverlapPolicy.ALLOW and row.task_id in live.busy_tasks:
        if row.overlap_policy is OverlapPolicy.SKIP and row.trigger != Trigger.RETRY:
            return RunStatus.SKIPPED, "overlap: the previous run of this task is still open"
        return None
    if row.concurrency_key:
        used = live.slots_used.get(row.concurrency_key, 0)
        if used >= row.concurrency_limit:
            return None
    if live.budgets is not None and counts_as_run(row):
        exceeded = live.budgets.take_run(row)
        if exceeded is not None:
            return RunStatus.SKIPPED, f"{BUDGET_EXCEEDED}: {exceeded}"
    if row.concurrency_key:
        live.slots_used[row.concurrency_key] = live.slots_used.get(row.concurrency_key, 0) + 1
    live.busy_tasks.add(row.task_id)
    if key is not None:
        live.dedupe_taken.setdefault(key, []).append(row.run_at)
    return RunStatus.QUEUED, None


def _run_row(
    row: queries.LeasedWork, status: RunStatus, reason: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "status": status.value,
        "trigger": row.trigger,
        "scheduled_for": row.run_at,
        "not_before": row.not_before,
        "work_created_at": row.work_created_at,
        "attempt": row.attempt,
        "priority": row.priority,
        "concurrency_key": row.concurrency_key,
        "dedupe_key": row.dedupe_key,
        "event": row.event,
        "reason": reason,
        "finished_at": now if status is RunStatus.SKIPPED else None,
        "worker_pool": row.worker_pool,
    }


# A burst (a big dispatch batch) is published as messages of several runs each, so the
# per-message cost of the broker and of Celery is paid once for the group: a batch of n runs
# goes out in messages of clamp(n // RUNS_PER_MESSAGE_EVERY, 1, MAX_RUNS_PER_MESSAGE) runs,
# i.e. one run per message below 128 runs. A worker runs a group's runs one after another.
RUNS_PER_MESSAGE_EVERY = 64
MAX_RUNS_PER_MESSAGE = 8


def message_groups(runs: Sequence[QueuedRun]) -> list[list[QueuedRun]]:
    """How a dispatched batch is split into ``execute_run`` messages, in batch order."""
    size = max(1, min(MAX_RUNS_PER_MESSAGE, len(runs) // RUNS_PER_MESSAGE_EVERY))
    if any(run.pool for run in runs):  # a message goes to one queue: one pool per group
        groups: list[list[QueuedRun]] = []
        for run in runs:
            last = groups[-1] if groups else None
            if last is not None and last[0].pool == run.pool and len(last) < size:
                last.append(run)
            else:
                groups.append([run])
        return groups
    return [list(runs[i : i + size]) for i in range(0, len(runs), size)]


def dispatch(
    engine: Engine,
    namespace: str,
    clock: Callable[[], datetime],
    publish: Publish,
    *,
    batch_size: int,
    max_batches: int = 20,
    window: int = 0,
) -> DispatchResult:
    """Dispatch until nothing is leasable (bounded), publishing each batch after its commit."""
    total = DispatchResult()
    for _ in range(max_batches):
        batch = dispatch_batch(engine, namespace, clock(), batch_size, window=window)
        if batch.queued:
            published_at = clock()
            publish(batch.queued)
            with engine.begin() as conn:
                queries.mark_published(conn, [q.id for q in batch.queued], published_at)
        total.add(batch)
        if batch.held_back or batch.leased < batch_size or batch.leased == batch.waiting:
            break
    if total.leased:
        log.info(
            "dispatched queued=%d skipped=%d waiting=%d",
            len(total.queued),
            total.skipped,
            total.waiting,
        )
    return total
