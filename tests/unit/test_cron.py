"""Cron: grammar, the Vixie day rule, names, steps, seconds, nicknames, DST, rejections."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ordinaut.errors import ValidationError
from ordinaut.scheduling.cron import parse_cron
from ordinaut.scheduling.recurrence import parse_schedule

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def local_times(expr: str, tz: str, after: str, count: int) -> list[str]:
    """The next ``count`` occurrences as local ISO strings (the offset pins the instant)."""
    schedule = parse_schedule("cron", expr, tz, created_at=CREATED)
    found = schedule.occurrences(datetime.fromisoformat(after), count)
    for occ in found:
        assert occ.utc.tzinfo is UTC
        # not ``occ.local == occ.utc``: PEP 495 makes inter-zone == False inside a fold
        assert occ.local.astimezone(UTC) == occ.utc
        assert str(occ.local.tzinfo) == tz
    return [occ.local.isoformat() for occ in found]


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        # the OR rule: both day fields restricted -> every 13th and every Friday
        ("0 9 13 * FRI", "UTC", "2026-02-01T00:00Z", [
            "2026-02-06T09:00:00+00:00", "2026-02-13T09:00:00+00:00", "2026-02-20T09:00:00+00:00",
            "2026-02-27T09:00:00+00:00", "2026-03-06T09:00:00+00:00", "2026-03-13T09:00:00+00:00",
        ]),
        ("0 9 13 * *", "UTC", "2026-02-01T00:00Z", [
            "2026-02-13T09:00:00+00:00", "2026-03-13T09:00:00+00:00",
        ]),
        # day-of-month "*/2" starts with "*": not restricted, so both must match (Vixie)
        ("0 9 */2 * MON", "UTC", "2026-02-01T00:00Z", [
            "2026-02-09T09:00:00+00:00", "2026-02-23T09:00:00+00:00", "2026-03-09T09:00:00+00:00",
        ]),
        # 0, 7, SUN and sun are all Sunday
        ("0 10 * * 0", "UTC", "2026-02-01T00:00Z", [
            "2026-02-01T10:00:00+00:00", "2026-02-08T10:00:00+00:00",
        ]),
        ("0 10 * * 7", "UTC", "2026-02-01T00:00Z", [
            "2026-02-01T10:00:00+00:00", "2026-02-08T10:00:00+00:00",
        ]),
        ("0 10 * * sun", "UTC", "2026-02-01T00:00Z", [
            "2026-02-01T10:00:00+00:00", "2026-02-08T10:00:00+00:00",
        ]),
        ("0 10 * * 5-7", "UTC", "2026-02-02T00:00Z", [
            "2026-02-06T10:00:00+00:00", "2026-02-07T10:00:00+00:00", "2026-02-08T10:00:00+00:00",
            "2026-02-13T10:00:00+00:00",
        ]),
        # names, case-insensitive, in lists and ranges
        ("0 8 1 jan,JUL *", "UTC", "2026-02-01T00:00Z", [
            "2026-07-01T08:00:00+00:00", "2027-01-01T08:00:00+00:00", "2027-07-01T08:00:00+00:00",
        ]),
        ("30 8 * * Mon-Fri", "UTC", "2026-02-06T09:00Z", [
            "2026-02-09T08:30:00+00:00", "2026-02-10T08:30:00+00:00",
        ]),
        ("0 12 1 Feb-Apr/2 *", "UTC", "2026-01-01T00:00Z", [
            "2026-02-01T12:00:00+00:00", "2026-04-01T12:00:00+00:00", "2027-02-01T12:00:00+00:00",
        ]),
        # steps
        ("*/15 * * * *", "UTC", "2026-02-01T10:07:03Z", [
            "2026-02-01T10:15:00+00:00", "2026-02-01T10:30:00+00:00", "2026-02-01T10:45:00+00:00",
            "2026-02-01T11:00:00+00:00",
        ]),
        ("1-30/10 9 * * *", "UTC", "2026-02-01T00:00Z", [
            "2026-02-01T09:01:00+00:00", "2026-02-01T09:11:00+00:00", "2026-02-01T09:21:00+00:00",
            "2026-02-02T09:01:00+00:00",
        ]),
        ("5/20 9 * * *", "UTC", "2026-02-01T00:00Z", [
            "2026-02-01T09:05:00+00:00", "2026-02-01T09:25:00+00:00", "2026-02-01T09:45:00+00:00",
        ]),
        ("0 */6 * * *", "UTC", "2026-02-01T05:00Z", [
            "2026-02-01T06:00:00+00:00", "2026-02-01T12:00:00+00:00",
        ]),
        # strictly after: an occurrence equal to "after" is not returned
        ("0 9 * * *", "UTC", "2026-02-01T09:00Z", ["2026-02-02T09:00:00+00:00"]),
        ("0 9 * * *", "UTC", "2026-02-01T08:59:59.999999Z", ["2026-02-01T09:00:00+00:00"]),
        # six fields: a leading seconds field
        ("*/20 * * * * *", "UTC", "2026-02-01T10:00:05Z", [
            "2026-02-01T10:00:20+00:00", "2026-02-01T10:00:40+00:00", "2026-02-01T10:01:00+00:00",
        ]),
        ("30 0 12 * * *", "UTC", "2026-02-01T00:00Z", ["2026-02-01T12:00:30+00:00"]),
        # nicknames
        ("@hourly", "UTC", "2026-02-01T10:07Z", ["2026-02-01T11:00:00+00:00"]),
        ("@daily", "Europe/Chisinau", "2026-02-01T10:07Z", ["2026-02-02T00:00:00+02:00"]),
        ("@midnight", "UTC", "2026-02-01T10:07Z", ["2026-02-02T00:00:00+00:00"]),
        ("@weekly", "UTC", "2026-02-02T00:00Z", ["2026-02-08T00:00:00+00:00"]),
        ("@monthly", "UTC", "2026-02-02T00:00Z", ["2026-03-01T00:00:00+00:00"]),
        ("@yearly", "UTC", "2026-02-02T00:00Z", ["2027-01-01T00:00:00+00:00"]),
        ("@ANNUALLY", "UTC", "2026-02-02T00:00Z", ["2027-01-01T00:00:00+00:00"]),
        # leap day: every 4 years, and 2100 is not a leap year
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00Z", [
            "2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00",
        ]),
        ("0 0 29 2 *", "UTC", "2097-01-01T00:00Z", [
            "2104-02-29T00:00:00+00:00", "2108-02-29T00:00:00+00:00",
        ]),
        ("0 0 31 * *", "UTC", "2026-04-01T00:00Z", [
            "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00", "2026-08-31T00:00:00+00:00",
        ]),
        # zones without DST
        ("0 9 * * *", "Etc/GMT+2", "2026-07-01T00:00Z", [
            "2026-07-01T09:00:00-02:00", "2026-07-02T09:00:00-02:00",
        ]),
        ("0 9 * * *", "America/Argentina/Buenos_Aires", "2026-07-01T00:00Z", [
            "2026-07-01T09:00:00-03:00", "2026-07-02T09:00:00-03:00",
        ]),
    ],
)  # fmt: skip
def test_next_occurrences(expr: str, tz: str, after: str, expected: list[str]) -> None:
    assert local_times(expr, tz, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        # Chisinau spring forward 2026-03-29 02:00->03:00 (00:00 UTC): 02:30 fires at 03:30
        ("30 2 * * *", "Europe/Chisinau", "2026-03-28T00:00Z", [
            "2026-03-28T02:30:00+02:00", "2026-03-29T03:30:00+03:00", "2026-03-30T02:30:00+03:00",
        ]),
        # hourly: the shifted 02:00 and the real 03:00 are one instant, fired once
        ("0 * * * *", "Europe/Chisinau", "2026-03-28T22:30Z", [
            "2026-03-29T01:00:00+02:00", "2026-03-29T03:00:00+03:00", "2026-03-29T04:00:00+03:00",
        ]),
        # Chisinau fall back 2026-10-25 03:00->02:00: 02:30 fires once, at the first (EEST)
        ("30 2 * * *", "Europe/Chisinau", "2026-10-23T22:00Z", [
            "2026-10-24T02:30:00+03:00", "2026-10-25T02:30:00+03:00", "2026-10-26T02:30:00+02:00",
        ]),
        ("*/30 * * * *", "Europe/Chisinau", "2026-10-24T22:45Z", [
            "2026-10-25T02:00:00+03:00", "2026-10-25T02:30:00+03:00", "2026-10-25T03:00:00+02:00",
        ]),
        # Bucharest changes an hour later in UTC: 03:00->04:00 and 04:00->03:00
        ("30 3 * * *", "Europe/Bucharest", "2026-03-28T00:00Z", [
            "2026-03-28T03:30:00+02:00", "2026-03-29T04:30:00+03:00", "2026-03-30T03:30:00+03:00",
        ]),
        ("0 * * * *", "Europe/Bucharest", "2026-03-28T23:30Z", [
            "2026-03-29T02:00:00+02:00", "2026-03-29T04:00:00+03:00", "2026-03-29T05:00:00+03:00",
        ]),
        ("30 3 * * *", "Europe/Bucharest", "2026-10-24T00:00Z", [
            "2026-10-24T03:30:00+03:00", "2026-10-25T03:30:00+03:00", "2026-10-26T03:30:00+02:00",
        ]),
        # the Chisinau-sensitive time is ordinary in Bucharest, and the reverse
        ("30 2 * * *", "Europe/Bucharest", "2026-03-29T00:00Z", [
            "2026-03-29T02:30:00+02:00", "2026-03-30T02:30:00+03:00",
        ]),
        ("30 3 * * *", "Europe/Chisinau", "2026-10-24T12:00Z", [
            "2026-10-25T03:30:00+02:00", "2026-10-26T03:30:00+02:00",
        ]),
    ],
)  # fmt: skip
def test_dst(expr: str, tz: str, after: str, expected: list[str]) -> None:
    assert local_times(expr, tz, after, len(expected)) == expected


def test_or_rule_over_a_whole_year() -> None:
    """``0 9 13 * FRI`` in 2026 is exactly the 13ths plus the Fridays, each once."""
    expected = [
        day
        for month in range(1, 13)
        for day in (date(2026, month, d) for d in range(1, calendar.monthrange(2026, month)[1] + 1))
        if day.day == 13 or day.weekday() == calendar.FRIDAY
    ]
    found = local_times("0 9 13 * FRI", "UTC", "2025-12-31T23:00Z", len(expected) + 1)
    assert found[:-1] == [f"{day.isoformat()}T09:00:00+00:00" for day in expected]
    assert found[-1] == "2027-01-01T09:00:00+00:00"  # a Friday


@pytest.mark.parametrize(
    ("expr", "fragments"),
    [
        ("", ["needs 5 fields", "got 0"]),
        ("* * * *", ["got 4"]),
        ("* * * * * * *", ["got 7"]),
        ("60 * * * *", ["minute field '60'", "value 60 is out of range 0-59"]),
        ("* 24 * * *", ["hour field", "out of range 0-23"]),
        ("* * 0 * *", ["day-of-month field", "out of range 1-31"]),
        ("* * 32 * *", ["day-of-month field", "out of range 1-31"]),
        ("* * * 13 *", ["month field", "out of range 1-12 or JAN-DEC"]),
        ("* * * * 8", ["day-of-week field", "out of range 0-7 or SUN-SAT"]),
        ("* * * FOO *", ["month field", "'FOO' is not allowed (allowed: 1-12 or JAN-DEC)"]),
        ("* * * * FRY", ["day-of-week field", "'FRY' is not allowed"]),
        ("*/0 * * * *", ["step 0 is out of range 1-60"]),
        ("*/x * * * *", ["step 'x' is not a number"]),
        # issue 12: say what is wrong; ASCII digits only; 7/N cannot step (it would be empty)
        ("*/10000 * * * *", ["minute field '*/10000'", "step 10000 is out of range 1-60"]),
        ("* * * * */9", ["day-of-week field", "step 9 is out of range 1-8"]),
        ("00005 * * * *", ["value '00005' has more than 2 digits (allowed: 0-59)"]),
        ("\u0665 \u0669 * * *", ["'\u0665' is not a number: use ASCII digits 0-9"]),  # Arabic-Indic
        ("0 \u00b2 * * *", ["hour field", "use ASCII digits 0-9"]),  # superscript two
        ("*/\u0665 * * * *", ["step '\u0665' is not a number (use ASCII digits 0-9)"]),
        ("0 9 * * 7/2", ["day-of-week field '7/2'", "a step cannot start at 7", "0/2"]),
        ("0 9 * * 7/1", ["a step cannot start at 7"]),
        ("5-1 * * * *", ["range '5-1' runs backwards"]),
        ("1,,2 * * * *", ["an empty value is not allowed"]),
        ("-1 * * * *", ["minute field"]),
        ("0 0 L * *", ["day-of-month field", "'L' is not allowed"]),
        ("0 0 ? * *", ["'?' is not allowed"]),
        ("0 0 * * 5#3", ["'5#3' is not allowed"]),
        ("60 * * * * *", ["second field", "out of range 0-59"]),
        ("0 0 30 2 *", ["never fires", "day-of-month '30' does not exist in month '2'"]),
        ("0 0 31 4,6,9,11 *", ["never fires"]),
        ("0 0 30,31 FEB *", ["never fires"]),
        ("0 0 30 2 */7,1", ["never fires"]),  # weekday field starts with "*": not restricted
        ("@reboot", ["@reboot names no time"]),
        ("@fortnightly", ["unknown cron nickname '@fortnightly'", "@hourly"]),
    ],
)
def test_rejections(expr: str, fragments: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("cron", expr or "x x", "UTC", created_at=CREATED) if expr else parse_cron("")
    assert caught.value.field == "schedule_expr"
    for fragment in fragments:
        assert fragment in caught.value.message


@pytest.mark.parametrize(
    "expr",
    ["0 0 31 2 MON", "0 0 30 2 1-5"],  # OR rule: weekdays in February still match
)
def test_impossible_day_of_month_is_fine_with_a_restricted_weekday(expr: str) -> None:
    assert parse_cron(expr).either_day


def test_parsed_fields() -> None:
    parsed = parse_cron("  0,30  9-17/4 * jan-mar 1-5 ")
    assert parsed.text == "0,30 9-17/4 * jan-mar 1-5"
    assert parsed.seconds == (0,)
    assert parsed.minutes == (0, 30)
    assert parsed.hours == (9, 13, 17)
    assert parsed.months == frozenset({1, 2, 3})
    assert parsed.weekdays == frozenset({1, 2, 3, 4, 5})
    assert not parsed.either_day


@pytest.mark.parametrize(
    ("tz", "after"),
    [
        ("Europe/Chisinau", "2026-03-28T12:00Z"),
        ("Europe/Chisinau", "2026-10-24T12:00Z"),
        ("Europe/Bucharest", "2026-03-28T12:00Z"),
        ("Europe/Bucharest", "2026-10-24T12:00Z"),
        ("America/New_York", "2026-03-07T12:00Z"),
        ("America/Santiago", "2026-09-05T12:00Z"),  # gap at midnight
        ("Australia/Lord_Howe", "2026-10-03T00:00Z"),  # 30-minute DST
        ("Pacific/Apia", "2011-12-28T00:00Z"),  # 2011-12-30 skipped entirely (24 h gap)
    ],
)
@pytest.mark.parametrize("expr", ["*/30 * * * *", "0 * * * *", "15,45 0-4 * * *", "0 0 * * *"])
def test_same_as_brute_force_fold_0(tz: str, after: str, expr: str) -> None:
    """Each wall time resolved with zoneinfo fold=0, de-duplicated and sorted by instant."""
    zone = ZoneInfo(tz)
    start = datetime.fromisoformat(after)
    walls = parse_cron(expr).walls_from(
        start.astimezone(zone).replace(tzinfo=None) - timedelta(days=2)
    )
    instants: set[datetime] = set()
    for wall in walls:
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if wall > start.astimezone(zone).replace(tzinfo=None) + timedelta(days=5):
            break
        if instant > start:
            instants.add(instant)
    expected = sorted(instants)[:60]
    schedule = parse_schedule("cron", expr, tz, created_at=CREATED)
    assert [occ.utc for occ in schedule.occurrences(start, len(expected))] == expected
