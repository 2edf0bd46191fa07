"""The agenda: every fire of a set of tasks in a window, in order; pure, ``now`` an argument.

It answers "what will run tomorrow?" with the numbers beat will use, not a second opinion:

* a task's first fire is its stored ``next_run_at`` for the occurrence ``next_occurrence_at``
  — what beat claims next, so a snooze (which moves both) and a skip (which moved the task
  past the skipped occurrences) are already in it;
* every later occurrence comes from the same parsed schedule beat reads
  (:func:`~ordinaut.scheduling.planning.schedule_of`, so the DST rule and its notes are the
  same) and fires at :func:`~ordinaut.scheduling.planning.fire_time` (occurrence plus the
  stable jitter);
* a task already due at ``now`` (beat is about to tick, or was down) gets what beat will do
  at its next tick, from beat's own :func:`~ordinaut.scheduling.planning.plan_due_task`:
  on-time occurrences at their fire time, missed ones the misfire policy keeps at ``now``
  (marked *overdue*), a count of those it skips; its schedule then continues from there.

Paused, canceled and completed tasks have no fires (the caller passes active tasks only).
Items are ordered by (fire time, task id, occurrence); a cursor is that key of the last item
of a page, and the next page continues strictly after it.

A page is the ``limit + 1`` smallest fires after the cursor, kept in one sorted list: each
task's fires come from a lazy iterator, read only while they would enter that list, and the
task is then dropped. Tasks come in order of :func:`earliest` (the caller's query sorts
them, in chunks): once the list is full and the next task's earliest instant is after its
last item, no later task can enter and the reading stops. So a page holds at most
``limit + 1`` fires and the schedules being read, however many tasks the caller has, and
reads only the tasks it can reach (plus, from a later ``from`` or cursor, every task that
fires before it, one at a time). Tasks with the same schedule standing at the same point
share its occurrences.
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import chain

from ordinaut.scheduling.planning import fire_time, plan_due_task
from ordinaut.scheduling.recurrence import Occurrence, Schedule
from ordinaut.vocabulary import MisfirePolicy, Trigger

MAX_WINDOW = timedelta(days=31)
MAX_ITEMS = 10_000
DEFAULT_GRACE = timedelta(seconds=60)  # beat's defaults (ORDINAUT_MISFIRE_GRACE_SECONDS, …)
DEFAULT_CAP = 100
_TICK = timedelta(microseconds=1)
_SHARED = 1024  # schedules' shared occurrences kept at once (then forgotten and recomputed)

Key = tuple[datetime, uuid.UUID, datetime]


@dataclass(frozen=True)
class AgendaTask:
    """What the agenda needs of one active task."""

    id: uuid.UUID
    title: str
    schedule: Schedule
    next_occurrence_at: datetime | None
    next_run_at: datetime
    jitter_seconds: int
    misfire_policy: MisfirePolicy


@dataclass(frozen=True)
class AgendaItem:
    """One fire: when (UTC), the nominal occurrence it runs for, and notes (DST, snooze,
    overdue) when they apply."""

    at: datetime
    occurrence: datetime
    task_id: uuid.UUID
    title: str
    timezone: str
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        """The order of the agenda, and what a cursor holds."""
        return (self.at, self.task_id, self.occurrence)


def check_window(start: datetime, end: datetime) -> str | None:
    """Why ``[start, end)`` is not an agenda window (``None`` when it is)."""
    if start.tzinfo is None or end.tzinfo is None:
        return "from and to need a UTC offset"
    if end <= start:
        return "to must be after from"
    if end - start > MAX_WINDOW:
        return f"the window is longer than {MAX_WINDOW.days} days"
    return None


def earliest(task: AgendaTask) -> datetime:
    """The earliest instant ``task`` can fire: a fire is its occurrence plus a delay (jitter,
    a misfire's catch-up), and the first is the stored ``next_run_at`` — so no fire comes
    before its stored next occurrence nor before its ``next_run_at`` when that comes first.
    ``queries.agenda_tasks`` orders by the same expression."""
    return min(task.next_run_at, task.next_occurrence_at or task.next_run_at)


def agenda(
    tasks: Iterable[AgendaTask],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    limit: int,
    after: Key | None = None,
    grace: timedelta = DEFAULT_GRACE,
    cap: int = DEFAULT_CAP,
    ordered: bool = False,
) -> tuple[list[AgendaItem], bool]:
    """The first ``limit`` fires in ``[start, end)`` strictly after ``after``, in order, and
    whether more follow. ``grace`` and ``cap`` are beat's misfire settings.

    ``tasks`` in any order (they are sorted first), or, with ``ordered``, ascending by
    :func:`earliest` (ValueError otherwise): then they are read lazily, only until no later
    task can reach the page, so they may come from a chunked query.
    """
    lower = start if after is None else max(start, after[0])
    if not ordered:
        tasks = sorted(tasks, key=lambda one: (earliest(one), one.id))
    want = limit + 1
    # the smallest (key, fire) pairs seen, ascending, at most ``want`` (keys are unique)
    best: list[tuple[Key, AgendaItem]] = []
    shared: dict[tuple[int, datetime], _Occurrences] = {}
    previous: datetime | None = None
    for task in tasks:
        first = earliest(task)
        if previous is not None and first < previous:
            raise ValueError("agenda tasks must come in order of their earliest fire")
        previous = first
        if len(best) == want and max(lower, first) > best[-1][0][0]:
            break  # it, and every task after it, fires after the page's last item
        if len(shared) > _SHARED:
            shared.clear()
        for item in _stream(task, lower, end, now, grace, cap, shared):
            key = item.key
            if len(best) == want and key >= best[-1][0]:
                break  # the task's later fires come later still
            if after is not None and key <= after:
                continue
            at = bisect.bisect_left(best, (key,))
            if at < len(best) and best[at][0] == key:
                continue  # the same fire twice (a task given twice): shown once
            best.insert(at, (key, item))
            if len(best) > want:
                best.pop()
    return [item for _, item in best[:limit]], len(best) > limit


def _stream(
    task: AgendaTask,
    lower: datetime,
    end: datetime,
    now: datetime,
    grace: timedelta,
    cap: int,
    shared: dict[tuple[int, datetime], _Occurrences],
) -> Iterator[AgendaItem]:
    """The task's fires in ``[lower, end)``, ascending by key; for a task already due at
    ``now``, what beat does at its next tick, then its schedule from there."""
    if task.next_run_at > now:
        return _fires(task, lower, end, shared)
    fired, continued = _due(task, now, grace, cap)
    due = [item for item in fired if lower <= item.at < end]
    if continued is None:
        return iter(due)
    later = _fires(continued, lower, end, shared)
    return heapq.merge(due, later, key=lambda item: item.key)


def _due(
    task: AgendaTask, now: datetime, grace: timedelta, cap: int
) -> tuple[list[AgendaItem], AgendaTask | None]:
    """What beat does with a task already due at ``now`` when it next ticks (its own
    :func:`~ordinaut.scheduling.planning.plan_due_task`): the fires, sorted, and the task as
    it continues afterwards (``None`` when its schedule ends)."""
    first = task.next_occurrence_at or task.next_run_at
    plan = plan_due_task(
        task.id,
        task.schedule,
        first,
        now,
        policy=task.misfire_policy,
        jitter_seconds=task.jitter_seconds,
        grace=grace,
        cap=cap,
    )
    zone, policy = task.schedule.tz.key, task.misfire_policy.value
    skipped = len(plan.skipped) + plan.skipped_more
    fires = []
    for work in plan.work:
        notes: tuple[str, ...] = ()
        if work.trigger is Trigger.CATCH_UP:
            notes = (
                f"overdue: missed while the scheduler was behind; runs at its next tick "
                f"(misfire policy {policy})",
            )
        fires.append(AgendaItem(work.not_before, work.run_at, task.id, task.title, zone, notes))
    if skipped and fires:
        last = fires[-1]
        fires[-1] = replace(last, notes=(*last.notes, f"{skipped} missed occurrences skipped"))
    continued = None
    if plan.next_occurrence_at is not None and plan.next_run_at is not None:
        continued = replace(
            task, next_occurrence_at=plan.next_occurrence_at, next_run_at=plan.next_run_at
        )
    return sorted(fires, key=lambda item: item.key), continued


class _Occurrences:
    """One schedule's occurrences after one instant, computed once for every task that
    shares them (tasks with the same schedule usually stand at the same next occurrence)."""

    def __init__(self, schedule: Schedule, after: datetime) -> None:
        self._schedule = schedule  # alive while cached: its id() keys the cache
        self._found = schedule.iter_after(after)
        self._seen: list[Occurrence] = []

    def __iter__(self) -> Iterator[Occurrence]:
        index = 0
        while True:
            if index == len(self._seen):
                following = next(self._found, None)
                if following is None:
                    return
                self._seen.append(following)
            yield self._seen[index]
            index += 1


def _fires(
    task: AgendaTask,
    lower: datetime,
    end: datetime,
    shared: dict[tuple[int, datetime], _Occurrences],
) -> Iterator[AgendaItem]:
    """The task's fires in ``[lower, end)``, ascending.

    Occurrences come in order but jitter may let a later one fire before an earlier one's
    delay is over, so fires wait in a small heap until no later occurrence can come before
    them (every fire is at or after its own occurrence).
    """
    zone = task.schedule.tz.key
    pending: list[tuple[Key, AgendaItem]] = []

    def push(at: datetime, occurrence: datetime, notes: tuple[str, ...]) -> None:
        fire = AgendaItem(at, occurrence, task.id, task.title, zone, notes)
        heapq.heappush(pending, (fire.key, fire))

    first = task.next_occurrence_at or task.next_run_at
    first_in_window = lower <= task.next_run_at < end
    # from the stored first occurrence when it may show (to read its DST note, or see that
    # a snooze moved it off the schedule), else from the first that may fire at ``lower``
    seek = max(first, lower - timedelta(seconds=task.jitter_seconds)) - _TICK
    key = (id(task.schedule), seek)
    if key not in shared:
        shared[key] = _Occurrences(task.schedule, seek)
    occurrences = iter(shared[key])
    if first_in_window:
        on_schedule = next(occurrences, None) if seek == first - _TICK else None
        notes: list[str] = []
        moved = task.next_run_at != fire_time(task.id, first, task.jitter_seconds)
        if moved or on_schedule is None or on_schedule.utc != first:
            notes.append("snoozed")  # a snooze moves the task to an instant off its schedule
            if on_schedule is not None and on_schedule.utc > first:
                occurrences = chain((on_schedule,), occurrences)
        elif on_schedule.note:
            notes.append(on_schedule.note)
        push(task.next_run_at, first, tuple(notes))
    for occ in occurrences:
        if occ.utc <= first:
            continue  # the stored first occurrence (or one before it): not fired again
        while pending and pending[0][0][0] <= occ.utc:
            yield heapq.heappop(pending)[1]
        if occ.utc >= end:
            break
        at = fire_time(task.id, occ.utc, task.jitter_seconds) or occ.utc
        if lower <= at < end:
            push(at, occ.utc, (occ.note,) if occ.note else ())
    while pending:
        yield heapq.heappop(pending)[1]
