"""Issue 12 ("Time, second pass"): instants are instants, RFC 5545 BYDAY unions and iCalendar
forms, the bounded expansion, and the documented cron DST choices — each example a row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ordinaut.errors import ValidationError
from ordinaut.scheduling.expansion import STEPS_PER_OCCURRENCE, Budget, TooCostly
from ordinaut.scheduling.planning import plan_due_task
from ordinaut.scheduling.recurrence import parse_schedule, preview
from ordinaut.vocabulary import MisfirePolicy

CREATED = datetime(2026, 1, 7, 10, 11, tzinfo=UTC)
GAP = "DTSTART;TZID=Europe/Chisinau:20260327T023000\nRRULE:FREQ=DAILY"  # 03-29 02:30 is in a gap
FOLD = "DTSTART;TZID=Europe/Chisinau:20261023T023000\nRRULE:FREQ=DAILY"  # 10-25 02:30 twice


def fires(expr: str, after: str, count: int, tz: str = "Europe/Chisinau") -> list[str]:
    schedule = parse_schedule("rrule", expr, tz, created_at=CREATED)
    found = schedule.occurrences(datetime.fromisoformat(after), count)
    return [occ.utc.strftime("%Y-%m-%dT%H:%M:%SZ") for occ in found]


@pytest.mark.parametrize(
    ("expr", "after", "count", "expected"),
    [
        # UNTIL=…Z is an instant: the gap-shifted 03-29 fire (00:30Z) is after it
        (GAP + ";UNTIL=20260329T001500Z", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z"]),
        # ... and the first pass of the fold (10-24 23:45Z) is before it
        ("DTSTART;TZID=Europe/Chisinau:20261023T024500\nRRULE:FREQ=DAILY;UNTIL=20261025T003000Z",
         "2026-10-22T00:00:00Z", 5,
         ["2026-10-22T23:45:00Z", "2026-10-23T23:45:00Z", "2026-10-24T23:45:00Z"]),
        # UNTIL without Z keeps wall-time semantics: the 02:30 wall time is not after 02:30
        (GAP + ";UNTIL=20260329T023000", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z", "2026-03-29T00:30:00Z"]),
        # EXDATE …Z removes the exact instant of the gap-shifted fire
        (GAP + ";COUNT=4\nEXDATE:20260329T003000Z", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z", "2026-03-29T23:30:00Z"]),
        # the second pass of a fold is not a fire time: EXDATE there removes nothing
        (FOLD + ";COUNT=4\nEXDATE:20261025T003000Z", "2026-10-22T00:00:00Z", 5,
         ["2026-10-22T23:30:00Z", "2026-10-23T23:30:00Z", "2026-10-24T23:30:00Z",
          "2026-10-26T00:30:00Z"]),
        # RDATE …Z on the second pass is added as that instant, not moved onto the first pass
        (FOLD + ";COUNT=4\nRDATE:20261025T003000Z", "2026-10-22T00:00:00Z", 6,
         ["2026-10-22T23:30:00Z", "2026-10-23T23:30:00Z", "2026-10-24T23:30:00Z",
          "2026-10-25T00:30:00Z", "2026-10-26T00:30:00Z"]),
        # another zone's TZID is an instant too (00:30Z = 00:30 London in March, before BST)
        (GAP + ";COUNT=4\nEXDATE;TZID=Europe/London:20260329T003000", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z", "2026-03-29T23:30:00Z"]),
        # same-zone EXDATE is a wall time: the nominal 02:30 removes the gap fire ...
        (GAP + ";COUNT=4\nEXDATE;TZID=Europe/Chisinau:20260329T023000", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z", "2026-03-29T23:30:00Z"]),
        # ... the shifted wall time 03:30 does not (documented: match the nominal wall time)
        (GAP + ";COUNT=4\nEXDATE;TZID=Europe/Chisinau:20260329T033000", "2026-03-26T00:00:00Z", 5,
         ["2026-03-27T00:30:00Z", "2026-03-28T00:30:00Z", "2026-03-29T00:30:00Z",
          "2026-03-29T23:30:00Z"]),
        # a floating EXDATE is read in DTSTART's zone (New York), not the task's (Chisinau)
        ("DTSTART;TZID=America/New_York:20260105T090000\nRRULE:FREQ=DAILY;COUNT=3\n"
         "EXDATE:20260106T090000", "2026-01-01T00:00:00Z", 5,
         ["2026-01-05T14:00:00Z", "2026-01-07T14:00:00Z"]),
        # a same-zone RDATE in a fold fires once, at the first pass, like the rule's own
        (FOLD + ";COUNT=1\nRDATE;TZID=Europe/Chisinau:20261025T021500", "2026-10-22T00:00:00Z", 5,
         ["2026-10-22T23:30:00Z", "2026-10-24T23:15:00Z"]),
    ],
)  # fmt: skip
def test_instants_are_instants(expr: str, after: str, count: int, expected: list[str]) -> None:
    assert fires(expr, after, count) == expected


def test_until_z_before_a_fold_dtstart_wall_time_is_not_before_dtstart() -> None:
    """Apia 2013-04-07: DTSTART 03:18 (first pass, 13:18Z) and UNTIL 14:15Z: 42 fire times."""
    expr = "DTSTART;TZID=Pacific/Apia:20130407T031800\nRRULE:FREQ=MINUTELY;UNTIL=20130406T141500Z"
    found = fires(expr, "2013-04-06T00:00:00Z", 100, tz="Pacific/Apia")
    assert len(found) == 42
    assert (found[0], found[-1]) == ("2013-04-06T13:18:00Z", "2013-04-06T13:59:00Z")


MONDAYS = ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02", "2026-02-09"]


@pytest.mark.parametrize(
    ("rule", "days"),
    [
        ("FREQ=MONTHLY;BYDAY=1MO,MO", MONDAYS),  # a union: every Monday, not first Mondays
        ("FREQ=MONTHLY;BYDAY=MO,1MO,MO", MONDAYS),  # duplicates change nothing
        ("FREQ=MONTHLY;BYDAY=1MO,FR",  # first Monday plus every Friday
         ["2026-01-05", "2026-01-09", "2026-01-16", "2026-01-23", "2026-01-30", "2026-02-02"]),
        ("FREQ=MONTHLY;BYDAY=1MO,FR;BYSETPOS=-1",  # BYSETPOS picks from the union
         ["2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24", "2026-05-29", "2026-06-26"]),
        ("FREQ=MONTHLY;BYDAY=-1SU,1MO;BYSETPOS=1",
         ["2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06", "2026-05-04", "2026-06-01"]),
        ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU,1MO",
         ["2026-03-02", "2026-03-29", "2027-03-01", "2027-03-28", "2028-03-06", "2028-03-26"]),
    ],
)  # fmt: skip
def test_byday_lists_are_unions(rule: str, days: list[str]) -> None:
    expr = f"DTSTART:20260105T090000\nRRULE:{rule}"
    found = fires(expr, "2026-01-01T00:00:00Z", len(days), tz="UTC")
    assert [moment[:10] for moment in found] == days
    assert {moment[10:] for moment in found} == {"T09:00:00Z"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # the rule alone never fires, its RDATEs do (RFC 5545: the set is their union)
        ("DTSTART:20260105T090000\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\n"
         "RDATE:20260301T090000,20260401T090000",
         ["2026-03-01T09:00:00Z", "2026-04-01T09:00:00Z"]),
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20250101\nRDATE:20260110T120000Z",
         ["2026-01-10T12:00:00Z"]),
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;BYHOUR=9;BYSETPOS=3\nRDATE:20260106T100000",
         ["2026-01-06T10:00:00Z"]),
        # VALUE=DATE: an RDATE fires at DTSTART's time; an EXDATE removes that whole day
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=3\nRDATE;VALUE=DATE:20260201\n"
         "EXDATE;VALUE=DATE:20260106",
         ["2026-01-05T09:00:00Z", "2026-01-07T09:00:00Z", "2026-02-01T09:00:00Z"]),
        # quoted TZID and folded lines (RFC 5545 §3.1: CRLF + one space or tab)
        ('DTSTART;TZID="America/New_York":20260105T090000\r\nRRULE:FREQ=WEEKLY;BY\r\n DAY=MO,\n'
         "\tTU;COUNT=4",
         ["2026-01-05T14:00:00Z", "2026-01-06T14:00:00Z", "2026-01-12T14:00:00Z",
          "2026-01-13T14:00:00Z"]),
        ('DTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=2\nEXDATE;TZID="UTC":20260105T090000',
         ["2026-01-06T09:00:00Z"]),
        # an indented paste is still one property a line
        ("  DTSTART:20260105T090000\n  RRULE:FREQ=DAILY;COUNT=2",
         ["2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"]),
    ],
)  # fmt: skip
def test_rfc_5545_forms_users_paste(expr: str, expected: list[str]) -> None:
    assert fires(expr, "2026-01-01T00:00:00Z", 10, tz="UTC") == expected


SPARSEST = (
    "DTSTART:20260105T000000\n"
    "RRULE:FREQ=MINUTELY;INTERVAL=1439;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0"
)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("FREQ=MINUTELY;BYSECOND=60", "60 is a leap second, and leap seconds are not supported"),
        ("FREQ=MINUTELY;BYSECOND=0,60", "leap seconds are not supported"),
        # duplicates are normalised, so BYSETPOS sees one instance a day: rejected at once
        ("FREQ=DAILY;BYHOUR=23,23;BYMINUTE=30;BYSETPOS=2", "a DAILY period holds at most 1"),
        # an INTERVAL grid that never meets the BYxxx times: refused at once, not searched
        ("DTSTART:20260105T000000\nRRULE:FREQ=SECONDLY;INTERVAL=2;BYSECOND=1",
         "FREQ=SECONDLY;INTERVAL=2 from DTSTART's 00:00:00 never reaches the BYHOUR/BYMINUTE"),
        ("DTSTART:20260105T000000\nRRULE:FREQ=HOURLY;INTERVAL=2;BYHOUR=1", "never reaches"),
        # too sparse to find within the budget (it would search to year 9998): refused
        (SPARSEST, "more than 100,000 steps of work to find its next occurrence"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\nRDATE;VALUE=DATE:2026", "is not YYYYMMDD"),
    ],
)  # fmt: skip
def test_rejections(expr: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("rrule", expr, "Europe/Chisinau", created_at=CREATED)
    assert caught.value.field == "schedule_expr"
    assert fragment in caught.value.message


SPARSE = (
    "DTSTART:20260105T000000\n"
    "RRULE:FREQ=SECONDLY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0;BYSECOND=3"
)


def test_a_sparse_secondly_rule_costs_days_not_seconds() -> None:
    """It took 30 s a fire time (issue 12); now a few thousand deterministic steps."""
    schedule = parse_schedule("rrule", SPARSE, "UTC", created_at=CREATED)
    budget = Budget()
    found = schedule.occurrences(CREATED, 3, budget)
    assert [occ.utc for occ in found] == [
        datetime(2052, 2, 29, 0, 0, 3, tzinfo=UTC),
        datetime(2080, 2, 29, 0, 0, 3, tzinfo=UTC),
        datetime(2120, 2, 29, 0, 0, 3, tzinfo=UTC),
    ]
    assert budget.spent < 10_000
    again = Budget()
    schedule.occurrences(CREATED, 3, again)
    assert again.spent == budget.spent  # work is counted, not timed: the same every run


def test_the_budget_is_per_occurrence_so_dense_rules_are_not_refused() -> None:
    budget = Budget()
    found = parse_schedule("cron", "* * * * * *", "UTC", created_at=CREATED).occurrences(
        CREATED, 1000, budget
    )
    assert len(found) == 1000 and budget.spent < STEPS_PER_OCCURRENCE


def test_preview_shares_the_bounded_expansion() -> None:
    with pytest.raises(ValidationError) as caught:
        preview("rrule", SPARSEST, "UTC", count=3, after=CREATED)
    assert "expansion budget" in caught.value.message


def test_beat_planning_stops_at_the_budget_of_one_task() -> None:
    schedule = parse_schedule("cron", "* * * * *", "UTC", created_at=CREATED)

    def plan(budget: Budget | None) -> int:
        made = plan_due_task(
            uuid.uuid4(), schedule, CREATED, CREATED + timedelta(hours=3),
            policy=MisfirePolicy.RUN_ALL, jitter_seconds=0, grace=timedelta(minutes=1), cap=10,
            budget=budget,
        )  # fmt: skip
        return len(made.work) + len(made.skipped) + made.skipped_more

    assert plan(None) == 181  # 10:11 … 13:11
    with pytest.raises(TooCostly, match="more than 50 steps of work for one computation"):
        plan(Budget(per_call=50))


def test_hourly_cron_fires_once_in_a_fall_back_hour() -> None:
    """RFC 5545 §3.3.5 (first pass only), unlike Vixie cron's wildcard-hour jobs: a two-hour
    gap in elapsed time on 2026-10-25 in Chisinau (02:00 EEST, then 03:00 EET)."""
    schedule = parse_schedule("cron", "0 * * * *", "Europe/Chisinau", created_at=CREATED)
    found = schedule.occurrences(datetime(2026, 10, 24, 22, 30, tzinfo=UTC), 3)
    assert [occ.utc.strftime("%H:%MZ") for occ in found] == ["23:00Z", "01:00Z", "02:00Z"]
    assert [occ.local.strftime("%H:%M %Z") for occ in found] == [
        "02:00 EEST", "03:00 EET", "04:00 EET",
    ]  # fmt: skip
    assert found[0].note is not None and "fires once, at the first 02:00" in found[0].note


def test_a_day_field_starting_with_a_star_is_not_restricted() -> None:
    """``0 9 */2 * MON``: both fields must match (Vixie cron): odd days that are Mondays."""
    schedule = parse_schedule("cron", "0 9 */2 * MON", "UTC", created_at=CREATED)
    found = schedule.occurrences(datetime(2026, 1, 1, tzinfo=UTC), 4)
    assert [occ.utc.date().isoformat() for occ in found] == [
        "2026-01-05", "2026-01-19", "2026-02-09", "2026-02-23",
    ]  # fmt: skip
