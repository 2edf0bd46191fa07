"""Cron expressions (crontab(5)), matched in local wall time.

Grammar: five whitespace-separated fields ``minute hour day-of-month month day-of-week``,
or six with a leading **seconds** field (``second minute hour day-of-month month
day-of-week``; with five fields the second is 0).

=============  =======  =============================================
field          values   names
=============  =======  =============================================
second         0-59
minute         0-59
hour           0-23
day-of-month   1-31
month          1-12     JAN-DEC
day-of-week    0-7      SUN-SAT (0 and 7 are both Sunday)
=============  =======  =============================================

Each field is a comma list of items: ``*``, a value ``5``, a range ``1-5``, or any of these
with a step: ``*/15``, ``1-30/5``, ``5/10`` (= ``5-59/10``; for day-of-week ``N/step`` and
``*`` stop at 6, so a step cannot start at 7: write ``0/2`` for Sunday-based steps). Names are
case-insensitive and allowed in values and ranges. Numbers are ASCII digits, at most two of
them (``00005`` is refused); a step lies in 1 … the field's span (``*/60`` for minutes).

Day rule (Vixie cron): a field is *restricted* unless its text begins with ``*``. When both
day-of-month and day-of-week are restricted, a day matches if **either** matches
(``0 9 13 * FRI`` fires on every 13th and on every Friday); otherwise both must match.

Nicknames: ``@yearly`` and ``@annually`` (``0 0 1 1 *``), ``@monthly`` (``0 0 1 * *``),
``@weekly`` (``0 0 * * 0``), ``@daily`` and ``@midnight`` (``0 0 * * *``), ``@hourly``
(``0 * * * *``). ``@reboot`` is rejected (it names no time). Anything else is rejected with the
field, the value and the allowed range. An expression that can never fire (``0 0 30 2 *``) is
rejected too, so :meth:`CronExpr.walls_from` never searches in vain.

Matching dates are found month by month and day by day, then the first matching time of day
by bisection, never minute by minute.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, datetime, time, timedelta
from typing import NoReturn

from ordinaut.errors import ValidationError
from ordinaut.scheduling.expansion import Budget

__all__ = ["NICKNAMES", "CronExpr", "parse_cron"]

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # index = month; Feb in leap years
_HORIZON_MONTHS = 400 * 12  # the Gregorian calendar repeats every 400 years
_NUMBER = re.compile(r"[0-9]+")  # ASCII only: Arabic-Indic or superscript digits are not
_FIELD = "schedule_expr"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    step_high: int  # where "*" and "N/step" stop


_SECOND = _Field("second", 0, 59, {}, 59)
_FIVE = (
    _Field("minute", 0, 59, {}, 59),
    _Field("hour", 0, 23, {}, 23),
    _Field("day-of-month", 1, 31, {}, 31),
    _Field("month", 1, 12, _MONTHS, 12),
    _Field("day-of-week", 0, 7, _DAYS, 6),
)


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; value sets are sorted tuples."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    either_day: bool  # both day fields restricted: a day matches if either matches

    def walls_from(self, start: datetime, budget: Budget | None = None) -> Iterator[datetime]:
        """Yield the matching naive wall times ``>= start``, ascending (without end); each
        month, day and time examined is a step of ``budget``."""
        budget = budget or Budget()
        if start.microsecond:
            start = start.replace(microsecond=0) + timedelta(seconds=1)
        year, month, day = start.year, start.month, start.day
        floor: time | None = start.time()
        for _ in range(_HORIZON_MONTHS + 1):
            budget.spend()
            if month in self.months:
                first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
                for mday in range(day, length + 1):
                    budget.spend()
                    if self._day_matches(mday, (first_weekday + mday) % 7):
                        for hour, minute, second in self._times(floor):
                            budget.spend()
                            budget.found()
                            yield datetime(year, month, mday, hour, minute, second)
                    floor = None
            floor, day = None, 1
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
            if year > MAXYEAR:
                return

    def _day_matches(self, mday: int, weekday: int) -> bool:
        in_month = mday in self.days
        in_week = weekday in self.weekdays
        return (in_month or in_week) if self.either_day else (in_month and in_week)

    def _times(self, floor: time | None) -> Iterator[tuple[int, int, int]]:
        h, m, s = (floor.hour, floor.minute, floor.second) if floor else (0, 0, 0)
        for hour in self.hours[bisect_left(self.hours, h) :]:
            minutes = self.minutes[bisect_left(self.minutes, m) :] if hour == h else self.minutes
            for minute in minutes:
                exact = hour == h and minute == m
                seconds = self.seconds[bisect_left(self.seconds, s) :] if exact else self.seconds
                for second in seconds:
                    yield hour, minute, second


def parse_cron(text: str) -> CronExpr:
    """Parse a cron expression or nickname; :class:`ValidationError` says what is wrong."""
    source = " ".join(text.split())
    words = source.split(" ") if source else []
    if len(words) == 1 and words[0].startswith("@"):
        nickname = words[0].lower()
        if nickname == "@reboot":
            raise ValidationError(
                "cron @reboot names no time; use an event schedule instead", field=_FIELD
            )
        if nickname not in NICKNAMES:
            allowed = ", ".join(NICKNAMES)
            raise ValidationError(
                f"unknown cron nickname {words[0]!r} (allowed: {allowed})", field=_FIELD
            )
        words = NICKNAMES[nickname].split(" ")
    if len(words) not in (5, 6):
        raise ValidationError(
            "cron expression needs 5 fields (minute hour day-of-month month day-of-week), "
            f"or 6 with a leading seconds field; got {len(words)}",
            field=_FIELD,
        )
    seconds = _parse_field(words[0], _SECOND) if len(words) == 6 else {0}
    minute, hour, mday, month, weekday = words[-5:]
    days = _parse_field(mday, _FIVE[2])
    months = _parse_field(month, _FIVE[3])
    weekdays = {value % 7 for value in _parse_field(weekday, _FIVE[4])}
    either = not mday.startswith("*") and not weekday.startswith("*")
    if not either and not any(day <= _MAX_DAYS[m] for m in months for day in days):
        raise ValidationError(
            f"cron expression never fires: day-of-month {mday!r} does not exist in month {month!r}",
            field=_FIELD,
        )
    return CronExpr(
        text=source,
        seconds=tuple(sorted(seconds)),
        minutes=tuple(sorted(_parse_field(minute, _FIVE[0]))),
        hours=tuple(sorted(_parse_field(hour, _FIVE[1]))),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        either_day=either,
    )


def _parse_field(text: str, spec: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            step = _step(step_text, spec, text)
        if base == "*":
            low, high = spec.low, spec.step_high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, text), _value(last, spec, text)
            if low > high:
                _fail(spec, text, f"range {base!r} runs backwards")
        else:
            low = _value(base, spec, text)
            high = spec.step_high if slash else low
            if low > high:  # day-of-week 7/2: "N/step" stops at 6
                why = f"a step cannot start at {low}; Sunday-based steps start at 0 (0/2)"
                _fail(spec, text, why)
        values.update(range(low, high + 1, step))
    return values


def _step(token: str, spec: _Field, text: str) -> int:
    span = spec.high - spec.low + 1
    if not _NUMBER.fullmatch(token):
        _fail(spec, text, f"step {token!r} is not a number (use ASCII digits 0-9)")
    if len(token) > 2 or not 1 <= int(token) <= span:
        _fail(spec, text, f"step {token} is out of range 1-{span}")
    return int(token)


def _value(token: str, spec: _Field, text: str) -> int:
    allowed = f"{spec.low}-{spec.high}"
    if spec.names:
        names = list(spec.names)
        allowed += f" or {names[0]}-{names[-1]}"
    if _NUMBER.fullmatch(token):
        if len(token) > 2:
            _fail(spec, text, f"value {token!r} has more than 2 digits (allowed: {allowed})")
        number = int(token)
        if spec.low <= number <= spec.high:
            return number
        _fail(spec, text, f"value {number} is out of range {allowed}")
    if token.upper() in spec.names:
        return spec.names[token.upper()]
    if not token:
        _fail(spec, text, f"an empty value is not allowed (allowed: {allowed})")
    if not token.isascii():
        _fail(spec, text, f"{token!r} is not a number: use ASCII digits 0-9 (allowed: {allowed})")
    _fail(spec, text, f"{token!r} is not allowed (allowed: {allowed})")


def _fail(spec: _Field, text: str, reason: str) -> NoReturn:
    raise ValidationError(f"cron {spec.name} field {text!r}: {reason}", field=_FIELD)
