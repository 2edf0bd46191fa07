"""What beat does with one due task: pure, a function of the task's row and ``now``.

A task carries ``next_occurrence_at`` (the nominal occurrence the schedule continues from)
and ``next_run_at`` (when it fires: the occurrence plus its stable jitter, or a snoozed
instant). When ``next_run_at`` has come, :func:`plan_due_task` decides:

* occurrences due by ``now`` and no older than ``grace + jitter_seconds`` are **on time**:
  due_work with trigger ``schedule`` and ``not_before`` = occurrence + its jitter (jitter
  delays a fire on purpose, so it never makes an occurrence count as missed);
* older ones were **missed** (beat was down): the misfire policy
  (:mod:`ordinaut.scheduling.misfire`) picks those that still run — due_work with trigger
  ``catch_up`` and ``not_before = now`` — and lists the others as skipped (at most ``cap``,
  ``skipped_more`` counts the rest);
* the task moves to its first occurrence after ``now``, or becomes ``completed`` when the
  schedule has none (a fired ``once``, an RRULE past its COUNT or UNTIL).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ordinaut.scheduling.expansion import Budget
from ordinaut.scheduling.jitter import jitter_delay
from ordinaut.scheduling.misfire import plan_catch_up
from ordinaut.scheduling.recurrence import Schedule, parse_schedule
from ordinaut.vocabulary import MisfirePolicy, Trigger

# only an RRULE without a DTSTART line depends on its task's creation time; every other
# schedule is shared by all tasks with the same (kind, expr, zone)
_NO_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
SCHEDULE_CACHE_SIZE = 8192  # at most ~3 KiB each: ~25 MiB


@lru_cache(maxsize=SCHEDULE_CACHE_SIZE)
def _compiled(kind: str, expr: str | None, tz: str, anchor: datetime) -> Schedule:
    return parse_schedule(kind, expr, tz, created_at=anchor)


def schedule_of(kind: str, expr: str | None, tz: str, created_at: datetime) -> Schedule:
    """A stored task's parsed schedule, reused across ticks and tasks (schedules are values).

    Beat and the agenda both read schedules through here. Raises
    :class:`~ordinaut.errors.ValidationError` when the stored schedule does not parse any more.
    """
    anchor = created_at if kind == "rrule" else _NO_ANCHOR
    return _compiled(kind, expr, tz, anchor)


@dataclass(frozen=True)
class Work:
    """One occurrence to write to due_work."""

    run_at: datetime
    not_before: datetime
    trigger: Trigger


@dataclass(frozen=True)
class TaskPlan:
    """Beat's decision for one due task: due_work to write, occurrences to record as
    skipped (plus how many more were not listed), and where the schedule continues."""

    work: tuple[Work, ...]
    skipped: tuple[datetime, ...]
    skipped_more: int
    next_occurrence_at: datetime | None
    next_run_at: datetime | None

    @property
    def completed(self) -> bool:
        """True when the schedule has no occurrence after this one: the task is done."""
        return self.next_occurrence_at is None


def fire_time(
    task_id: uuid.UUID, occurrence: datetime | None, jitter_seconds: int
) -> datetime | None:
    """When an occurrence fires: the occurrence plus its stable jitter."""
    if occurrence is None:
        return None
    return occurrence + jitter_delay(str(task_id), occurrence, jitter_seconds)


def plan_due_task(
    task_id: uuid.UUID,
    schedule: Schedule,
    next_occurrence_at: datetime,
    now: datetime,
    *,
    policy: MisfirePolicy,
    jitter_seconds: int,
    grace: timedelta,
    cap: int,
    budget: Budget | None = None,
) -> TaskPlan:
    """Decide the due work, the skipped occurrences and the next occurrence of a due task.

    The whole decision spends one expansion ``budget`` (a fresh one unless given): beat never
    spends more than that on one task in a tick; past it,
    :class:`~ordinaut.scheduling.expansion.TooCostly` says why.
    """
    # jitter delays a fire on purpose; it must not make an occurrence count as missed
    catch = plan_catch_up(
        schedule,
        next_occurrence_at,
        now,
        policy,
        grace=grace + timedelta(seconds=jitter_seconds),
        cap=cap,
        budget=budget or Budget(),
    )
    on_time_after = now - grace - timedelta(seconds=jitter_seconds)
    work = []
    for occurrence in catch.fire:
        if occurrence >= on_time_after:
            not_before = fire_time(task_id, occurrence, jitter_seconds) or occurrence
            work.append(Work(occurrence, not_before, Trigger.SCHEDULE))
        else:
            work.append(Work(occurrence, now, Trigger.CATCH_UP))
    return TaskPlan(
        work=tuple(work),
        skipped=catch.skip,
        skipped_more=catch.skipped_more,
        next_occurrence_at=catch.next_run_at,
        next_run_at=fire_time(task_id, catch.next_run_at, jitter_seconds),
    )
