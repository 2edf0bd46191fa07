"""RRULE: anchors, the RFC 5545 examples, DST, RDATE/EXDATE/UNTIL/COUNT, rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dateutil.rrule import rrulestr

from ordinaut.errors import ValidationError
from ordinaut.scheduling.recurrence import parse_schedule

CREATED = datetime(2026, 1, 7, 10, 11, 37, 123456, tzinfo=UTC)  # a Wednesday, odd seconds
WEEKDAYS_0830 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local_times(
    expr: str, tz: str, after: str, count: int, created: datetime = CREATED
) -> list[str]:
    schedule = parse_schedule("rrule", expr, tz, created_at=created)
    found = schedule.occurrences(at(after), count)
    for occ in found:
        assert occ.utc.tzinfo is UTC
        assert occ.local.astimezone(UTC) == occ.utc
    return [occ.local.isoformat() for occ in found]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-09T07:00:00Z", "2026-01-12T08:30:00+02:00"),  # Friday 09:00 -> Monday
        ("2026-01-09T06:30:00Z", "2026-01-12T08:30:00+02:00"),  # Friday 08:30: strictly after
        ("2026-01-09T06:29:59Z", "2026-01-09T08:30:00+02:00"),
        ("2026-01-10T12:00:00Z", "2026-01-12T08:30:00+02:00"),  # Saturday
        ("2026-07-10T06:00:00Z", "2026-07-13T08:30:00+03:00"),  # Friday in summer time
    ],
)
def test_weekday_0830_never_inherits_seconds(after: str, expected: str) -> None:
    schedule = parse_schedule("rrule", WEEKDAYS_0830, "Europe/Chisinau", created_at=CREATED)
    nxt = schedule.next_after(at(after))
    assert nxt is not None
    assert nxt == at(expected)
    assert (nxt.second, nxt.microsecond) == (0, 0)


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        ("FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=9;BYMINUTE=0", "Europe/Chisinau", "2026-01-07T12:00Z", [
            "2026-01-31T09:00:00+02:00", "2026-03-31T09:00:00+03:00", "2026-05-31T09:00:00+03:00",
            "2026-07-31T09:00:00+03:00", "2026-08-31T09:00:00+03:00", "2026-10-31T09:00:00+02:00",
        ]),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=9;BYMINUTE=0", "Europe/Chisinau",
         "2026-01-07T12:00Z", [
            "2028-02-29T09:00:00+02:00", "2032-02-29T09:00:00+02:00", "2036-02-29T09:00:00+02:00",
        ]),
        ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0", "Europe/Chisinau", "2026-01-07T12:00Z", [
            "2026-01-30T17:00:00+02:00", "2026-02-27T17:00:00+02:00", "2026-03-27T17:00:00+02:00",
            "2026-04-24T17:00:00+03:00", "2026-05-29T17:00:00+03:00",
        ]),
        ("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1;BYHOUR=17;BYMINUTE=0", "Europe/Chisinau",
         "2026-01-07T12:00Z", [
            "2026-01-30T17:00:00+02:00", "2026-02-27T17:00:00+02:00", "2026-03-27T17:00:00+02:00",
            "2026-04-24T17:00:00+03:00", "2026-05-29T17:00:00+03:00",
        ]),
        # no DTSTART: anchored at creation (12:11:37 local), truncated to the minute
        ("FREQ=DAILY", "Europe/Chisinau", "2026-01-07T10:11:37.123456Z", [
            "2026-01-08T12:11:00+02:00", "2026-01-09T12:11:00+02:00",
        ]),
        ("RRULE:FREQ=HOURLY", "Europe/Chisinau", "2026-01-07T10:11:37.123456Z", [
            "2026-01-07T13:11:00+02:00", "2026-01-07T14:11:00+02:00",
        ]),
        ("freq=minutely;interval=15", "Europe/Chisinau", "2026-01-07T10:11:37.123456Z", [
            "2026-01-07T12:26:00+02:00", "2026-01-07T12:41:00+02:00",
        ]),
        # DTSTART forms: floating = task zone; Z = the rule runs in UTC; TZID = in that zone
        ("DTSTART:20260105T083000\nRRULE:FREQ=DAILY;COUNT=3", "Europe/Chisinau",
         "2026-01-01T00:00Z", [
            "2026-01-05T08:30:00+02:00", "2026-01-06T08:30:00+02:00", "2026-01-07T08:30:00+02:00",
        ]),
        ("DTSTART:20260327T090000Z\nRRULE:FREQ=DAILY", "Europe/Chisinau", "2026-03-27T00:00Z", [
            "2026-03-27T11:00:00+02:00", "2026-03-28T11:00:00+02:00", "2026-03-29T12:00:00+03:00",
        ]),
        ("DTSTART;TZID=America/New_York:20260306T090000\r\nRRULE:FREQ=DAILY", "Europe/Chisinau",
         "2026-03-06T00:00Z", [
            "2026-03-06T16:00:00+02:00", "2026-03-07T16:00:00+02:00", "2026-03-08T15:00:00+02:00",
        ]),
        # RDATE adds, EXDATE removes, COUNT counts the rule's own instances
        ("DTSTART:20260105T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4\nRDATE:20260107T120000\n"
         "EXDATE:20260112T090000", "UTC", "2026-01-01T00:00Z", [
            "2026-01-05T09:00:00+00:00", "2026-01-07T12:00:00+00:00", "2026-01-19T09:00:00+00:00",
            "2026-01-26T09:00:00+00:00",
        ]),
        ("DTSTART:20260105T090000\nRRULE:FREQ=WEEKLY;COUNT=2\n"
         "RDATE;TZID=America/New_York:20260110T100000,20260111T100000\nRDATE:20260120T080000Z\n"
         "EXDATE:20260112T070000Z", "Europe/Chisinau", "2026-01-01T00:00Z", [
            "2026-01-05T09:00:00+02:00", "2026-01-10T17:00:00+02:00", "2026-01-11T17:00:00+02:00",
            "2026-01-20T10:00:00+02:00",
        ]),
        # UNTIL: instant (Z), local wall time, or a whole day
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20260107T070000Z", "Europe/Chisinau",
         "2026-01-01T00:00Z", [
            "2026-01-05T09:00:00+02:00", "2026-01-06T09:00:00+02:00", "2026-01-07T09:00:00+02:00",
        ]),
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20260107T085959", "Europe/Chisinau",
         "2026-01-01T00:00Z", ["2026-01-05T09:00:00+02:00", "2026-01-06T09:00:00+02:00"]),
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20260107", "Europe/Chisinau",
         "2026-01-01T00:00Z", [
            "2026-01-05T09:00:00+02:00", "2026-01-06T09:00:00+02:00", "2026-01-07T09:00:00+02:00",
        ]),
        # zones without DST
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "Etc/GMT+2", "2026-07-01T00:00Z", [
            "2026-07-01T09:00:00-02:00", "2026-07-02T09:00:00-02:00",
        ]),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "America/Argentina/Buenos_Aires", "2026-07-01T00:00Z", [
            "2026-07-01T09:00:00-03:00", "2026-07-02T09:00:00-03:00",
        ]),
    ],
)  # fmt: skip
def test_occurrences(expr: str, tz: str, after: str, expected: list[str]) -> None:
    finite = "COUNT" in expr or "UNTIL" in expr  # then ``expected`` is the whole rest
    assert local_times(expr, tz, after, len(expected) + 5 * finite) == expected


@pytest.mark.parametrize(
    ("dtstart", "rule", "expected"),
    [  # RFC 5545 §3.8.5.3 examples, all at 09:00 America/New_York
        ("19970805", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
         ["1997-08-05", "1997-08-10", "1997-08-19", "1997-08-24"]),
        ("19970805", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
         ["1997-08-05", "1997-08-17", "1997-08-19", "1997-08-31"]),
        ("19970902", "FREQ=DAILY;INTERVAL=10;COUNT=5",
         ["1997-09-02", "1997-09-12", "1997-09-22", "1997-10-02", "1997-10-12"]),
        ("19970930", "FREQ=MONTHLY;COUNT=6;BYMONTHDAY=1,-1",
         ["1997-09-30", "1997-10-01", "1997-10-31", "1997-11-01", "1997-11-30", "1997-12-01"]),
        ("19970902", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;UNTIL=20001231T000000Z",
         ["1998-02-13", "1998-03-13", "1998-11-13", "1999-08-13", "2000-10-13"]),
        ("19970519", "FREQ=YEARLY;BYDAY=20MO;COUNT=3", ["1997-05-19", "1998-05-18", "1999-05-17"]),
        ("19970512", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;COUNT=3",
         ["1997-05-12", "1998-05-11", "1999-05-17"]),
        ("19961105", "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8;COUNT=3",
         ["1996-11-05", "2000-11-07", "2004-11-02"]),
        ("19970904", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
         ["1997-09-04", "1997-10-07", "1997-11-06"]),
        ("19970929", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2;COUNT=7",
         ["1997-09-29", "1997-10-30", "1997-11-27", "1997-12-30", "1998-01-29", "1998-02-26",
          "1998-03-30"]),
    ],
)  # fmt: skip
def test_rfc5545_examples(dtstart: str, rule: str, expected: list[str]) -> None:
    expr = f"DTSTART;TZID=America/New_York:{dtstart}T090000\nRRULE:{rule}"
    schedule = parse_schedule("rrule", expr, "America/New_York", created_at=CREATED)
    found = schedule.occurrences(at("1996-01-01T00:00Z"), 20)
    assert [occ.local.strftime("%Y-%m-%d %H:%M") for occ in found] == [
        f"{day} 09:00" for day in expected
    ]


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Chisinau", "2026-03-27T23:00Z", [
            "2026-03-28T02:30:00+02:00", "2026-03-29T03:30:00+03:00", "2026-03-30T02:30:00+03:00",
        ]),
        ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Chisinau", "2026-10-23T22:00Z", [
            "2026-10-24T02:30:00+03:00", "2026-10-25T02:30:00+03:00", "2026-10-26T02:30:00+02:00",
        ]),
        ("FREQ=HOURLY;BYMINUTE=0", "Europe/Chisinau", "2026-03-28T22:30Z", [
            "2026-03-29T01:00:00+02:00", "2026-03-29T03:00:00+03:00", "2026-03-29T04:00:00+03:00",
        ]),
        ("FREQ=MINUTELY;INTERVAL=30", "Europe/Chisinau", "2026-10-24T22:45Z", [
            "2026-10-25T02:00:00+03:00", "2026-10-25T02:30:00+03:00", "2026-10-25T03:00:00+02:00",
        ]),
        ("FREQ=DAILY;BYHOUR=3;BYMINUTE=30", "Europe/Bucharest", "2026-03-27T23:00Z", [
            "2026-03-28T03:30:00+02:00", "2026-03-29T04:30:00+03:00", "2026-03-30T03:30:00+03:00",
        ]),
        ("FREQ=DAILY;BYHOUR=3;BYMINUTE=30", "Europe/Bucharest", "2026-10-23T22:00Z", [
            "2026-10-24T03:30:00+03:00", "2026-10-25T03:30:00+03:00", "2026-10-26T03:30:00+02:00",
        ]),
        ("FREQ=HOURLY;BYMINUTE=0", "Europe/Bucharest", "2026-03-28T23:30Z", [
            "2026-03-29T02:00:00+02:00", "2026-03-29T04:00:00+03:00", "2026-03-29T05:00:00+03:00",
        ]),
        ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Bucharest", "2026-03-28T12:00Z", [
            "2026-03-29T02:30:00+02:00", "2026-03-30T02:30:00+03:00",
        ]),
    ],
)  # fmt: skip
def test_dst(expr: str, tz: str, after: str, expected: list[str]) -> None:
    created = datetime(2026, 3, 1, tzinfo=UTC)
    assert local_times(expr, tz, after, len(expected), created) == expected


@pytest.mark.parametrize(
    ("expr", "after"),
    [
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=3", "2026-01-07T07:00Z"),
        ("DTSTART:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20260107T070000Z", "2026-01-07T07:00Z"),
        ("DTSTART:20200105T090000\nRRULE:FREQ=MINUTELY;UNTIL=20200107T070000Z", "2026-01-01T00Z"),
        ("DTSTART:20200105T090000\nRRULE:FREQ=MINUTELY;COUNT=10000", "2026-01-01T00:00Z"),
    ],
)
def test_exhausted(expr: str, after: str) -> None:
    schedule = parse_schedule("rrule", expr, "Europe/Chisinau", created_at=CREATED)
    assert schedule.next_after(at(after)) is None
    assert schedule.occurrences(at(after), 3) == []


@pytest.mark.parametrize(
    ("rule", "dtstart"),
    [
        ("FREQ=MINUTELY", "20251201T000000"),
        ("FREQ=MINUTELY;INTERVAL=7", "20251201T001300"),
        ("FREQ=HOURLY;INTERVAL=5;BYHOUR=1,2,3", "20200101T170000"),
        ("FREQ=DAILY;INTERVAL=3;BYHOUR=9,18;BYSETPOS=-1", "20200101T000000"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;BYSETPOS=1;WKST=SU", "20200108T093000"),
        ("FREQ=WEEKLY;BYDAY=TU,TH;BYHOUR=8,20;BYMINUTE=15", "20190103T000000"),
        ("FREQ=MONTHLY", "20190131T080000"),
        ("FREQ=MONTHLY;INTERVAL=5;BYDAY=-1FR", "20190131T080000"),
        ("FREQ=YEARLY", "20160229T070000"),
        ("FREQ=YEARLY;INTERVAL=3;BYMONTH=3;BYDAY=2SU", "20010101T020000"),
        ("FREQ=MINUTELY;INTERVAL=11;COUNT=9000", "20260101T000000"),
        ("FREQ=DAILY;COUNT=3000;BYHOUR=6", "20200101T000000"),
        ("FREQ=MINUTELY;UNTIL=20260115T000000", "20260101T000000"),
    ],
)
def test_restarting_near_the_asked_instant_changes_nothing(rule: str, dtstart: str) -> None:
    """next_after restarts long rules near ``after``; plain dateutil from DTSTART agrees."""
    expr = f"DTSTART:{dtstart}\nRRULE:{rule}"
    schedule = parse_schedule("rrule", expr, "UTC", created_at=CREATED)
    reference = rrulestr(rule, dtstart=datetime.strptime(dtstart, "%Y%m%dT%H%M%S"))
    start = datetime.strptime(dtstart, "%Y%m%dT%H%M%S")
    horizon = timedelta(days=40 if "MINUTELY" in rule else 40 * 365)  # keep the reference quick
    for step in (timedelta(minutes=1), timedelta(hours=7, minutes=3), timedelta(days=9.3)):
        for multiple in (1, 17, 400, 3000):
            asked = start + min(step * multiple, horizon)
            expected = reference.after(asked)
            got = schedule.next_after(asked.replace(tzinfo=UTC))
            assert (got and got.replace(tzinfo=None)) == expected, (asked, expected, got)


def test_minutely_rule_created_a_month_ago() -> None:
    created = datetime(2026, 4, 14, 10, 17, 23, tzinfo=UTC)
    schedule = parse_schedule("rrule", "FREQ=MINUTELY", "Europe/Chisinau", created_at=created)
    now = created + timedelta(days=30, seconds=3)
    assert schedule.next_after(now) == at("2026-05-14T10:18:00Z")


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z", "COUNT and UNTIL must not both be given"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a positive whole number, got '0'"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a positive whole number, got '-1'"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a positive whole number"),
        ("FREQ=DAILY;COUNT=10001", "COUNT=10001 is above the limit of 10000"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY=1MO: a numbered weekday needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=WEEKLY;BYDAY=-1FR", "BYDAY=-1FR: a numbered weekday"),
        ("FREQ=DAILY;BYDAY=2TU", "BYDAY=2TU: a numbered weekday"),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO", "without BYWEEKNO"),
        ("FREQ=MONTHLY;BYDAY=6FR", "BYDAY=6FR: the number must be 1..5"),
        ("FREQ=YEARLY;BYDAY=54MO", "the number must be 1..53"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs another BYxxx part"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "BYSETPOS can never select"),
        ("FREQ=MINUTELY;BYHOUR=9;BYSETPOS=2", "a MINUTELY period holds at most 1"),
        ("BYDAY=MO", "missing FREQ"),
        ("RRULE:INTERVAL=2", "missing FREQ"),
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY is not one of"),
        ("FREQ=DAILY;FOO=1", "unknown rule part 'FOO'"),
        ("FREQ=DAILY;BYEASTER=0", "unknown rule part 'BYEASTER'"),
        ("FREQ=DAILY;FREQ=WEEKLY", "rule part FREQ is given twice"),
        ("FREQ=DAILY;BYHOUR", "is not NAME=VALUE"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR=24: 24 is out of range 0..23"),
        # issue 12: ASCII digits only, everywhere a number is read
        ("FREQ=DAILY;INTERVAL=\u00b2", "INTERVAL must be a positive whole number, got '\u00b2'"),
        ("FREQ=DAILY;COUNT=\u0663", "COUNT must be a positive whole number, got '\u0663'"),
        ("FREQ=DAILY;BYHOUR=\u0665", "is not a whole number in 0..23"),
        ("FREQ=MONTHLY;BYDAY=\u00b9MO", "is not a weekday like MO, 2TU or -1FR"),
        ("FREQ=DAILY;UNTIL=\u0662\u0660\u0662\u0667\u0660\u0661\u0660\u0661", "is not YYYYMMDD"),
        (
            "DTSTART:\u0662\u0660\u0662\u0666\u0660\u0661\u0660\u0665T090000\nRRULE:FREQ=DAILY",
            "is not YYYYMMDDTHHMMSS",
        ),
        ("FREQ=DAILY;BYMINUTE=a", "BYMINUTE=A: 'A' is not a whole number in 0..59"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "0 is out of range 1..31 or -31..-1"),
        ("FREQ=YEARLY;BYMONTH=13", "13 is out of range 1..12"),
        ("FREQ=YEARLY;BYMONTH=-1", "'-1' is not a whole number in 1..12"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX' is not a weekday"),
        ("FREQ=WEEKLY;WKST=XX", "WKST=XX is not a weekday"),
        ("FREQ=DAILY;BYWEEKNO=1", "BYWEEKNO is only allowed with FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYYEARDAY=1", "BYYEARDAY is not allowed with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is not allowed with FREQ=WEEKLY"),
        ("FREQ=DAILY;UNTIL=2026", "UNTIL=2026 is not YYYYMMDD"),
        ("FREQ=DAILY;UNTIL=20261341", "is not a valid date and time"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "no calendar date matches BYMONTH=2;BYMONTHDAY=30"),
        ("FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31", "no calendar date matches"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30,31", "no calendar date matches"),
        ("FREQ=DAILY;UNTIL=20200101T000000Z", "no occurrence (UNTIL is before DTSTART)"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "stays on DTSTART's weekday"),  # created on a Wednesday
        ("FREQ=HOURLY;INTERVAL=336;BYDAY=TU", "INTERVAL=336 stays on DTSTART's weekday"),
        ("FREQ=MINUTELY;INTERVAL=10080;BYDAY=MO,TU", "stays on DTSTART's weekday"),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "rule produces no occurrence"),
        ("FREQ=DAILY\nFREQ=WEEKLY", "expected one RRULE"),
        ("DTSTART:20260105T090000", "missing FREQ: no RRULE"),
        ("FREQ=DAILY\nEXRULE:FREQ=WEEKLY", "EXRULE is deprecated"),
        ("FREQ=DAILY\nX-FOO:bar", "unsupported line 'X-FOO'"),
        ("FREQ=DAILY\nnonsense", "cannot read line 'nonsense'"),
        ("DTSTART:20260105T090000\nDTSTART:20260106T090000\nRRULE:FREQ=DAILY", "more than one"),
        ("DTSTART:2026-01-05\nRRULE:FREQ=DAILY", "DTSTART value '2026-01-05' is not YYYYMMDDT"),
        ("DTSTART;TZID=Mars/Olympus:20260105T090000\nRRULE:FREQ=DAILY", "TZID: unknown time zone"),
        ("DTSTART;TZID=UTC:20260105T090000Z\nRRULE:FREQ=DAILY", "ends in Z but also has TZID"),
        ("DTSTART;FOO=1:20260105T090000\nRRULE:FREQ=DAILY", "unsupported parameter 'FOO=1'"),
        ("FREQ=DAILY\nRDATE;VALUE=PERIOD:20260105T000000Z/PT1H", "VALUE=PERIOD is not supported"),
        ("FREQ=DAILY\nRDATE;VALUE=DATE:20260105T090000", "VALUE=DATE value '20260105T090000'"),
        ("DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=DAILY", "DTSTART must be a DATE-TIME"),
        ("DTSTART:99991231T230000Z\nRRULE:FREQ=MINUTELY", "outside the supported range"),
        ("DTSTART:00010101T000000\nRRULE:FREQ=DAILY", "outside the supported range"),
        ("FREQ=DAILY\nRDATE:99991231T230000Z", "outside the supported range"),
        ("FREQ=DAILY\nEXDATE:20260231T090000", "is not a valid date and time"),
        ("FREQ=DAILY;" + "BYHOUR=1;" * 500, "longer than 4000 characters"),
    ],
)
def test_rejections(expr: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("rrule", expr, "Europe/Chisinau", created_at=CREATED)
    assert caught.value.field == "schedule_expr"
    assert fragment in caught.value.message
    assert caught.value.message.startswith(("rrule: ", "schedule_expr is longer"))


def test_rrule_without_dtstart_needs_an_anchor() -> None:
    from zoneinfo import ZoneInfo

    from ordinaut.scheduling.recurrence import Schedule
    from ordinaut.vocabulary import ScheduleKind

    with pytest.raises(ValueError, match="needs created_at"):
        Schedule(ScheduleKind.RRULE, "FREQ=DAILY", ZoneInfo("UTC"))
    anchored = Schedule(ScheduleKind.RRULE, "DTSTART:20260105T090000\nFREQ=DAILY", ZoneInfo("UTC"))
    assert anchored.next_after(at("2026-01-05T09:00Z")) == at("2026-01-06T09:00Z")
