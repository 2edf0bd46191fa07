"""Durable retries: the next attempt of a failed run is a due_work row, never a sleep.

:func:`retry_policy` says how many attempts a failure allows and with which backoff (the
failing step's ``retry`` override, else the task's ``max_retries``/``backoff_strategy``);
:func:`next_attempt` is the due_work row for the attempt after ``run`` — same occurrence
(``run_at``), ``attempt + 1``, ``trigger = retry``, ``not_before`` after the backoff
(:mod:`ordinaut.runs.backoff`, seeded by the run id). The executor writes it with the
finish; the reaper with :func:`plan_retry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.config import Settings
from ordinaut.pipeline.model import Pipeline
from ordinaut.runs.backoff import retry_delay
from ordinaut.store import queries
from ordinaut.vocabulary import BackoffStrategy, Trigger

# a failed attempt: finished by its worker (claimed) or by the reaper
Attempt = queries.ClaimedRun | queries.ReapedRun


def retry_policy(
    claimed: queries.ClaimedRun, pipeline: Pipeline | None, failed_step: str | None
) -> tuple[int, BackoffStrategy]:
    """(max_retries, strategy) for a failure: the failing step's override, else the task's."""
    step = pipeline.find_step(failed_step) if pipeline and failed_step else None
    if step is not None and step.retry is not None:
        return step.retry.max_retries, BackoffStrategy(
            step.retry.backoff or claimed.backoff_strategy
        )
    return claimed.max_retries, BackoffStrategy(claimed.backoff_strategy)


def next_attempt(
    settings: Settings,
    run: Attempt,
    strategy: BackoffStrategy,
    *,
    now: datetime,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """The due_work row for the attempt after ``run``, due the backoff delay after ``now``."""
    delay = retry_delay(
        strategy,
        run.attempt,
        base=settings.backoff_base_seconds,
        cap=settings.backoff_cap_seconds,
        seed=str(run.id),
        retry_after=retry_after,
    )
    return {
        "task_id": run.task_id,
        "run_at": run.scheduled_for,
        "not_before": now + timedelta(seconds=delay),
        "trigger": Trigger.RETRY.value,
        "attempt": run.attempt + 1,
        "priority": run.priority,
        "event": run.event,
    }


def plan_retry(
    conn: Connection,
    settings: Settings,
    run: Attempt,
    strategy: BackoffStrategy,
    *,
    now: datetime,
    retry_after: float | None = None,
) -> datetime:
    """Insert the next attempt's due_work row and its event (caller's transaction)."""
    row = next_attempt(settings, run, strategy, now=now, retry_after=retry_after)
    queries.insert_due_work(conn, [row])
    queries.emit(conn, [retry_event(run, row)])
    not_before: datetime = row["not_before"]
    return not_before


def retry_event(run: Attempt, row: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ``task.run.retry_planned`` event for ``run``'s next attempt ``row``."""
    return (
        "task.run.retry_planned",
        {
            "task_id": str(run.task_id),
            "run_id": str(run.id),
            "attempt": row["attempt"],
            "not_before": row["not_before"].isoformat(),
        },
    )
