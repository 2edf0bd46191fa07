"""A schedule said in words, and how often it fires at most (pure; ``now`` is an argument).

:func:`in_words` describes the common shapes of cron and RRULE expressions ("every 15
minutes", "every day at 08:30", "on Mon, Tue at 08:30"), falling back to the expression
itself, always with the zone. :func:`shortest_gap` measures the shortest time between two
consecutive occurrences among the next :data:`GAP_SAMPLE` after ``now`` — what an agent's
``min_interval_seconds`` limit is checked against.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from ordinaut.scheduling.recurrence import Schedule
from ordinaut.vocabulary import ScheduleKind

GAP_SAMPLE = 200
_DAYS = {
    "0": "Sun",
    "1": "Mon",
    "2": "Tue",
    "3": "Wed",
    "4": "Thu",
    "5": "Fri",
    "6": "Sat",
    "7": "Sun",
    "SU": "Sun",
    "MO": "Mon",
    "TU": "Tue",
    "WE": "Wed",
    "TH": "Thu",
    "FR": "Fri",
    "SA": "Sat",
}
_UNITS = {
    "SECONDLY": "second",
    "MINUTELY": "minute",
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}


def in_words(kind: str, expr: str | None, tz: str) -> str:
    """The schedule in words, e.g. "every day at 08:30 (Europe/Chisinau)"."""
    text = expr or ""
    if kind == ScheduleKind.ONCE:
        said = f"once, at {text}"
    elif kind == ScheduleKind.CRON:
        said = _cron(text)
    elif kind == ScheduleKind.RRULE:
        said = _rrule(text)
    else:
        said = f"{kind} {text}".strip()
    return f"{said} ({tz})"


def _plural(n: int, unit: str) -> str:
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


def _cron(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5:
        return f"cron {expr!r}"
    minute, hour, dom, month, dow = fields
    if (dom, month) != ("*", "*"):
        return f"cron {expr!r}"
    days = "" if dow == "*" else _day_list(dow.replace(",", " ").split())
    if hour == "*" and minute == "*":
        return "every minute" + (f" on {days}" if days else "")
    if hour == "*" and minute.startswith("*/") and minute[2:].isdigit():
        return _plural(int(minute[2:]), "minute") + (f" on {days}" if days else "")
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d}"
        return f"on {days} at {at}" if days else f"every day at {at}"
    if minute.isdigit() and hour == "*":
        return f"every hour at minute {int(minute)}" + (f" on {days}" if days else "")
    return f"cron {expr!r}"


def _day_list(names: list[str]) -> str:
    return ", ".join(_day(n) for n in names)


def _day(name: str) -> str:
    """A day of the week ("1" → "Mon"), or a range of them ("1-5" → "Mon to Fri")."""
    first, dash, last = name.upper().partition("-")
    if dash and first in _DAYS and last in _DAYS:
        return f"{_DAYS[first]} to {_DAYS[last]}"
    return _DAYS.get(name.upper(), name)


def _rrule(expr: str) -> str:
    parts: dict[str, str] = {}
    for line in expr.replace("\n", ";").split(";"):
        key, _, value = line.removeprefix("RRULE:").partition("=")
        if value:
            parts[key.strip().upper()] = value.strip()
    unit = _UNITS.get(parts.get("FREQ", ""))
    if unit is None:
        return f"rrule {expr!r}"
    interval = parts.get("INTERVAL", "1")
    said = _plural(int(interval) if interval.isdigit() else 1, unit)
    if "BYDAY" in parts:
        said += " on " + _day_list(parts["BYDAY"].split(","))
    hours, minutes = parts.get("BYHOUR"), parts.get("BYMINUTE", "0")
    if hours and hours.isdigit() and minutes.isdigit():
        said += f" at {int(hours):02d}:{int(minutes):02d}"
    elif hours:
        said += f" at hours {hours}, minute {minutes}"
    for extra in ("COUNT", "UNTIL"):
        if extra in parts:
            said += f", {extra.lower()} {parts[extra]}"
    return said


def shortest_gap(schedule: Schedule, now: datetime, sample: int = GAP_SAMPLE) -> timedelta | None:
    """The shortest time between two consecutive occurrences among the next ``sample`` after
    ``now``; None when fewer than two come (a once-schedule, an exhausted rule)."""
    times = [o.utc for o in schedule.occurrences(now, sample)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else None
