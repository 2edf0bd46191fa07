"""Property: cron and simple RRULEs agree with a naive oracle written here, near DST too.

The oracle knows nothing of Ordinaut's parser or expansion: it walks local wall time minute
by minute, keeps the minutes the schedule's fields allow, and turns each into an instant by
the documented rule (RFC 5545 §3.3.5, what zoneinfo does for ``fold=0``): a wall time in a
gap fires shifted forward by the gap, one in a fold at its first pass, and wall times that
land on the same instant fire once. Windows are drawn around real DST transitions of eleven
zones half the time. Bounded to a few seconds (``max_examples``).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ordinaut.errors import ValidationError
from ordinaut.scheduling.recurrence import parse_schedule

ZONES = (
    "Europe/Chisinau", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia",
    "America/Santiago", "Europe/London", "Asia/Tehran", "America/St_Johns",
    "Pacific/Chatham", "Africa/Casablanca", "UTC",
)  # fmt: skip
WINDOW = timedelta(days=3)
MARGIN = timedelta(hours=3)  # more than any offset change: instants compared inside it


def _transition_days(name: str) -> list[date]:
    """Days in 2025-2027 on which the zone's UTC offset changes (noon to noon)."""
    zone, days = ZoneInfo(name), []
    day = date(2025, 1, 1)
    while day.year < 2028:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
        if noon.utcoffset() != (noon + timedelta(days=1)).utcoffset():
            days.append(day + timedelta(days=1))
        day += timedelta(days=1)
    return days


