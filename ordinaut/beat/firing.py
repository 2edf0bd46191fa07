"""Beat's database work for one batch: claim due tasks, write runs or due_work, advance.

One transaction per batch: the claimed task rows stay locked (``FOR UPDATE SKIP LOCKED``)
until their runs or due_work rows are inserted, their skipped occurrences recorded and their
``next_run_at`` moved, so a second beat running at the same moment skips them, and one that
read them just before the commit re-checks them against the new ``next_run_at`` and lets them
go. ``UNIQUE (task_id, run_at)`` on due_work and the unique index on a run's (task,
occurrence, attempt) catch anything else.

Per claimed task, :func:`ordinaut.scheduling.planning.plan_due_task` decides (pure) which
occurrences fire (``schedule`` on time, ``catch_up`` for missed ones the misfire policy
keeps) and which become ``skipped`` runs with the reason. An occurrence that fires becomes:

- a **queued run**, written here, when its task *runs freely* (no concurrency key, no dedupe
  window, overlap ``allow``: nothing to decide against other runs) and it may start now —
  the steady path: no due_work row, no dispatch message, no second transaction; the caller
  publishes ``execute_run`` after the commit and passes the publish times to the next batch,
  which stamps them (``published_at``) in its own transaction;
- a **due_work row** otherwise, for dispatch to decide under its rules (or to wait for its
  ``not_before``).

The task then moves to its next occurrence, or becomes ``completed`` when its schedule is
exhausted (a fired ``once``, an RRULE past its COUNT/UNTIL). A stored task whose schedule
cannot be computed any more (a zone removed from tzdata, a value written around the
service, a rule that needs more than its expansion budget to find the next occurrence —
:mod:`ordinaut.scheduling.expansion`) is paused with a ``skipped`` run saying why, instead
of stopping every other task's schedule.

The cost of a batch depends on the number of tasks it claims, never on how many are stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from ordinaut.errors import ValidationError
from ordinaut.runs.dispatch import QueuedRun
from ordinaut.scheduling.expansion import STEPS_PER_CALL, Budget
from ordinaut.scheduling.planning import TaskPlan, Work, plan_due_task, schedule_of
from ordinaut.scheduling.recurrence import Schedule
from ordinaut.store import queries
from ordinaut.vocabulary import MisfirePolicy, RunStatus, TaskStatus, Trigger

log = logging.getLogger("ordinaut.beat")


@dataclass(frozen=True)
class TickResult:
    """What one batch did: tasks claimed, due_work rows written, runs recorded skipped,
    tasks completed, tasks paused because their schedule cannot be computed, and the runs
    created directly (to publish once the batch has committed)."""

    claimed: int
    due_work: int
    skipped: int
    completed: int
    paused: int
    queued: tuple[QueuedRun, ...]
    wake: queries.Wake  # when beat must wake next, read after the batch's writes


# more runs than this in one batch are a burst: they become due_work for dispatch (fair
# between agents) instead of runs beat publishes itself (the steady-pace fast path)
DIRECT_BURST = 100


def fire_due_tasks(
    engine: Engine,
    now: datetime,
    *,
    limit: int,
    grace: timedelta,
    cap: int,
    published: Sequence[tuple[uuid.UUID, datetime]] = (),
    since: datetime | None = None,
    steps: int = STEPS_PER_CALL,
) -> TickResult:
    """Claim up to ``limit`` tasks due at ``now``; turn their occurrences into runs (tasks
    that run freely, when the occurrence may start now) or due_work (the others).

    Commits once, and stamps ``published`` — runs an earlier batch created and published
    after its commit, with when — in the same transaction, which also reads when beat must
    wake next (``since``: see :func:`~ordinaut.store.queries.next_wake`). Returns what it
    did; ``claimed < limit`` means nothing more was due (or the rest is locked by another
    beat). ``steps`` is the expansion budget of one task in this batch.
    """
    with engine.begin() as conn:
        rows = queries.claim_due_tasks(conn, now, limit)
        if not rows:
            queries.mark_published_at(conn, published)
            return TickResult(0, 0, 0, 0, 0, (), queries.next_wake(conn, now, since=since))
        runs: list[dict[str, Any]] = []
        work: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        paused = 0
        for row in rows:
            try:
                schedule = schedule_of(
                    row.schedule_kind, row.schedule_expr, row.timezone, row.created_at
                )
                plan = _plan(row, schedule, now, grace, cap, Budget(per_call=steps))
            except Exception as exc:  # one bad row must not stop every other task's schedule
                paused += 1
                why = exc.message if isinstance(exc, ValidationError) else repr(exc)
                log.error("task %s paused: its schedule cannot be computed: %s", row.id, why)
                skipped.append(_skipped(row, _occurrence(row), now, _unusable(why)))
                # left where it was: resuming retries it; an update that fixes it recomputes it
                updates.append(
                    _update(row.id, row.next_occurrence_at, row.next_run_at, TaskStatus.PAUSED)
                )
                continue
            for w in plan.work:
                if row.runs_freely and w.not_before <= now:
                    runs.append(_run(row, w, now))
                else:
                    work.append(
                        {
                            "task_id": row.id,
                            "run_at": w.run_at,
                            "not_before": w.not_before,
                            "trigger": w.trigger.value,
                            "priority": row.priority,
                        }
                    )
            skipped.extend(_skipped_runs(row, plan, now))
            status = TaskStatus.COMPLETED if plan.completed else None
            updates.append(_update(row.id, plan.next_occurrence_at, plan.next_run_at, status))
        if len(runs) > DIRECT_BURST:
            # a burst goes through dispatch, which shares the runs queue between agents
            # (README, "Fair sharing"): published here, it would sit ahead of every other
            # agent's later work in the broker
            work.extend(_as_work(run) for run in runs)
            runs = []
        ids, written = queries.write_fired(
            conn, runs=runs, work=work, skipped=skipped, moves=updates, stamps=published
        )
        wake = queries.next_wake(conn, now, since=since)
    completed = sum(1 for u in updates if u["status"] == TaskStatus.COMPLETED)
    titles = {row.id: row.title for row in rows}
    queued = tuple(
        QueuedRun(run_id, run["priority"], titles[run["task_id"]])
        for run_id, run in zip(ids, runs, strict=True)
        if run_id is not None
    )
    return TickResult(len(rows), written, len(skipped), completed, paused, queued, wake)


def _as_work(run: dict[str, Any]) -> dict[str, Any]:
    """The due_work row of a run beat would have created itself."""
    return {
        "task_id": run["task_id"],
        "run_at": run["scheduled_for"],
        "not_before": run["not_before"],
        "trigger": run["trigger"],
        "priority": run["priority"],
    }


def _run(row: queries.DueTask, work: Work, now: datetime) -> dict[str, Any]:
    """The queued run of an occurrence beat creates itself (see ``DueTask.runs_freely``)."""
    return {
        "task_id": row.id,
        "status": RunStatus.QUEUED.value,
        "trigger": work.trigger.value,
        "scheduled_for": work.run_at,
        "not_before": work.not_before,
        "work_created_at": now,
        "priority": row.priority,
        "dedupe_key": row.dedupe_key,
    }


def _occurrence(row: queries.DueTask) -> datetime:
    occurrence: datetime = row.next_occurrence_at or row.next_run_at
    return occurrence


def _plan(
    row: queries.DueTask,
    schedule: Schedule,
    now: datetime,
    grace: timedelta,
    cap: int,
    budget: Budget,
) -> TaskPlan:
    return plan_due_task(
        row.id,
        schedule,
        _occurrence(row),
        now,
        policy=MisfirePolicy(row.misfire_policy),
        jitter_seconds=row.jitter_seconds,
        grace=grace,
        cap=cap,
        budget=budget,  # per task per tick: past it, TooCostly pauses the task (see above)
    )


def _update(
    task_id: Any,
    next_occurrence_at: datetime | None,
    next_run_at: datetime | None,
    status: TaskStatus | None,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "next_occurrence_at": next_occurrence_at,
        "next_run_at": next_run_at,
        "status": status,
    }


def _unusable(why: str) -> str:
    return f"schedule cannot be computed ({why}); task paused: fix it, then resume"


_MISFIRE_REASON = {
    MisfirePolicy.SKIP: "misfire (skip): missed while the scheduler was down",
    MisfirePolicy.RUN_ONCE: (
        "misfire (run_once): missed while the scheduler was down; only the latest ran"
    ),
    MisfirePolicy.RUN_ALL: (
        "misfire (run_all): missed while the scheduler was down, beyond the catch-up cap"
    ),
}


def _skipped_runs(row: queries.DueTask, plan: TaskPlan, now: datetime) -> list[dict[str, Any]]:
    reason = _MISFIRE_REASON[MisfirePolicy(row.misfire_policy)]
    runs = [_skipped(row, occurrence, now, reason) for occurrence in plan.skipped]
    if plan.skipped_more and runs:
        runs[-1]["reason"] += f" (and {plan.skipped_more} later missed occurrences not listed)"
    return runs


def _skipped(
    row: queries.DueTask, occurrence: datetime, now: datetime, reason: str
) -> dict[str, Any]:
    return {
        "task_id": row.id,
        "trigger": Trigger.SCHEDULE.value,
        "scheduled_for": occurrence,
        "priority": row.priority,
        "reason": reason,
        "finished_at": now,
    }
