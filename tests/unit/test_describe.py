"""Schedules in words: common shapes get a sentence, anything else is shown as written."""

from __future__ import annotations

import pytest

from ordinaut.scheduling.describe import describe

TZ = "Europe/Chisinau"


@pytest.mark.parametrize(
    ("kind", "expr", "words"),
    [
        (
            "rrule",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
            f"weekdays at 08:30 {TZ}",
        ),
        ("rrule", "FREQ=DAILY;BYHOUR=7;BYMINUTE=0", f"every day at 07:00 {TZ}"),
        ("rrule", "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=10;BYMINUTE=0", f"weekends at 10:00 {TZ}"),
        (
            "rrule",
            "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=5",
            f"Mondays, Wednesdays at 09:05 {TZ}",
        ),
        (
            "rrule",
            "DTSTART:20260101T090000\nRRULE:FREQ=HOURLY;INTERVAL=2",
            f"every 2 hours at :00 {TZ}",
        ),
        ("rrule", "FREQ=MINUTELY;INTERVAL=15", f"every 15 minutes {TZ}"),
        ("rrule", "FREQ=HOURLY", f"every hour {TZ}"),
        ("rrule", "FREQ=HOURLY;BYMINUTE=5", f"every hour at :05 {TZ}"),
        ("rrule", "FREQ=WEEKLY;BYHOUR=9;BYMINUTE=0", "rrule: FREQ=WEEKLY;BYHOUR=9;BYMINUTE=0"),
        ("rrule", "FREQ=MONTHLY;BYMONTHDAY=1", "rrule: FREQ=MONTHLY;BYMONTHDAY=1"),
        ("cron", "30 8 * * 1-5", f"weekdays at 08:30 {TZ}"),
        ("cron", "0 9 * * *", f"every day at 09:00 {TZ}"),
        ("cron", "*/5 * * * *", f"every 5 minutes {TZ}"),
        ("cron", "15 * * * 0,6", f"every hour at :15 on weekends {TZ}"),
        ("cron", "0 9 1 * *", "cron: 0 9 1 * *"),
        ("cron", "0 9 * * 5-1", "cron: 0 9 * * 5-1"),
        ("once", "2026-12-01T09:00:00", f"once, at 2026-12-01 09:00:00 {TZ}"),
        ("once", "2026-12-01T09:00:00+02:00", "once, at 2026-12-01 09:00:00+02:00"),
        ("event", "email.received", "when event email.received is published"),
    ],
)
def test_schedules_read_as_words(kind: str, expr: str, words: str) -> None:
    assert describe(kind, expr, TZ) == words
