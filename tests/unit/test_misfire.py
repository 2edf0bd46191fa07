"""Misfire policies (grace, run_once, skip, run_all with cap, exhaustion, bounded work), jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest

from ordinaut.scheduling import misfire
from ordinaut.scheduling.jitter import jitter_delay
from ordinaut.scheduling.misfire import CatchUp, plan_catch_up
from ordinaut.scheduling.recurrence import parse_schedule
from ordinaut.vocabulary import MisfirePolicy

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
EVERY_10 = parse_schedule("cron", "*/10 * * * *", "UTC", created_at=CREATED)
MINUTELY = parse_schedule("cron", "* * * * *", "UTC", created_at=CREATED)
GRACE = timedelta(seconds=60)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def times(*clock: str) -> tuple[datetime, ...]:
    return tuple(at(f"2026-03-02T{c}Z") for c in clock)


MISSED_0800_1000 = times(*(f"{h:02d}:{m:02d}" for h in (8, 9) for m in range(0, 60, 10)))


@pytest.mark.parametrize(
    ("policy", "next_run_at", "now", "cap", "expected"),
    [
        # nothing due yet
        ("run_once", "10:10", "10:05:00", 100, CatchUp((), (), 0, times("10:10")[0])),
        # on time (within grace): fires under every policy
        ("run_once", "10:00", "10:00:30", 100, CatchUp(times("10:00"), (), 0, times("10:10")[0])),
        ("skip", "10:00", "10:00:30", 100, CatchUp(times("10:00"), (), 0, times("10:10")[0])),
        ("run_all", "10:00", "10:01:00", 100, CatchUp(times("10:00"), (), 0, times("10:10")[0])),
        # 08:00 .. 10:00 all missed (10:00 is 5 minutes old)
        ("run_once", "08:00", "10:05:00", 100,
         CatchUp(times("10:00"), MISSED_0800_1000, 0, times("10:10")[0])),
        ("skip", "08:00", "10:05:00", 100,
         CatchUp((), (*MISSED_0800_1000, *times("10:00")), 0, times("10:10")[0])),
        ("run_all", "08:00", "10:05:00", 100,
         CatchUp((*MISSED_0800_1000, *times("10:00")), (), 0, times("10:10")[0])),
        ("run_all", "08:00", "10:05:00", 5,
         CatchUp(MISSED_0800_1000[:5], MISSED_0800_1000[5:10], 3, times("10:10")[0])),
        ("skip", "08:00", "10:05:00", 4,
         CatchUp((), MISSED_0800_1000[:4], 9, times("10:10")[0])),
        ("run_once", "08:00", "10:05:00", 3,
         CatchUp(times("10:00"), MISSED_0800_1000[:3], 9, times("10:10")[0])),
        # missed ones plus one on time
        ("run_once", "08:00", "10:00:30", 100,
         CatchUp(times("09:50", "10:00"), MISSED_0800_1000[:-1], 0, times("10:10")[0])),
        ("skip", "09:30", "10:00:30", 100,
         CatchUp(times("10:00"), times("09:30", "09:40", "09:50"), 0, times("10:10")[0])),
        ("run_all", "09:30", "10:00:30", 2,
         CatchUp(times("09:30", "09:40", "10:00"), times("09:50"), 0, times("10:10")[0])),
        # exactly grace old is on time; one microsecond more is missed
        ("skip", "10:00", "10:01:00", 100, CatchUp(times("10:00"), (), 0, times("10:10")[0])),
        ("skip", "10:00", "10:01:00.000001", 100,
         CatchUp((), times("10:00"), 0, times("10:10")[0])),
        # a snoozed next_run_at that is not on the schedule is still the first due one
        ("run_once", "09:57", "10:00:30", 100,
         CatchUp(times("09:57", "10:00"), (), 0, times("10:10")[0])),
        ("skip", "09:57", "10:00:30", 100,
         CatchUp(times("10:00"), times("09:57"), 0, times("10:10")[0])),
        # now exactly on an occurrence: it is due, the next one is the one after
        ("run_once", "10:00", "10:10:00", 100,
         CatchUp(times("10:00", "10:10"), (), 0, times("10:20")[0])),
    ],
)  # fmt: skip
def test_policies(policy: str, next_run_at: str, now: str, cap: int, expected: CatchUp) -> None:
    plan = plan_catch_up(
        EVERY_10,
        times(next_run_at)[0],
        times(now)[0],
        MisfirePolicy(policy),
        grace=GRACE,
        cap=cap,
    )
    assert plan == expected


@pytest.mark.parametrize(
    ("expr", "kind", "next_run_at", "now", "fire", "skip"),
    [
        ("2026-03-02T09:00:00Z", "once", "2026-03-02T09:00Z", "2026-03-02T09:00:30Z",
         ["2026-03-02T09:00Z"], []),
        ("2026-03-02T09:00:00Z", "once", "2026-03-02T09:00Z", "2026-03-05T00:00Z",
         ["2026-03-02T09:00Z"], []),
        ("DTSTART:20260302T080000Z\nRRULE:FREQ=HOURLY;COUNT=3", "rrule", "2026-03-02T08:00Z",
         "2026-03-02T12:00Z", ["2026-03-02T10:00Z"], ["2026-03-02T08:00Z", "2026-03-02T09:00Z"]),
    ],
)  # fmt: skip
def test_exhausted_schedule_has_no_next_run(
    expr: str, kind: str, next_run_at: str, now: str, fire: list[str], skip: list[str]
) -> None:
    schedule = parse_schedule(kind, expr, "UTC", created_at=CREATED)
    plan = plan_catch_up(schedule, at(next_run_at), at(now), MisfirePolicy.RUN_ONCE, grace=GRACE)
    assert plan == CatchUp(tuple(map(at, fire)), tuple(map(at, skip)), 0, None)


MONTH_START = at("2026-01-01T00:00Z")
MONTH_NOW = at("2026-01-31T00:00:30Z")  # 43 201 due: 43 200 missed, the last one on time


@pytest.mark.parametrize(
    ("policy", "fire", "skipped_more", "first_skip"),
    [
        (MisfirePolicy.RUN_ONCE, ["2026-01-30T23:59Z", "2026-01-31T00:00Z"], 43_099, "00:00"),
        (MisfirePolicy.SKIP, ["2026-01-31T00:00Z"], 43_100, "00:00"),
        (MisfirePolicy.RUN_ALL, None, 43_000, "01:40"),
    ],
)
def test_minutely_task_missed_for_30_days_is_bounded(
    policy: MisfirePolicy, fire: list[str] | None, skipped_more: int, first_skip: str
) -> None:
    plan = plan_catch_up(MINUTELY, MONTH_START, MONTH_NOW, policy, grace=GRACE, cap=100)
    if fire is None:  # run_all: the first 100 missed, then the on-time one
        expected = [MONTH_START + timedelta(minutes=i) for i in range(100)]
        assert list(plan.fire) == [*expected, at("2026-01-31T00:00Z")]
    else:
        assert list(plan.fire) == [at(text) for text in fire]
    assert len(plan.skip) == 100
    assert plan.skip[0] == at(f"2026-01-01T{first_skip}Z")
    assert list(plan.skip) == sorted(plan.skip)
    assert plan.skipped_more == skipped_more
    assert plan.next_run_at == at("2026-01-31T00:01Z")
    assert len(plan.fire) + len(plan.skip) + plan.skipped_more == 43_201


def test_counting_stops_at_the_limit_but_run_once_still_fires_the_latest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(misfire, "COUNT_LIMIT", 500)
    plan = plan_catch_up(
        MINUTELY, MONTH_START, MONTH_NOW, MisfirePolicy.RUN_ONCE, grace=GRACE, cap=10
    )
    assert plan.fire == (at("2026-01-30T23:59Z"), at("2026-01-31T00:00Z"))
    assert plan.skip == tuple(MONTH_START + timedelta(minutes=i) for i in range(10))
    assert plan.skipped_more == 500 - 1 - 10  # saturated: counting stopped at the limit
    assert plan.next_run_at == at("2026-01-31T00:01Z")


def test_last_missed_across_a_dst_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(misfire, "COUNT_LIMIT", 2)
    hourly = parse_schedule("cron", "0 * * * *", "Europe/Chisinau", created_at=CREATED)
    plan = plan_catch_up(
        hourly,
        at("2026-03-28T20:00Z"),
        at("2026-03-29T00:30Z"),
        MisfirePolicy.RUN_ONCE,
        grace=GRACE,
    )
    assert plan.fire == (at("2026-03-29T00:00Z"),)  # 03:00 EEST, the shifted 02:00
    assert plan.next_run_at == at("2026-03-29T01:00Z")


def test_policy_strings_and_bad_arguments() -> None:
    plan = plan_catch_up(
        EVERY_10,
        times("10:00")[0],
        times("10:00:30")[0],
        cast(MisfirePolicy, "skip"),  # a plain string, as read from a row
        grace=GRACE,
    )
    assert plan.fire == times("10:00")
    with pytest.raises(ValueError):
        plan_catch_up(EVERY_10, CREATED, CREATED, MisfirePolicy.SKIP, grace=timedelta(-1))
    with pytest.raises(ValueError):
        plan_catch_up(EVERY_10, CREATED, CREATED, cast(MisfirePolicy, "sometimes"), grace=GRACE)


OCCURRENCE = at("2026-03-02T09:00:00Z")


@pytest.mark.parametrize("jitter", [1, 5, 60, 3600])
def test_jitter_is_stable_and_bounded(jitter: int) -> None:
    delays = [jitter_delay(f"task-{i}", OCCURRENCE, jitter) for i in range(300)]
    assert all(timedelta(0) <= d <= timedelta(seconds=jitter) for d in delays)
    assert delays == [jitter_delay(f"task-{i}", OCCURRENCE, jitter) for i in range(300)]
    assert len(set(delays)) > 100  # spread out, not one value


def test_jitter_depends_on_task_and_instant_not_on_zone() -> None:
    same_instant = OCCURRENCE.astimezone(ZoneInfo("Europe/Chisinau"))
    assert jitter_delay("t1", OCCURRENCE, 600) == jitter_delay("t1", same_instant, 600)
    per_occurrence = {jitter_delay("t1", OCCURRENCE + timedelta(hours=h), 600) for h in range(50)}
    assert len(per_occurrence) > 40
    assert jitter_delay("t1", OCCURRENCE, 600) == timedelta(milliseconds=_expected_t1())


def _expected_t1() -> int:
    import hashlib

    digest = hashlib.sha256(b"t1\x002026-03-02T09:00:00+00:00").digest()
    return int.from_bytes(digest[:8], "big") % 600_001


def test_jitter_zero_and_errors() -> None:
    assert jitter_delay("t1", OCCURRENCE, 0) == timedelta(0)
    with pytest.raises(ValueError):
        jitter_delay("t1", OCCURRENCE, -1)
    with pytest.raises(ValueError):
        jitter_delay("t1", datetime(2026, 3, 2, 9), 10)
