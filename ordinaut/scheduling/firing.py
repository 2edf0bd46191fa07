"""Beat's database work for one tick: claim due tasks, write due_work, advance schedules.

All in one transaction: the claimed task rows stay locked (``FOR UPDATE SKIP LOCKED``) until
their due_work rows are inserted and their ``next_run_at`` moved, so a second beat running
at the same moment skips them, and ``UNIQUE (task_id, run_at)`` catches anything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ordinaut.scheduling.misfire import MisfirePolicy
from ordinaut.scheduling.recurrence import Schedule, parse_schedule
from sqlalchemy.engine import Engine, Row

from ordinaut.errors import ValidationError
from ordinaut.runs.states import RunStatus, Trigger
from ordinaut.scheduling.planning import TaskPlan, plan_due_task
from ordinaut.store import queries

log = logging.getLogger("ordinaut.beat")


@dataclass(frozen=True)
class TickResult:
    """What one tick wrote."""

    claimed: int
    due_work: int
    skipped: int
    completed: int


@lru_cache(maxsize=65_536)
def cached_schedule(kind: str, expr: str | None, tz: str, created_at: datetime) -> Schedule:
    """Parsed schedules, reused across ticks (they are immutable values)."""
    return parse_schedule(kind, expr, tz, created_at=created_at)


def fire_due_tasks(
    engine: Engine, now: datetime, *, limit: int, grace: timedelta, cap: int
) -> TickResult:
    """Claim up to ``limit`` due tasks and turn their occurrences into due_work."""
    with engine.begin() as conn:
        rows = queries.claim_due_tasks(conn, now, limit)
        if not rows:
            return TickResult(0, 0, 0, 0)
        work: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in rows:
            plan = _plan(row, now, grace, cap)
            work.extend(
                {
                    "task_id": row.id,
                    "run_at": w.run_at,
                    "not_before": w.not_before,
                    "trigger": w.trigger.value,
                    "priority": row.priority,
                }
                for w in plan.work
            )
            skipped.extend(_skipped_runs(row, plan, now))
            updates.append(
                {
                    "id": row.id,
                    "next_occurrence_at": plan.next_occurrence_at,
                    "next_run_at": plan.next_run_at,
                    "completed": plan.completed,
                }
            )
        written = queries.insert_due_work(conn, work)
        queries.insert_runs(conn, skipped)
        queries.advance_tasks(conn, updates)
    completed = sum(1 for u in updates if u["completed"])
    return TickResult(len(rows), written, len(skipped), completed)


def _plan(row: Row[Any], now: datetime, grace: timedelta, cap: int) -> TaskPlan:
    try:
        schedule = cached_schedule(
            row.schedule_kind, row.schedule_expr, row.timezone, row.created_at
        )
    except ValidationError as exc:
        # stored schedules were validated on the way in; one that no longer parses (e.g. a
        # zone dropped from tzdata) must not block the others: stop it and say why
        log.error("unparseable schedule", extra={"task_id": str(row.id), "error": exc.message})
        return TaskPlan((), (), 0, None, None)
    occurrence = row.next_occurrence_at or row.next_run_at
    return plan_due_task(
        row.id,
        schedule,
        occurrence,
        now,
        policy=MisfirePolicy(row.misfire_policy),
        jitter_seconds=row.jitter_seconds,
        grace=grace,
        cap=cap,
    )


def _skipped_runs(row: Row[Any], plan: TaskPlan, now: datetime) -> list[dict[str, Any]]:
    runs = [
        _skipped(row, occurrence, now, "misfire: missed while the scheduler was down")
        for occurrence in plan.skipped
    ]
    if plan.skipped_more and plan.skipped:
        runs[-1]["reason"] += f" (and {plan.skipped_more} more occurrences not listed)"
    return runs


def _skipped(row: Row[Any], occurrence: datetime, now: datetime, reason: str) -> dict[str, Any]:
    return {
        "task_id": row.id,
        "status": RunStatus.SKIPPED.value,
        "trigger": Trigger.SCHEDULE.value,
        "scheduled_for": occurrence,
        "attempt": 1,
        "priority": row.priority,
        "concurrency_key": None,
        "dedupe_key": None,
        "event": None,
        "reason": reason,
        "finished_at": now,
    }
