"""The facade: zones, kinds, once, event/condition, ensure_not_past, preview and its notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest

from ordinaut.errors import ValidationError
from ordinaut.limits import EARLIEST, LATEST
from ordinaut.scheduling.recurrence import (
    DEFAULT_TIMEZONE,
    Schedule,
    ScheduleKind,
    ensure_not_past,
    parse_schedule,
    parse_timezone,
    preview,
)

CREATED = datetime(2026, 1, 7, 10, 11, 37, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "name",
    [
        "UTC",
        "Europe/Chisinau",
        "Europe/Bucharest",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+2",
        "Etc/GMT-14",
        "America/Port-au-Prince",
        "US/Eastern",
    ],
)
def test_parse_timezone_accepts_iana_names(name: str) -> None:
    assert parse_timezone(name).key == name


def test_default_timezone() -> None:
    assert parse_timezone(DEFAULT_TIMEZONE) == ZoneInfo("Europe/Chisinau")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "time zone is empty"),
        ("   ", "time zone is empty"),
        ("Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("europe/chisinau", "names are case-sensitive"),
        ("Europe", "unknown time zone"),
        ("../etc/passwd", "is not an IANA time zone name"),
        ("/etc/localtime", "is not an IANA time zone name"),
        ("Europe/../UTC", "is not an IANA time zone name"),
        ("zone.tab", "is not an IANA time zone name"),
        ("Europe\\Chisinau", "is not an IANA time zone name"),
        ("UTC\x00", "is not an IANA time zone name"),
        ("A" * 65, "is not an IANA time zone name"),
        ("+02:00", "is not an IANA time zone name"),
        # issue 12: canonical IANA names and links only, not every file tzdata ships
        ("right/Europe/Chisinau", "is a tzdata file, not an IANA time zone"),
        ("posix/Europe/Chisinau", "is a tzdata file, not an IANA time zone"),
        ("posixrules", "is a tzdata file"),
        ("Factory", "is a tzdata file"),
        ("localtime", "is a tzdata file"),
    ],
)
def test_parse_timezone_rejects(name: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_timezone(name)
    assert caught.value.field == "timezone"
    assert fragment in caught.value.message
    with pytest.raises(ValidationError) as caught:
        parse_schedule("cron", "0 9 * * *", name, created_at=CREATED)
    assert caught.value.field == "timezone"


def test_parse_timezone_custom_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_timezone("Nowhere/Land", field="tz")
    assert caught.value.field == "tz"


@pytest.mark.parametrize(
    ("kind", "expr", "field", "fragment"),
    [
        ("weekly", "0 9 * * *", "schedule_kind", "unknown schedule kind 'weekly'"),
        ("CRON", "0 9 * * *", "schedule_kind", "allowed: cron, rrule, once, event, condition"),
        ("cron", None, "schedule_expr", "schedule_expr is required for kind cron"),
        ("rrule", "  ", "schedule_expr", "schedule_expr is required for kind rrule"),
        ("once", "", "schedule_expr", "required for kind once"),
        ("event", None, "schedule_expr", "required for kind event"),
        ("condition", "", "schedule_expr", "required for kind condition"),
        ("event", "email received", "schedule_expr", "segment 'email received' must be"),
        ("event", "a" * 201, "schedule_expr", "must be 1..200 characters"),
        ("once", "2027-01-01T0\u0669:00:00Z", "schedule_expr", "is not an ISO 8601 date and time"),
        ("event", "topic/with/slash", "schedule_expr", "A-Z a-z 0-9 _ : -"),
        ("cron", "0 9 * * * " * 500, "schedule_expr", "longer than 4000 characters"),
        ("once", "tomorrow at nine", "schedule_expr", "is not an ISO 8601 date and time"),
        ("once", "2026-12-01", "schedule_expr", "is not an ISO 8601 date and time"),
        ("once", "2026-02-30T09:00:00", "schedule_expr", "is not an ISO 8601"),
        ("once", "2026-12-01T25:00:00Z", "schedule_expr", "is not an ISO 8601"),
    ],
)
def test_parse_schedule_rejects(kind: str, expr: str | None, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule(kind, expr, "Europe/Chisinau", created_at=CREATED)
    assert caught.value.field == field
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("event", "email.received"),
        ("event", "calendar.*"),
        ("event", "calendar:x.#"),
        ("event", "github.pr-opened_v2"),
    ],
)
def test_event_tasks_have_no_times(kind: str, expr: str) -> None:
    schedule = parse_schedule(kind, expr, "UTC", created_at=CREATED)
    assert schedule.kind is ScheduleKind(kind)
    assert schedule.next_after(CREATED) is None
    assert schedule.occurrences(CREATED, 5) == []
    ensure_not_past(schedule, CREATED)  # no-op


@pytest.mark.parametrize(
    ("expr", "tz", "utc", "local", "note"),
    [
        ("2026-12-01T09:00:00+02:00", "Europe/Chisinau", "2026-12-01T07:00Z",
         "2026-12-01T09:00:00+02:00", None),
        ("2026-12-01T07:00:00Z", "Europe/Bucharest", "2026-12-01T07:00Z",
         "2026-12-01T09:00:00+02:00", None),
        ("2026-12-01T09:00:00", "Europe/Chisinau", "2026-12-01T07:00Z",
         "2026-12-01T09:00:00+02:00", None),
        ("2026-07-01 09:00", "Europe/Chisinau", "2026-07-01T06:00Z", "2026-07-01T09:00:00+03:00",
         None),
        ("2026-07-01T09:00:00", "America/Argentina/Buenos_Aires", "2026-07-01T12:00Z",
         "2026-07-01T09:00:00-03:00", None),
        ("2026-07-01T09:00:00", "Etc/GMT+2", "2026-07-01T11:00Z", "2026-07-01T09:00:00-02:00",
         None),
        # in the spring-forward gap: shifted forward by the gap
        ("2026-03-29T02:30:00", "Europe/Chisinau", "2026-03-29T00:30Z",
         "2026-03-29T03:30:00+03:00", "02:30 does not exist on 2026-03-29"),
        ("2026-03-29T03:30:00", "Europe/Bucharest", "2026-03-29T01:30Z",
         "2026-03-29T04:30:00+03:00", "fires at 04:30 EEST"),
        # in the fall-back fold: the first one
        ("2026-10-25T02:30:00", "Europe/Chisinau", "2026-10-24T23:30Z",
         "2026-10-25T02:30:00+03:00", "happens twice"),
        # an explicit offset picks the second one, and needs no note
        ("2026-10-25T02:30:00+02:00", "Europe/Chisinau", "2026-10-25T00:30Z",
         "2026-10-25T02:30:00+02:00", None),
    ],
)  # fmt: skip
def test_once(expr: str, tz: str, utc: str, local: str, note: str | None) -> None:
    schedule = parse_schedule("once", expr, tz, created_at=CREATED)
    occurrences = schedule.occurrences(CREATED, 3)
    assert len(occurrences) == 1
    (only,) = occurrences
    assert only.utc == at(utc)
    assert only.utc.tzinfo is UTC
    assert only.local.isoformat() == local
    assert only.note is None if note is None else note in (only.note or "")
    assert schedule.next_after(at(utc) - timedelta(microseconds=1)) == at(utc)
    assert schedule.next_after(at(utc)) is None


def test_ensure_not_past() -> None:
    schedule = parse_schedule("once", "2026-12-01T09:00:00+02:00", "UTC", created_at=CREATED)
    ensure_not_past(schedule, at("2026-12-01T06:59:59Z"))
    for now in ("2026-12-01T07:00:00Z", "2027-01-01T00:00:00Z"):
        with pytest.raises(ValidationError) as caught:
            ensure_not_past(schedule, at(now))
        assert caught.value.field == "schedule_expr"
        assert "2026-12-01T07:00:00Z is not in the future" in caught.value.message
    cron = parse_schedule("cron", "0 9 * * *", "UTC", created_at=CREATED)
    ensure_not_past(cron, at("2030-01-01T00:00Z"))


def test_naive_datetimes_are_refused() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "UTC", created_at=CREATED)
    with pytest.raises(ValueError, match="aware"):
        schedule.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("cron", "0 9 * * *", "UTC", created_at=datetime(2026, 1, 1))


def test_schedule_values() -> None:
    one = parse_schedule("cron", "0 9 * * *", "Europe/Chisinau", created_at=CREATED)
    two = parse_schedule("cron", "0 9 * * *", "Europe/Chisinau", created_at=CREATED)
    assert one == two
    assert hash(one) == hash(two)
    assert one.kind == "cron"
    assert one.tz == ZoneInfo("Europe/Chisinau")
    direct = Schedule(ScheduleKind.CRON, "0 9 * * *", ZoneInfo("Europe/Chisinau"))
    assert direct == one
    plain = cast(ScheduleKind, "cron")  # a plain string, as read from a row
    assert Schedule(plain, "0 9 * * *", ZoneInfo("Europe/Chisinau")) == one
    assert direct.next_after(CREATED) == one.next_after(CREATED) == at("2026-01-08T07:00Z")
    with pytest.raises(AttributeError):
        field = "expr"  # through setattr: mypy already rejects `one.expr = ...`
        setattr(one, field, "x")


def test_preview_lists_occurrences_and_dst_notes() -> None:
    result = preview("cron", "0 * * * *", "Europe/Chisinau", count=4, after=at("2026-03-28T20:30Z"))
    assert [occ.local.isoformat() for occ in result.occurrences] == [
        "2026-03-28T23:00:00+02:00",
        "2026-03-29T00:00:00+02:00",
        "2026-03-29T01:00:00+02:00",
        "2026-03-29T03:00:00+03:00",
    ]
    assert result.notes == [
        "02:00 does not exist on 2026-03-29 in Europe/Chisinau (DST gap: clocks skip 1h); "
        "fires at 03:00 EEST; the 03:00 occurrence is the same instant, so it fires once"
    ]


def test_preview_notes_are_deduplicated_and_cover_gap_and_fold() -> None:
    result = preview(
        "rrule",
        "FREQ=DAILY;BYHOUR=3;BYMINUTE=30",
        "Europe/Bucharest",
        count=250,
        after=at("2026-03-01T00:00Z"),
    )
    assert result.notes == [
        "03:30 does not exist on 2026-03-29 in Europe/Bucharest (DST gap: clocks skip 1h); "
        "fires at 04:30 EEST",
        "03:30 happens twice on 2026-10-25 in Europe/Bucharest (DST fold: clocks go back 1h); "
        "fires once, at the first 03:30 (EEST), not again at 03:30 EET (RFC 5545 §3.3.5)",
    ]
    assert sum(occ.note is not None for occ in result.occurrences) == 2


def test_preview_rrule_is_anchored_at_after() -> None:
    result = preview("rrule", "FREQ=HOURLY", "UTC", count=2, after=at("2026-01-07T10:11:37.5Z"))
    assert [occ.utc for occ in result.occurrences] == [
        at("2026-01-07T11:11Z"),
        at("2026-01-07T12:11Z"),
    ]
    assert result.notes == []


@pytest.mark.parametrize("count", [0, -1, 1001, True])
def test_preview_count_bounds(count: int) -> None:
    with pytest.raises(ValidationError) as caught:
        preview("cron", "0 9 * * *", "UTC", count=count, after=CREATED)
    assert caught.value.field == "count"
    assert "count must be 1..1000" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "expr"),
    [("cron", "0 9 * * *"), ("rrule", "FREQ=DAILY"), ("rrule", "FREQ=MINUTELY;INTERVAL=7")],
)
@pytest.mark.parametrize(
    "after",
    [
        datetime(9999, 12, 30, tzinfo=UTC),  # issue 12: within two days of year 9999
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),  # and of year 1
        datetime(1, 1, 1, tzinfo=UTC),
        LATEST,
        EARLIEST - timedelta(microseconds=1),
    ],
)
def test_preview_after_outside_the_supported_range_is_refused(
    kind: str, expr: str, after: datetime
) -> None:
    with pytest.raises(ValidationError) as caught:
        preview(kind, expr, "America/New_York", count=3, after=after)
    assert caught.value.field == "after"
    assert "outside the supported range 1970-01-01 to 9000-01-01" in caught.value.message


def test_preview_limits_and_errors() -> None:
    assert len(preview("cron", "* * * * *", "UTC", count=1000, after=CREATED).occurrences) == 1000
    with pytest.raises(ValidationError) as caught:
        preview("cron", "0 9 * * *", "UTC", count=3, after=datetime(2026, 1, 1))
    assert caught.value.field == "after"
    with pytest.raises(ValidationError) as caught:
        preview("cron", "0 9 * *", "UTC", count=3, after=CREATED)
    assert caught.value.field == "schedule_expr"
    assert preview("event", "x.y", "UTC", count=3, after=CREATED).occurrences == []


@pytest.mark.parametrize(
    "expr",
    [
        "9999-12-31T23:59:00Z",
        "9000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00:00",  # issue 12: wall time in America/New_York, past datetime's end
    ],
)
def test_once_outside_the_supported_range_is_refused(expr: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("once", expr, "America/New_York", created_at=CREATED)
    assert caught.value.field == "schedule_expr"
    assert "outside the supported range 1970-01-01 to 9000-01-01" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "expr", "tz"),
    [
        ("cron", "59 23 31 12 *", "America/New_York"),  # 9999-12-31 23:59 there overflows UTC
        ("rrule", "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=31;BYHOUR=23", "Pacific/Pago_Pago"),
        ("rrule", "DTSTART:89991231T230000Z\nRRULE:FREQ=MINUTELY", "UTC"),
    ],
)
def test_occurrences_end_before_the_latest_instant_without_overflow(
    kind: str, expr: str, tz: str
) -> None:
    after = datetime(8990, 1, 1, tzinfo=UTC)
    schedule = parse_schedule(kind, expr, tz, created_at=after)
    found = schedule.occurrences(after, 1000)
    assert all(o.utc < LATEST for o in found)
    assert schedule.next_after(datetime(8999, 12, 31, 23, 59, tzinfo=UTC)) is None


@pytest.mark.parametrize("until", ["99991231T235959Z", "99991231", "99991231T235959"])
def test_an_until_at_the_end_of_the_calendar_means_no_end_not_a_crash(until: str) -> None:
    """UNTIL past the supported range (issue 12): bounded by it, never an OverflowError."""
    schedule = parse_schedule(
        "rrule", f"FREQ=YEARLY;UNTIL={until}", "Pacific/Kiritimati", created_at=CREATED
    )
    assert schedule.next_after(CREATED) is not None
    assert schedule.next_after(datetime(8999, 6, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("expr", "first"),
    [
        ("0 9 * * *", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ],
)
def test_a_condition_checks_on_a_cron_or_rrule_cadence(expr: str, first: datetime) -> None:
    schedule = parse_schedule("condition", expr, "UTC", created_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert schedule.next_after(datetime(2026, 3, 2, tzinfo=UTC)) == first


def test_a_condition_cadence_that_is_neither_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("condition", "price < 100", "UTC", created_at=CREATED)
    assert caught.value.field == "schedule_expr"
