"""Misfire policy: what to do with occurrences that came due while the scheduler was down.

The due occurrences are the stored ``next_run_at`` and every later occurrence ``<= now``. One
no older than ``grace`` (``now - occ <= grace``) is on time and always fires. Older ones are
*missed*:

* ``run_once`` (default) fires the most recent missed occurrence and skips the others;
* ``skip`` fires none of them;
* ``run_all`` fires the first ``cap`` of them, in order, and skips the rest.

Skipped occurrences are listed (at most ``cap``, oldest first) so that they can be recorded;
``skipped_more`` counts the others. Work is bounded: nothing builds a list longer than
``2 * cap``; counting stops at :data:`COUNT_LIMIT` missed occurrences (``skipped_more`` then
saturates), the most recent missed one is found by bisection, and the new ``next_run_at`` by
one jump from ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ordinaut.scheduling.expansion import Budget
from ordinaut.scheduling.recurrence import Schedule
from ordinaut.vocabulary import MisfirePolicy

__all__ = ["COUNT_LIMIT", "CatchUp", "MisfirePolicy", "plan_catch_up"]

COUNT_LIMIT = 100_000  # about half a second of counting
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class CatchUp:
    """The decision for one task: what to run now, what to record as skipped, what is next."""

    fire: tuple[datetime, ...]
    skip: tuple[datetime, ...]
    skipped_more: int
    next_run_at: datetime | None


def plan_catch_up(
    schedule: Schedule,
    next_run_at: datetime,
    now: datetime,
    policy: MisfirePolicy,
    *,
    grace: timedelta,
    cap: int = 100,
    budget: Budget | None = None,
) -> CatchUp:
    """Split the occurrences due by ``now`` into fire and skip, and find the next one.

    All the expansion shares ``budget`` (one per call unless given): a schedule that needs
    more work raises :class:`~ordinaut.scheduling.expansion.TooCostly`.
    """
    policy = MisfirePolicy(policy)
    budget = budget or Budget()
    if grace < timedelta(0) or cap < 0:
        raise ValueError(f"grace and cap must not be negative (grace={grace}, cap={cap})")
    if next_run_at > now:
        return CatchUp(fire=(), skip=(), skipped_more=0, next_run_at=next_run_at)
    horizon = now - grace
    head: list[datetime] = []  # the first missed occurrences, bounded
    missed = 0
    last: datetime | None = None
    on_time: list[datetime] = []
    for occ in _due(schedule, next_run_at, now, budget):
        if occ >= horizon:
            on_time.append(occ)
            continue
        missed, last = missed + 1, occ
        if len(head) < 2 * cap + 1:
            head.append(occ)
        if missed >= COUNT_LIMIT:
            last = _last_before(schedule, occ, horizon, budget)
            on_time = list(_due(schedule, None, now, budget, after=max(horizon - _TICK, last)))
            break
    if policy is MisfirePolicy.SKIP:
        fired, listed, skipped = [], head[:cap], missed
    elif policy is MisfirePolicy.RUN_ONCE:
        fired = [last] if last is not None else []
        listed, skipped = [occ for occ in head if occ != last][:cap], max(missed - 1, 0)
    else:
        fired, listed, skipped = head[:cap], head[cap : 2 * cap], max(missed - cap, 0)
    return CatchUp(
        fire=tuple(fired + on_time),
        skip=tuple(listed),
        skipped_more=skipped - len(listed),
        next_run_at=schedule.next_after(now, budget),
    )


def _due(
    schedule: Schedule,
    first: datetime | None,
    now: datetime,
    budget: Budget,
    *,
    after: datetime | None = None,
) -> Iterator[datetime]:
    if first is not None:
        yield first
        after = first
    assert after is not None
    for occ in schedule.iter_after(after, budget):
        if occ.utc > now:
            return
        yield occ.utc


def _last_before(schedule: Schedule, known: datetime, limit: datetime, budget: Budget) -> datetime:
    """The latest occurrence before ``limit``, given ``known`` (one before it), by bisection."""
    low, high = known, limit - _TICK  # the answer lies in [low, high]
    while high > low:
        middle = low + (high - low) // 2
        found = schedule.next_after(middle, budget)
        if found is not None and found < limit:
            low = found
        else:
            high = middle
    return low
