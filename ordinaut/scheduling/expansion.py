"""The one bounded expansion: RFC 5545 rule periods enumerated under a budget of work.

Every fire time Ordinaut computes — validating a schedule, a preview, beat's look-ahead and
catch-up — comes from a generator that spends a :class:`Budget`. A **step** is one unit of
work: one period, day or time examined, one candidate built. The budget is counted in steps,
not seconds, so the same rule is accepted or refused the same way on every machine:

* at most :data:`STEPS_PER_OCCURRENCE` steps between two occurrences (or before the first);
* at most :data:`STEPS_PER_CALL` steps in one call (beat: one task in one tick).

Spending past either raises :class:`TooCostly` (a :class:`ValidationError` on
``schedule_expr``): at creation the rule is refused; at run time beat pauses the task with a
skipped run saying why, as for a zone that left tzdata.

:class:`Rule` enumerates an RRULE (RFC 5545 §3.3.10) period by period in naive wall time:
each period (year, month, week, day, hour, minute or second, every INTERVAL-th from DTSTART's)
yields the days that pass the BYxxx day filters times the BYHOUR/BYMINUTE/BYSECOND times,
sorted; BYSETPOS picks from that set. A BYDAY list is a union (``1MO,FR``: first Monday and
every Friday). Periods that cannot match are jumped over (a sub-daily rule on a day that fails
the day filters goes on at the next midnight, a day outside BYMONTH at the next month), so a
sparse rule costs days, not seconds.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache

from ordinaut.errors import ValidationError
from ordinaut.limits import LATEST

__all__ = ["STEPS_PER_CALL", "STEPS_PER_OCCURRENCE", "Budget", "Rule", "TooCostly"]

STEPS_PER_OCCURRENCE = 100_000
STEPS_PER_CALL = 500_000
YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY, SECONDLY = range(7)
_UNIT = {HOURLY: timedelta(hours=1), MINUTELY: timedelta(minutes=1), SECONDLY: timedelta(seconds=1)}
_LAST_YEAR = LATEST.year  # periods stop there: nothing past limits.LATEST is scheduled


class TooCostly(ValidationError):
    """The rule needs more work than the budget allows to find its next occurrence."""


class Budget:
    """Steps left: per occurrence (refilled by :meth:`found`) and per call (never refilled)."""

    def __init__(
        self, per_occurrence: int = STEPS_PER_OCCURRENCE, per_call: int = STEPS_PER_CALL
    ) -> None:
        self.per_occurrence = per_occurrence
        self.per_call = per_call
        self.left = per_occurrence
        self.spent = 0

    def spend(self, steps: int = 1) -> None:
        """Count ``steps`` of work; :class:`TooCostly` when a limit is passed."""
        self.left -= steps
        self.spent += steps
        if self.left < 0:
            raise TooCostly(
                f"the schedule needs more than {self.per_occurrence:,} steps of work to find "
                "its next occurrence (expansion budget); make it less sparse",
                field="schedule_expr",
            )
        if self.spent > self.per_call:
            raise TooCostly(
                f"the schedule needs more than {self.per_call:,} steps of work for one "
                "computation (expansion budget); make it less dense or less sparse",
                field="schedule_expr",
            )

    def found(self) -> None:
        """An occurrence was produced: the per-occurrence allowance starts again."""
        self.left = self.per_occurrence


@dataclass(frozen=True)
class Rule:
    """A validated RRULE: DTSTART's defaults already filled in, BYxxx values de-duplicated.

    ``byday`` holds unnumbered weekdays (0 = Monday), ``bynthday`` (n, weekday) pairs;
    ``byhour``/``byminute``/``bysecond`` are ``None`` when the frequency itself walks that unit.
    """

    freq: int
    interval: int
    dtstart: datetime
    wkst: int = 0
    count: int | None = None
    until: datetime | None = None  # the last wall time the rule may produce
    bymonth: frozenset[int] = frozenset()
    bymonthday: frozenset[int] = frozenset()
    byyearday: frozenset[int] = frozenset()
    byweekno: frozenset[int] = frozenset()
    byday: frozenset[int] = frozenset()
    bynthday: frozenset[tuple[int, int]] = frozenset()
    byhour: tuple[int, ...] | None = None
    byminute: tuple[int, ...] | None = None
    bysecond: tuple[int, ...] | None = None
    bysetpos: tuple[int, ...] = ()
    _memo: dict[str, datetime | None] = field(default_factory=dict, compare=False, repr=False)
    _days: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)

    def walls_from(self, start: datetime, budget: Budget) -> Iterator[datetime]:
        """Yield the rule's wall times ``>= start``, ascending, spending ``budget``."""
        end = self.until if self.count is None else self._last(budget)
        if self.count is not None and end is None:
            return
        low = max(start, self.dtstart)
        for wall in self._periods(low, budget):
            if end is not None and wall > end:
                return
            yield wall

    def _last(self, budget: Budget) -> datetime | None:
        """A COUNT rule's last wall time, walked once from DTSTART (within ``budget``)."""
        if "last" not in self._memo:
            last, seen = None, 0
            for wall in self._periods(self.dtstart, budget):
                last, seen = wall, seen + 1
                if seen == self.count:
                    break
            self._memo["last"] = last
        return self._memo["last"]

    # -- periods -------------------------------------------------------------------------

    def _periods(self, low: datetime, budget: Budget) -> Iterator[datetime]:
        """Occurrences ``>= low`` period by period (BYSETPOS applied per period)."""
        k = self._index(low)
        while True:
            budget.spend()
            got = self._period(k, budget)
            if got is None:
                return
            found, k_next = got
            for wall in found:
                if wall >= low:
                    budget.found()
                    yield wall
            k = k_next

    def _index(self, moment: datetime) -> int:
        """The number of the period (counted from DTSTART's) that holds ``moment``."""
        first, step = self.dtstart, self.interval
        if moment <= first:
            return 0
        if self.freq == YEARLY:
            return (moment.year - first.year) // step
        if self.freq == MONTHLY:
            return ((moment.year - first.year) * 12 + moment.month - first.month) // step
        if self.freq == WEEKLY:
            return (moment.date() - self._week0()).days // (7 * step)
        if self.freq == DAILY:
            return (moment.date() - first.date()).days // step
        return (moment - self._base) // self._step

    def _week0(self) -> date:
        day = self.dtstart.date()
        return day - timedelta(days=(day.weekday() - self.wkst) % 7)

    @cached_property
    def _base(self) -> datetime:
        """The start of DTSTART's period (sub-daily frequencies)."""
        first = self.dtstart
        if self.freq == HOURLY:
            return first.replace(minute=0, second=0, microsecond=0)
        if self.freq == MINUTELY:
            return first.replace(second=0, microsecond=0)
        return first.replace(microsecond=0)

    @cached_property
    def _step(self) -> timedelta:
        """The length of INTERVAL periods (sub-daily frequencies)."""
        return _UNIT[self.freq] * self.interval

    def _next_month(self, day: date) -> date:
        """The first day of the next month BYMONTH allows (or simply the next month)."""
        year, month = day.year, day.month
        for _ in range(12):
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
            if not self.bymonth or month in self.bymonth:
                break
        return date(year, month, 1)

    def _period(self, k: int, budget: Budget) -> tuple[list[datetime], int] | None:
        """Period ``k``'s occurrences and the next period worth looking at; ``None`` past
        the end of the calendar."""
        freq, step, first = self.freq, self.interval, self.dtstart
        if freq == YEARLY:
            year = first.year + k * step
            if year > _LAST_YEAR:
                return None
            months = sorted(self.bymonth) or range(1, 13)
            days = [date(year, m, d) for m in months for d in _month_days(year, m)]
            return self._select(days, budget), k + 1
        if freq == MONTHLY:
            index = first.year * 12 + first.month - 1 + k * step
            year, month = divmod(index, 12)
            if year > _LAST_YEAR:
                return None
            if self.bymonth and month + 1 not in self.bymonth:
                return [], k + 1
            days = [date(year, month + 1, d) for d in _month_days(year, month + 1)]
            return self._select(days, budget), k + 1
        if freq == WEEKLY:
            monday = self._week0() + timedelta(days=7 * step * k)
            if monday.year > _LAST_YEAR:
                return None
            days = [monday + timedelta(days=i) for i in range(7)]
            if k == 0:  # the first week starts at DTSTART's day (as dateutil reads it)
                days = [day for day in days if day >= first.date()]
            return self._select(days, budget), k + 1
        if freq == DAILY:
            day = first.date() + timedelta(days=k * step)
            if day.year > _LAST_YEAR:
                return None
            if self.bymonth and day.month not in self.bymonth:  # on to the next month
                return [], max(k + 1, self._index_of_day(self._next_month(day)))
            return self._select([day], budget), k + 1
        return self._sub_daily(k, budget)

    def _sub_daily(self, k: int, budget: Budget) -> tuple[list[datetime], int] | None:
        unit = self._step
        start = self._base + unit * k
        if start.year > _LAST_YEAR:
            return None
        day = start.date()
        if day not in self._days:
            if len(self._days) > 1024:  # a sub-daily rule asks about the same day many times
                self._days.clear()
            self._days[day] = self._day_ok(day)
        if not self._days[day]:
            skip = self.bymonth and day.month not in self.bymonth
            skip_to = self._next_month(day) if skip else None
            after = datetime.combine(skip_to or day + timedelta(days=1), time())
            return [], max(k + 1, -((start - after) // unit) + k)
        if self.byhour is not None and start.hour not in self.byhour:
            after = start.replace(minute=0, second=0) + timedelta(hours=1)
            return [], max(k + 1, -((start - after) // unit) + k)
        if (
            self.freq == SECONDLY
            and self.byminute is not None
            and start.minute not in self.byminute
        ):
            after = start.replace(second=0) + timedelta(minutes=1)
            return [], max(k + 1, -((start - after) // unit) + k)
        if self.freq == HOURLY:
            times = [time(start.hour, m, s) for m in self._minutes() for s in self._seconds()]
        elif self.freq == MINUTELY:
            minute_ok = self.byminute is None or start.minute in self.byminute
            times = (
                [time(start.hour, start.minute, s) for s in self._seconds()] if minute_ok else []
            )
        else:
            second_ok = self.bysecond is None or start.second in self.bysecond
            times = [start.time()] if second_ok else []
        budget.spend(len(times))
        return self._setpos([datetime.combine(day, t) for t in times]), k + 1

    def _index_of_day(self, day: date) -> int:
        return -((self.dtstart.date() - day).days // self.interval)  # ceiling division

    def _minutes(self) -> tuple[int, ...]:
        return self.byminute if self.byminute is not None else (self.dtstart.minute,)

    def _seconds(self) -> tuple[int, ...]:
        return self.bysecond if self.bysecond is not None else (self.dtstart.second,)

    def _select(self, days: list[date], budget: Budget) -> list[datetime]:
        """The period's candidates (days passing the filters x times of day), BYSETPOS'd."""
        budget.spend(len(days))
        kept = [day for day in days if self._day_ok(day)]
        times = self._day_times
        budget.spend(len(kept) * len(times))
        return self._setpos([datetime.combine(day, t) for day in kept for t in times])

    @cached_property
    def _day_times(self) -> list[time]:
        """The times of day a period of a day or longer holds, ascending."""
        hours = self.byhour if self.byhour is not None else (self.dtstart.hour,)
        return [time(h, m, s) for h in hours for m in self._minutes() for s in self._seconds()]

    @cached_property
    def _nth_in_month(self) -> bool:
        """Numbered BYDAY counts within the month (else within the year)."""
        return self.freq == MONTHLY or (self.freq == YEARLY and bool(self.bymonth))

    def _setpos(self, found: list[datetime]) -> list[datetime]:
        if not self.bysetpos or not found:
            return found
        size = len(found)
        picked = {found[p - 1 if p > 0 else size + p] for p in self.bysetpos if p <= size >= -p}
        return sorted(picked)

    def _day_ok(self, day: date) -> bool:
        if self.bymonth and day.month not in self.bymonth:
            return False
        bymonthday, byyearday, nth = self.bymonthday, self.byyearday, self.bynthday
        if bymonthday:
            length = _month_length(day.year, day.month)
            if day.day not in bymonthday and day.day - length - 1 not in bymonthday:
                return False
        if byyearday:
            yday, ylen = _year_day(day)
            if yday not in byyearday and yday - ylen - 1 not in byyearday:
                return False
        if self.byweekno and not _weekno(day, self.wkst) & self.byweekno:
            return False
        if not self.byday and not nth:
            return True
        weekday = day.weekday()
        if weekday in self.byday:
            return True
        if not nth:
            return False
        if self._nth_in_month:
            index, total = day.day, _month_length(day.year, day.month)
        else:
            index, total = _year_day(day)
        return ((index - 1) // 7 + 1, weekday) in nth or (
            -((total - index) // 7 + 1),
            weekday,
        ) in nth


def _year_day(day: date) -> tuple[int, int]:
    """(day of the year, days in the year)."""
    return day.toordinal() - _new_year(day.year) + 1, 366 if calendar.isleap(day.year) else 365


def _month_days(year: int, month: int) -> range:
    return range(1, _month_length(year, month) + 1)


@lru_cache(maxsize=4096)
def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@lru_cache(maxsize=4096)
def _new_year(year: int) -> int:
    return date(year, 1, 1).toordinal()


def _week1(year: int, wkst: int) -> date:
    """The first day of week 1 of ``year``: the first week with at least 4 days in it."""
    jan1 = date(year, 1, 1)
    offset = (jan1.weekday() - wkst) % 7
    start = jan1 - timedelta(days=offset)
    return start if 7 - offset >= 4 else start + timedelta(days=7)


def _weekno(day: date, wkst: int) -> set[int]:
    """The week number of ``day`` (RFC 5545 §3.3.10 BYWEEKNO), positive and negative."""
    year = day.year
    if day < _week1(year, wkst):
        year -= 1
    elif day >= _week1(year + 1, wkst):
        year += 1
    first = _week1(year, wkst)
    total = (_week1(year + 1, wkst) - first).days // 7
    number = (day - first).days // 7 + 1
    return {number, number - total - 1}
