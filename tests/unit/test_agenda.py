"""The agenda's pure merge: order, window, jitter, snooze, DST notes, paging (``now`` injected)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordinaut.scheduling.agenda import AgendaTask, agenda, check_window, earliest
from ordinaut.scheduling.planning import fire_time, plan_due_task, schedule_of
from ordinaut.vocabulary import MisfirePolicy

CREATED = datetime(2026, 3, 1, tzinfo=UTC)
A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
B = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def task(
    task_id: uuid.UUID,
    expr: str,
    after: datetime,
    *,
    kind: str = "cron",
    tz: str = "UTC",
    jitter: int = 0,
    snoozed_to: datetime | None = None,
) -> AgendaTask:
    """A task as the service stored it at ``after`` (its first occurrence after it)."""
    schedule = schedule_of(kind, expr, tz, CREATED)
    occurrence = schedule.next_after(after)
    assert occurrence is not None
    run_at = fire_time(task_id, occurrence, jitter)
    assert run_at is not None
    if snoozed_to is not None:
        occurrence = run_at = snoozed_to
    return AgendaTask(
        task_id, str(task_id)[-1], schedule, occurrence, run_at, jitter, MisfirePolicy.RUN_ONCE
    )


def test_fires_of_several_tasks_come_in_order_with_titles() -> None:
    now = t("2026-03-02T00:00:00Z")
    tasks = [task(A, "0 */6 * * *", now), task(B, "0 9 * * *", now)]
    items, more = agenda(tasks, now, now + timedelta(days=1), now, limit=100)
    assert [(i.at, i.title) for i in items] == [
        (t("2026-03-02T06:00:00Z"), "a"),
        (t("2026-03-02T09:00:00Z"), "b"),
        (t("2026-03-02T12:00:00Z"), "a"),
        (t("2026-03-02T18:00:00Z"), "a"),
    ]
    assert not more


def test_jittered_fires_are_the_ones_beat_plans() -> None:
    now = t("2026-03-02T00:00:00Z")
    jittered = task(A, "*/10 * * * *", now, jitter=900)  # more jitter than the interval
    items, _ = agenda([jittered], now, now + timedelta(hours=2), now, limit=100)
    assert [i.at for i in items] == sorted(i.at for i in items)
    # the same fire times as beat gives each occurrence when it comes due
    occurrence = jittered.next_occurrence_at
    beat: list[datetime] = []
    while occurrence is not None and occurrence < now + timedelta(hours=2):
        plan = plan_due_task(
            A,
            jittered.schedule,
            occurrence,
            occurrence,
            policy=MisfirePolicy.RUN_ONCE,
            jitter_seconds=900,
            grace=timedelta(seconds=60),
            cap=10,
        )
        beat.extend(w.not_before for w in plan.work)
        occurrence = plan.next_occurrence_at
    assert sorted(i.at for i in items) == sorted(b for b in beat if b < now + timedelta(hours=2))


def test_a_snoozed_first_fire_is_marked_and_the_schedule_continues_after_it() -> None:
    now = t("2026-03-02T00:00:00Z")
    snoozed = task(A, "0 * * * *", now, snoozed_to=t("2026-03-02T02:30:00Z"))
    items, _ = agenda([snoozed], now, now + timedelta(hours=5), now, limit=100)
    assert [(i.at.hour, i.at.minute, i.notes) for i in items] == [
        (2, 30, ("snoozed",)),
        (3, 0, ()),
        (4, 0, ()),
    ]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # beat was down from 00:00 to 03:05: what its next tick does, then the schedule
        ("run_once", [("03:05", "03:00", "overdue"), ("04:00", "04:00", None)]),
        ("skip", [("04:00", "04:00", None)]),
        (
            "run_all",
            [
                ("03:05", "01:00", "overdue"),
                ("03:05", "02:00", "overdue"),
                ("03:05", "03:00", "overdue"),
                ("04:00", "04:00", None),
            ],
        ),
    ],
)
def test_a_task_beat_missed_shows_what_its_misfire_policy_does(
    policy: str, expected: list[tuple[str, str, str | None]]
) -> None:
    then = t("2026-03-02T00:00:00Z")
    late = replace(task(A, "0 * * * *", then), misfire_policy=MisfirePolicy(policy))
    now = t("2026-03-02T03:05:00Z")
    items, _ = agenda([late], then, then + timedelta(hours=4, minutes=30), now, limit=10)
    got = [
        (i.at.strftime("%H:%M"), i.occurrence.strftime("%H:%M"), i.notes[0] if i.notes else None)
        for i in items
    ]
    assert [(at, occ) for at, occ, _ in got] == [(at, occ) for at, occ, _ in expected]
    for (_, _, note), (_, _, wanted) in zip(got, expected, strict=True):
        if wanted is None:
            assert note is None
        else:
            assert note is not None and wanted in note and policy in note


def test_a_task_due_this_instant_fires_at_its_time_not_as_overdue() -> None:
    then = t("2026-03-02T00:00:00Z")
    due = task(A, "0 * * * *", then, jitter=30)
    now = due.next_run_at + timedelta(seconds=2)  # beat has not ticked yet
    items, _ = agenda([due], then, then + timedelta(hours=2, minutes=30), now, limit=10)
    assert [(i.at, i.occurrence, i.notes) for i in items] == [
        (due.next_run_at, t("2026-03-02T01:00:00Z"), ()),
        (fire_time(A, t("2026-03-02T02:00:00Z"), 30), t("2026-03-02T02:00:00Z"), ()),
    ]


def test_dst_notes_come_from_the_schedule() -> None:
    before = t("2026-03-28T12:00:00Z")
    daily = task(A, "30 2 * * *", before, tz="Europe/Chisinau")
    items, _ = agenda([daily], before, before + timedelta(days=2), before, limit=10)
    assert len(items) == 2
    assert "does not exist" in items[0].notes[0]  # 02:30 on the 29th is in the gap
    assert items[0].at == t("2026-03-29T03:30:00+03:00")
    assert items[1].notes == ()


def test_pages_continue_after_the_cursor_without_gaps_or_repeats() -> None:
    now = t("2026-03-02T00:00:00Z")
    tasks = [task(A, "*/7 * * * *", now, jitter=30), task(B, "*/5 * * * *", now)]
    whole, _ = agenda(tasks, now, now + timedelta(hours=3), now, limit=10_000)
    seen: list[datetime] = []
    after = None
    while True:
        page, more = agenda(tasks, now, now + timedelta(hours=3), now, limit=7, after=after)
        seen.extend(i.at for i in page)
        if not more:
            break
        after = page[-1].key
    assert seen == [i.at for i in whole]
    assert len(whole) == len(set((i.at, i.task_id) for i in whole))


def test_the_window_is_half_open_and_from_may_be_later_than_the_next_fire() -> None:
    now = t("2026-03-02T00:00:00Z")
    hourly = task(A, "0 * * * *", now)
    items, _ = agenda([hourly], t("2026-03-05T10:00:00Z"), t("2026-03-05T12:00:00Z"), now, limit=9)
    assert [i.at for i in items] == [t("2026-03-05T10:00:00Z"), t("2026-03-05T11:00:00Z")]


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        ("2026-03-02T00:00:00Z", "2026-03-02T00:00:00Z", "to must be after from"),
        ("2026-03-02T00:00:00Z", "2026-04-03T00:00:00Z", "longer than 31 days"),
    ],
)
def test_windows_are_checked(start: str, end: str, why: str) -> None:
    assert why in (check_window(t(start), t(end)) or "")
    assert check_window(t(start), t(start) + timedelta(days=31)) is None


def brute_force(tasks: list[AgendaTask], start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """Every fire in the window, the slow obvious way."""
    fires: list[tuple[datetime, uuid.UUID, datetime]] = []
    for one in tasks:
        first = one.next_occurrence_at or one.next_run_at
        fires.append((one.next_run_at, one.id, first))
        for occ in one.schedule.iter_after(first):
            if occ.utc >= end:
                break
            at = fire_time(one.id, occ.utc, one.jitter_seconds)
            assert at is not None
            fires.append((at, one.id, occ.utc))
    return sorted(f for f in fires if start <= f[0] < end)


@pytest.mark.parametrize("seed", range(8))
def test_the_lazy_merge_gives_what_brute_force_gives(seed: int) -> None:
    rng = random.Random(seed)
    now = t("2026-03-27T00:00:00Z")
    exprs = ["*/7 * * * *", "0 * * * *", "30 2 * * *", "15 9 * * 1-5", "*/2 * * * *"]
    zones = ["UTC", "Europe/Chisinau", "America/New_York"]
    tasks = []
    for _ in range(rng.randint(1, 30)):
        snooze = now + timedelta(minutes=rng.randint(1, 300)) if rng.random() < 0.2 else None
        tasks.append(
            task(
                uuid.UUID(int=rng.getrandbits(128)),
                rng.choice(exprs),
                now + timedelta(minutes=rng.randint(0, 120)),  # not due: see above
                tz=rng.choice(zones),
                jitter=rng.choice([0, 0, 30, 600]),
                snoozed_to=snooze,
            )
        )
    start = now + timedelta(minutes=rng.randint(-60, 60))
    end = start + timedelta(hours=rng.randint(1, 72))
    expected = brute_force(tasks, start, end)
    got: list[tuple[Any, ...]] = []
    after = None
    while True:
        page, more = agenda(tasks, start, end, now, limit=rng.randint(1, 200), after=after)
        got.extend(i.key for i in page)
        if not more:
            break
        after = page[-1].key
    assert got == expected


def test_tasks_in_earliest_order_are_read_only_as_far_as_the_page_reaches() -> None:
    now = t("2026-03-02T00:00:00Z")
    # 600 hourly tasks, ten at each minute of the hour, with jitter under a minute: a page
    # of 10 reads the ten tasks at 00:01, the ten at 00:02 (one of them is the 11th fire,
    # which says more follow; any of them could be it) and one at 00:03, which cannot enter
    tasks = sorted(
        (task(uuid.UUID(int=i + 1), f"{i % 60} * * * *", now, jitter=20) for i in range(600)),
        key=lambda one: (earliest(one), one.id),
    )
    pulled = 0

    def read() -> Iterator[AgendaTask]:
        nonlocal pulled
        for one in tasks:
            pulled += 1
            yield one

    end = now + timedelta(days=1)
    items, more = agenda(read(), now, end, now, limit=10, ordered=True)
    assert more and pulled == 21, pulled
    assert [i.key for i in items] == brute_force(tasks, now, end)[:10]
    whole, _ = agenda(list(reversed(tasks)), now, end, now, limit=10)  # any order, unordered
    assert [i.key for i in whole] == [i.key for i in items]
    with pytest.raises(ValueError, match="earliest"):
        agenda(reversed(tasks), now, end, now, limit=10, ordered=True)
