"""Beat's pure decision for one due task: misfire policy, jitter, completion (``now`` injected)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ordinaut.scheduling.jitter import jitter_delay
from ordinaut.scheduling.planning import TaskPlan, Work, fire_time, plan_due_task
from ordinaut.scheduling.recurrence import Schedule, parse_schedule
from ordinaut.vocabulary import MisfirePolicy, Trigger

CREATED = datetime(2026, 3, 1, tzinfo=UTC)
EVERY_10 = parse_schedule("cron", "*/10 * * * *", "UTC", created_at=CREATED)
TASK = uuid.UUID("7d4c1a9e-0000-4000-8000-000000000001")
GRACE = timedelta(seconds=60)


def t(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{clock}Z")


def sched(*clock: str) -> tuple[Work, ...]:
    return tuple(Work(t(c), t(c), Trigger.SCHEDULE) for c in clock)


def catch_up(now: str, *clock: str) -> tuple[Work, ...]:
    return tuple(Work(t(c), t(now), Trigger.CATCH_UP) for c in clock)


def plan(
    occurrence: str,
    now: str,
    policy: str = "run_once",
    *,
    schedule: Schedule = EVERY_10,
    jitter: int = 0,
    cap: int = 100,
) -> TaskPlan:
    return plan_due_task(
        TASK,
        schedule,
        t(occurrence),
        t(now),
        policy=MisfirePolicy(policy),
        jitter_seconds=jitter,
        grace=GRACE,
        cap=cap,
    )


@pytest.mark.parametrize(
    ("occurrence", "now", "policy", "cap", "work", "skipped", "more", "next_at"),
    [
        # on time: fires as scheduled under every policy
        ("10:00", "10:00:00", "run_once", 100, sched("10:00"), (), 0, "10:10"),
        ("10:00", "10:00:59", "skip", 100, sched("10:00"), (), 0, "10:10"),
        ("10:00", "10:01:00", "run_all", 100, sched("10:00"), (), 0, "10:10"),
        # one microsecond past grace: missed
        ("10:00", "10:01:00.000001", "run_once", 100,
         catch_up("10:01:00.000001", "10:00"), (), 0, "10:10"),
        ("10:00", "10:01:00.000001", "skip", 100, (), (t("10:00"),), 0, "10:10"),
        # beat down 08:00..10:05: 13 occurrences missed
        ("08:00", "10:05", "run_once", 100,
         catch_up("10:05", "10:00"),
         tuple(t(f"{h:02}:{m:02}") for h in (8, 9) for m in range(0, 60, 10)), 0, "10:10"),
        ("08:00", "10:05", "skip", 3, (), (t("08:00"), t("08:10"), t("08:20")), 10, "10:10"),
        ("08:00", "10:05", "run_all", 4,
         catch_up("10:05", "08:00", "08:10", "08:20", "08:30"),
         (t("08:40"), t("08:50"), t("09:00"), t("09:10")), 5, "10:10"),
        # missed ones and an on-time one together: the on-time one keeps its own trigger
        ("09:40", "10:00:30", "run_once", 100,
         catch_up("10:00:30", "09:50") + sched("10:00"), (t("09:40"),), 0, "10:10"),
        ("09:40", "10:00:30", "run_all", 100,
         catch_up("10:00:30", "09:40", "09:50") + sched("10:00"), (), 0, "10:10"),
        # a snoozed instant off the schedule fires itself, then the schedule resumes
        ("09:57", "09:57:01", "run_once", 100, sched("09:57"), (), 0, "10:00"),
    ],
)  # fmt: skip
def test_misfire_policies(
    occurrence: str,
    now: str,
    policy: str,
    cap: int,
    work: tuple[Work, ...],
    skipped: tuple[datetime, ...],
    more: int,
    next_at: str,
) -> None:
    got = plan(occurrence, now, policy, cap=cap)
    assert got == TaskPlan(work, skipped, more, t(next_at), t(next_at))
    assert not got.completed


def test_jitter_delays_each_occurrence_stably_within_bounds() -> None:
    got = plan("10:00", "10:00:40", jitter=300)
    delay = jitter_delay(str(TASK), t("10:00"), 300)
    assert got.work == (Work(t("10:00"), t("10:00") + delay, Trigger.SCHEDULE),)
    assert got.next_occurrence_at == t("10:10")
    assert got.next_run_at == t("10:10") + jitter_delay(str(TASK), t("10:10"), 300)
    assert got == plan("10:00", "10:00:40", jitter=300)  # same inputs, same plan
    other = plan_due_task(
        uuid.uuid4(),
        EVERY_10,
        t("10:00"),
        t("10:00:40"),
        policy=MisfirePolicy.RUN_ONCE,
        jitter_seconds=300,
        grace=GRACE,
        cap=100,
    )
    assert other.work[0].run_at == t("10:00")  # the occurrence is the task's, the delay its own


@pytest.mark.parametrize("jitter", [1, 59, 3600])
def test_fire_time_is_within_jitter(jitter: int) -> None:
    delays = set()
    for minute in range(0, 600, 10):
        occurrence = t("00:00") + timedelta(minutes=minute)
        fired = fire_time(TASK, occurrence, jitter)
        assert fired is not None
        assert occurrence <= fired <= occurrence + timedelta(seconds=jitter)
        assert fired == fire_time(TASK, occurrence, jitter)
        delays.add(fired - occurrence)
    assert len(delays) > 1  # spread, not one fixed offset


def test_fire_time_of_no_occurrence_is_none() -> None:
    assert fire_time(TASK, None, 30) is None
    assert fire_time(TASK, t("10:00"), 0) == t("10:00")


def test_jitter_never_turns_an_on_time_occurrence_into_a_missed_one() -> None:
    delay = jitter_delay(str(TASK), t("10:00"), 240)
    fired = t("10:00") + delay
    assert delay > timedelta(seconds=1)  # so grace alone would call it missed
    # claimed a whole grace after its jittered fire time: still on time, still jittered
    got = plan("10:00", (fired + GRACE).strftime("%H:%M:%S.%f"), "skip", jitter=240)
    assert got.work == (Work(t("10:00"), fired, Trigger.SCHEDULE),)
    assert got.skipped == ()
    # later than occurrence + jitter + grace: missed, so skip records it
    late = t("10:00") + timedelta(seconds=240) + GRACE + timedelta(microseconds=1)
    got = plan("10:00", late.strftime("%H:%M:%S.%f"), "skip", jitter=240)
    assert got.work == ()
    assert got.skipped == (t("10:00"),)


def test_once_completes_after_firing() -> None:
    once = parse_schedule("once", "2026-03-02T10:00:00Z", "UTC", created_at=CREATED)
    got = plan("10:00", "10:00:01", schedule=once)
    assert got == TaskPlan(sched("10:00"), (), 0, None, None)
    assert got.completed
    # missed by a long way, skip policy: recorded skipped, and still completed
    got = plan("10:00", "12:00", "skip", schedule=once)
    assert got == TaskPlan((), (t("10:00"),), 0, None, None)
    assert got.completed


def test_rrule_count_completes_on_its_last_occurrence() -> None:
    rule = parse_schedule(
        "rrule", "DTSTART:20260302T100000Z\nRRULE:FREQ=MINUTELY;COUNT=3", "UTC", created_at=CREATED
    )
    assert plan("10:00", "10:00:00", schedule=rule).next_occurrence_at == t("10:01")
    assert not plan("10:01", "10:01:00", schedule=rule).completed
    last = plan("10:02", "10:02:00", schedule=rule, jitter=30)
    assert last.work == (
        Work(t("10:02"), t("10:02") + jitter_delay(str(TASK), t("10:02"), 30), Trigger.SCHEDULE),
    )
    assert (last.next_occurrence_at, last.next_run_at, last.completed) == (None, None, True)


def test_beat_down_past_the_end_of_a_rule_catches_up_then_completes() -> None:
    rule = parse_schedule(
        "rrule", "DTSTART:20260302T100000Z\nRRULE:FREQ=MINUTELY;COUNT=5", "UTC", created_at=CREATED
    )
    got = plan("10:00", "11:00", "run_once", schedule=rule)
    assert got.work == catch_up("11:00", "10:04")
    assert got.skipped == (t("10:00"), t("10:01"), t("10:02"), t("10:03"))
    assert got.completed


def test_an_occurrence_not_yet_due_is_left_alone() -> None:
    """A row whose next_run_at came before its occurrence (inconsistent) heals itself."""
    got = plan("10:10", "10:05", jitter=20)
    assert got.work == () and got.skipped == ()
    assert got.next_occurrence_at == t("10:10")
    assert got.next_run_at == fire_time(TASK, t("10:10"), 20)