TRANSITIONS = {name: _transition_days(name) for name in ZONES}


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and the local wall time a 3-day window starts at (near a transition or not)."""
    name = draw(st.sampled_from(ZONES))
    near = TRANSITIONS[name]
    close: bool = draw(st.booleans())
    if near and close:
        day = draw(st.sampled_from(near)) - timedelta(days=draw(st.integers(0, 2)))
    else:
        day = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 3 * 365)))
    return name, datetime(day.year, day.month, day.day, draw(st.integers(0, 23)))


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The documented DST rule, as zoneinfo defines fold=0."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def oracle(matches: Callable[[datetime], bool], zone: ZoneInfo, start: datetime) -> list[datetime]:
    found = set()
    wall = start - MARGIN
    while wall < start + WINDOW:
        if matches(wall):
            found.add(instant(wall, zone))
        wall += timedelta(minutes=1)
    return sorted(found)


def compare(
    kind: str, expr: str, name: str, start: datetime, matches: Callable[[datetime], bool]
) -> None:
    zone = ZoneInfo(name)
    after, until = instant(start, zone), instant(start + WINDOW - MARGIN, zone)
    expected = [moment for moment in oracle(matches, zone, start) if after < moment <= until]
    schedule = parse_schedule(kind, expr, name, created_at=after)
    got = []
    for occ in schedule.iter_after(after):
        if occ.utc > until:
            break
        got.append(occ.utc)
    assert got == expected, (expr, name, start)


def _field(values: st.SearchStrategy[frozenset[int]]) -> st.SearchStrategy[frozenset[int] | None]:
    return st.one_of(st.none(), values)  # None: "*"


@settings(max_examples=80, deadline=None)
@given(
    window=windows(),
    minutes=_field(st.frozensets(st.integers(0, 59), min_size=1, max_size=4)),
    hours=_field(st.frozensets(st.integers(0, 23), min_size=1, max_size=4)),
    mdays=_field(st.frozensets(st.integers(1, 31), min_size=1, max_size=8)),
    wdays=_field(st.frozensets(st.integers(0, 6), min_size=1, max_size=3)),
)
def test_cron_agrees_with_a_naive_oracle(
    window: tuple[str, datetime],
    minutes: frozenset[int] | None,
    hours: frozenset[int] | None,
    mdays: frozenset[int] | None,
    wdays: frozenset[int] | None,
) -> None:
    def text(values: frozenset[int] | None) -> str:
        return "*" if values is None else ",".join(map(str, sorted(values)))

    expr = f"{text(minutes)} {text(hours)} {text(mdays)} * {text(wdays)}"

    def matches(wall: datetime) -> bool:
        in_month = mdays is None or wall.day in mdays
        in_week = wdays is None or (wall.weekday() + 1) % 7 in wdays  # cron: 0 = Sunday
        either = mdays is not None and wdays is not None  # Vixie: both restricted -> either
        day_ok = (in_month or in_week) if either else (in_month and in_week)
        return (
            day_ok
            and (minutes is None or wall.minute in minutes)
            and (hours is None or wall.hour in hours)
        )

    name, start = window
    compare("cron", expr, name, start, matches)


@settings(max_examples=80, deadline=None)
@given(
    window=windows(),
    freq=st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY"]),
    interval=st.integers(1, 5),
    lead=st.integers(0, 6 * 24 * 60),  # DTSTART lies this many minutes before the window
    days=st.one_of(st.none(), st.frozensets(st.integers(0, 6), min_size=1, max_size=3)),
    hours=st.one_of(st.none(), st.frozensets(st.integers(0, 23), min_size=1, max_size=3)),
    minutes=st.one_of(st.none(), st.frozensets(st.integers(0, 59), min_size=1, max_size=3)),
    mdays=st.one_of(
        st.none(),
        st.frozensets(st.sampled_from([1, 2, 15, 28, 29, 30, 31, -1, -2]), min_size=1, max_size=3),
    ),
)
def test_simple_rrules_agree_with_a_naive_oracle(
    window: tuple[str, datetime],
    freq: str,
    interval: int,
    lead: int,
    days: frozenset[int] | None,
    hours: frozenset[int] | None,
    minutes: frozenset[int] | None,
    mdays: frozenset[int] | None,
) -> None:
    name, start = window
    dtstart = start - timedelta(minutes=lead)
    if freq == "MINUTELY":
        interval *= 7  # every 7 … 35 minutes: a window holds a few hundred, not thousands
    parts = [f"FREQ={freq}", f"INTERVAL={interval}"]
    names = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    if days is not None:
        parts.append("BYDAY=" + ",".join(names[d] for d in sorted(days)))
    if hours is not None:
        parts.append("BYHOUR=" + ",".join(map(str, sorted(hours))))
    if minutes is not None and freq != "MINUTELY":
        parts.append("BYMINUTE=" + ",".join(map(str, sorted(minutes))))
    else:
        minutes = None
    if freq == "MONTHLY" and mdays is not None:
        parts.append("BYMONTHDAY=" + ",".join(map(str, sorted(mdays))))
    else:
        mdays = None
    if freq == "WEEKLY" and days is not None and dtstart.weekday() not in days:
        days = days | {dtstart.weekday()}  # a whole-week INTERVAL must meet DTSTART's weekday
        parts[2] = "BYDAY=" + ",".join(names[d] for d in sorted(days))
    expr = f"DTSTART;TZID={name}:{dtstart:%Y%m%dT%H%M%S}\nRRULE:" + ";".join(parts)
    week0 = dtstart.date() - timedelta(days=dtstart.weekday())  # WKST=MO
    unit = {"MINUTELY": 60, "HOURLY": 3600}.get(freq)

    def matches(wall: datetime) -> bool:
        if wall < dtstart or wall.second:
            return False
        if days is not None and wall.weekday() not in days:
            return False
        if freq in ("DAILY", "WEEKLY", "MONTHLY"):
            if freq == "MONTHLY":
                months = (wall.year - dtstart.year) * 12 + wall.month - dtstart.month
                length = calendar.monthrange(wall.year, wall.month)[1]
                if mdays is not None:
                    day_ok = wall.day in mdays or wall.day - length - 1 in mdays
                else:
                    day_ok = days is not None or wall.day == dtstart.day
                on_grid = months % interval == 0 and day_ok
            elif freq == "DAILY":
                on_grid = (wall.date() - dtstart.date()).days % interval == 0
            else:
                on_grid = ((wall.date() - week0).days // 7) % interval == 0
                on_grid = on_grid and (days is not None or wall.weekday() == dtstart.weekday())
            hour_ok = wall.hour in hours if hours is not None else wall.hour == dtstart.hour
        else:
            assert unit is not None
            base = dtstart.replace(second=0) if freq == "MINUTELY" else dtstart.replace(minute=0)
            on_grid = int((wall.replace(minute=wall.minute if unit == 60 else 0) - base)
                          .total_seconds()) // unit % interval == 0  # fmt: skip
            hour_ok = hours is None or wall.hour in hours
            if freq == "MINUTELY":
                return on_grid and hour_ok
        minute_ok = wall.minute in minutes if minutes is not None else wall.minute == dtstart.minute
        return on_grid and hour_ok and minute_ok

    try:
        compare("rrule", expr, name, start, matches)
    except ValidationError as exc:  # refused: it can never fire, so the oracle finds nothing
        assert "never" in exc.message or "no occurrence" in exc.message, exc.message
        assert oracle(matches, ZoneInfo(name), start) == [], (expr, exc.message)
