"""RFC 5545 recurrence rules, expanded by ``dateutil.rrule`` in local wall time.

Accepted text: a single rule line (``FREQ=WEEKLY;BYDAY=MO``, with or without ``RRULE:``), or
the iCalendar form, one property per line: at most one ``DTSTART``, exactly one ``RRULE``, any
number of ``RDATE`` and ``EXDATE`` lines (DATE-TIME values, comma-separated). Parts: FREQ,
INTERVAL, COUNT, UNTIL, BYSECOND, BYMINUTE, BYHOUR, BYDAY, BYMONTHDAY, BYYEARDAY, BYWEEKNO,
BYMONTH, BYSETPOS, WKST (default MO).

**Anchor and zone.** ``DTSTART:20260105T083000`` is floating: wall time in the task's zone.
``DTSTART;TZID=Zone/Name:…`` and ``DTSTART:…Z`` make the rule run in that zone or in UTC, as
RFC 5545 says; occurrences are still shown in the task's zone. Without a DTSTART line the
anchor is the task's creation time (for a preview: its ``after``) in the task's zone,
**truncated to the whole minute**. A rule inherits from DTSTART what it does not say (no
BYSECOND: DTSTART's second, hence always 0 without a DTSTART line; FREQ=DAILY without BYHOUR:
DTSTART's hour), so the seconds of "now" never leak into a fire time.

**UNTIL** ending in ``Z`` is an instant; without ``Z`` it is wall time in the rule's zone; a
DATE (``UNTIL=20261231``) includes that whole day. RDATE/EXDATE values follow DTSTART's
forms (``Z``, ``TZID=``, floating); an EXDATE removes the occurrence with that exact wall time.

**Rejected**, though dateutil would accept them: COUNT with UNTIL; INTERVAL or COUNT not a
positive integer; a numbered BYDAY (``1MO``, ``-1FR``) unless FREQ is MONTHLY or YEARLY, or
with YEARLY and BYWEEKNO; BYWEEKNO unless YEARLY; BYYEARDAY with DAILY, WEEKLY or MONTHLY;
BYMONTHDAY with WEEKLY; BYSETPOS without another BYxxx part or beyond what a period can hold;
unknown or repeated parts; no FREQ; EXRULE (deprecated); and rules with no occurrence at all
(calendar filters are checked against a whole 400-year Gregorian cycle).

**Limits and cost.** COUNT <= 10 000, at most 1 000 RDATE/EXDATE values, 4 000 characters.
dateutil expands a rule from its DTSTART; so that cost does not grow with a task's age, the
expansion restarts a whole number of periods before the asked instant (same grid, same
occurrences; the BYMONTHDAY/BYMONTH a MONTHLY/YEARLY rule takes from DTSTART stay pinned). A
COUNT rule is first turned, once per compiled rule, into the same rule ending UNTIL its last
occurrence (at most COUNT steps of about 2.5 µs). Impossible rules that slip past the checks
above (INTERVAL never meeting the BYxxx pattern) are rejected after dateutil's own search,
which ends at year 9999 and can take up to about a second.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule as du

from ordinaut.scheduling import ical
from ordinaut.scheduling.ical import fail as _fail
from ordinaut.scheduling.wall import wall_of

__all__ = ["MAX_COUNT", "RRuleSource", "parse_rrule"]

MAX_COUNT = 10_000
_MAX_DATES = 1_000
_MAX_TEXT = 4_000
_FREQ_NAMES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
_FREQS = {name: number for number, name in enumerate(_FREQ_NAMES)}  # dateutil's numbering
_YEARLY, _MONTHLY, _WEEKLY, _DAILY, _HOURLY, _MINUTELY = range(6)
_STEP = {2: timedelta(weeks=1), 3: timedelta(days=1), 4: timedelta(hours=1)}
_STEP |= {5: timedelta(minutes=1), 6: timedelta(seconds=1)}
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_INTS = {  # part: (lowest, highest, may be negative)
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *_INTS}
_BYDAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")  # ASCII digits only
_SIGNED = re.compile(r"[+-]?[0-9]{1,3}")
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class RRuleSource:
    """A compiled rule set: dateutil rule, RDATEs and EXDATEs, as naive wall times in ``tz``."""

    tz: ZoneInfo  # the zone the rule runs in (TZID / Z of DTSTART, else the task's)
    rule: du.rrule = field(repr=False)
    dtstart: datetime
    freq: int
    interval: int
    count: int | None
    rdates: tuple[datetime, ...] = ()
    exdates: frozenset[datetime] = frozenset()
    end: datetime | None = None  # no wall time after this one (UNTIL and RDATEs), if known
    pinned: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _memo: dict[str, du.rrule] = field(default_factory=dict, compare=False, repr=False)

    def walls_from(self, start: datetime) -> Iterator[datetime]:
        """Yield the rule set's naive wall times ``>= start``, ascending, each once."""
        if self.end is not None and start > self.end:
            return
        merged = heapq.merge(
            self._rule_near(start).xafter(start, inc=True),
            self.rdates[bisect_left(self.rdates, start) :],
        )
        previous = None
        for wall in merged:
            if wall != previous and wall not in self.exdates:
                yield wall
            previous = wall

    def _rule_near(self, start: datetime) -> du.rrule:
        """The rule restarted a whole number of periods before ``start``: same grid and
        defaults, same occurrences from ``start`` on, but no walk from a distant DTSTART."""
        periods = self._periods_before(start)
        if periods < 8:
            return self.rule
        rule, first, interval = self._uncounted(), self.dtstart, self.interval
        if self.freq == du.YEARLY:
            begin = first.replace(year=first.year + (periods - 1) * interval, month=1, day=1)
        elif self.freq == du.MONTHLY:
            index = first.year * 12 + first.month - 1 + (periods - 1) * interval
            begin = first.replace(year=index // 12, month=index % 12 + 1, day=1)
        else:
            begin = first + (periods - 1) * interval * _STEP[self.freq]
        return rule.replace(dtstart=begin, **self.pinned)

    def _periods_before(self, start: datetime) -> int:
        first, freq, interval = self.dtstart, self.freq, self.interval
        if start <= first:
            return 0
        if freq == du.YEARLY:
            return (start.year - first.year) // interval
        if freq == du.MONTHLY:
            return ((start.year - first.year) * 12 + start.month - first.month) // interval
        return (start - first) // (interval * _STEP[freq])

    def _uncounted(self) -> du.rrule:
        """A COUNT rule as the same rule ending UNTIL its last occurrence (computed once)."""
        if self.count is None:
            return self.rule
        if "uncounted" not in self._memo:
            last = deque(self.rule, maxlen=1)  # at most MAX_COUNT steps, once per schedule
            ends = self.rule.replace(count=None, until=last[0]) if last else self.rule
            self._memo["uncounted"] = ends
        return self._memo["uncounted"]


def parse_rrule(text: str, tz: ZoneInfo, *, created_at: datetime | None) -> RRuleSource:
    """Parse and check an RRULE (or iCalendar lines); :class:`ValidationError` says why not."""
    if len(text) > _MAX_TEXT:
        _fail(f"rule is longer than {_MAX_TEXT} characters")
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    rule_values: list[str] = []
    starts: list[tuple[dict[str, str], str]] = []
    dates: dict[str, list[tuple[dict[str, str], str]]] = {"RDATE": [], "EXDATE": []}
    for line in lines:
        name, params, value = ical.split_line(line)
        if name == "RRULE":
            rule_values.append(value)
        elif name == "DTSTART":
            starts.append((params, value))
        elif name in dates:
            dates[name].append((params, value))
        elif name == "EXRULE":
            _fail("EXRULE is deprecated by RFC 5545; use EXDATE")
        else:
            _fail(f"unsupported line {name!r} (allowed: DTSTART, RRULE, RDATE, EXDATE)")
    if len(rule_values) != 1:
        _fail("expected one RRULE (FREQ=…) line" if rule_values else "missing FREQ: no RRULE")
    if len(starts) > 1:
        _fail("more than one DTSTART line")
    parts = _parse_parts(rule_values[0])
    if starts:
        anchors = ical.stamps(*starts[0], tz, what="DTSTART")
        if len(anchors) != 1:
            _fail("DTSTART takes one value")
        rule_tz, dtstart = anchors[0]
    elif created_at is None:
        raise ValueError("an RRULE without DTSTART needs created_at; use parse_schedule()")
    else:
        rule_tz, dtstart = tz, wall_of(created_at, tz).replace(second=0, microsecond=0)
    walls = {
        key: [
            ical.in_zone(*pair, rule_tz)
            for p, v in vals
            for pair in ical.stamps(p, v, rule_tz, what=key)
        ]
        for key, vals in dates.items()
    }
    if len(walls["RDATE"]) + len(walls["EXDATE"]) > _MAX_DATES:
        _fail(f"more than {_MAX_DATES} RDATE/EXDATE values")
    kwargs = _rule_kwargs(parts, rule_tz, dtstart)
    day_parts = {"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY"} & parts.keys()
    _check_days_exist(parts, day_parts, kwargs)
    try:
        rule = du.rrule(**kwargs)
    except ValueError as exc:
        _fail(f"rule can never fire: {exc}")
    until: datetime | None = kwargs["until"]
    rdates = tuple(sorted(set(walls["RDATE"])))
    end = None if until is None else max((until, *rdates))
    pinned: dict[str, Any] = {}  # dateutil's defaults from DTSTART, kept when it is moved
    if kwargs["freq"] in (du.YEARLY, du.MONTHLY) and not day_parts:
        pinned["bymonthday"] = (dtstart.day,)
        if kwargs["freq"] == du.YEARLY:
            pinned["bymonth"] = kwargs["bymonth"] or (dtstart.month,)
    source = RRuleSource(
        rule_tz, rule, dtstart, kwargs["freq"], kwargs["interval"], kwargs["count"],
        rdates, frozenset(walls["EXDATE"]), end, pinned,
    )  # fmt: skip
    try:
        first = next(source.walls_from(min((dtstart, *rdates))), None)
    except ValueError as exc:  # dateutil: interval and BYxxx never meet
        _fail(f"rule can never fire: {exc}")
    if first is None:
        reason = " (UNTIL is before DTSTART)" if until is not None and until < dtstart else ""
        _fail(f"rule produces no occurrence{reason}")
    return source


def _parse_parts(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        key, equals, val = (piece.strip().upper() for piece in item.partition("="))
        if not equals or not val:
            _fail(f"rule part {item!r} is not NAME=VALUE")
        if key not in _PARTS:
            _fail(f"unknown rule part {key!r} (allowed: {', '.join(sorted(_PARTS))})")
        if key in parts:
            _fail(f"rule part {key} is given twice")
        parts[key] = val
    if "FREQ" not in parts:
        _fail("missing FREQ")
    if "COUNT" in parts and "UNTIL" in parts:
        _fail("COUNT and UNTIL must not both be given (RFC 5545 §3.3.10)")
    if "BYSETPOS" in parts and not any(k.startswith("BY") for k in parts if k != "BYSETPOS"):
        _fail("BYSETPOS needs another BYxxx part to select from (RFC 5545)")
    return parts


def _rule_kwargs(parts: dict[str, str], tz: ZoneInfo, dtstart: datetime) -> dict[str, Any]:
    freq = _FREQS.get(parts["FREQ"])
    if freq is None:
        _fail(f"FREQ={parts['FREQ']} is not one of {', '.join(_FREQS)}")
    by = {key: _ints(key, parts[key]) for key in _INTS if key in parts}
    days = [_byday(item, freq, parts) for item in parts.get("BYDAY", "").split(",") if item]
    if "BYWEEKNO" in by and freq != _YEARLY:
        _fail("BYWEEKNO is only allowed with FREQ=YEARLY (RFC 5545)")
    if "BYYEARDAY" in by and freq in (_MONTHLY, _WEEKLY, _DAILY):
        _fail(f"BYYEARDAY is not allowed with FREQ={parts['FREQ']} (RFC 5545)")
    if "BYMONTHDAY" in by and freq == _WEEKLY:
        _fail("BYMONTHDAY is not allowed with FREQ=WEEKLY (RFC 5545)")
    interval = _positive("INTERVAL", parts.get("INTERVAL", "1"), None)
    count = _positive("COUNT", parts["COUNT"], MAX_COUNT) if "COUNT" in parts else None
    wkst = parts.get("WKST", "MO")
    if wkst not in _DAYS:
        _fail(f"WKST={wkst} is not a weekday (MO … SU)")
    if "BYSETPOS" in by:
        _check_setpos(freq, by, days)
    whole_weeks = freq >= _DAILY and (interval * _STEP[freq]) % timedelta(days=7) == timedelta(0)
    if whole_weeks and days and dtstart.weekday() not in {day.weekday for day in days}:
        _fail(f"INTERVAL={interval} stays on DTSTART's weekday, which BYDAY excludes")
    until = ical.until(parts["UNTIL"], tz) if "UNTIL" in parts else None
    kwargs: dict[str, Any] = {f"by{key[2:].lower()}": by.get(key) for key in _INTS}
    kwargs |= {"freq": freq, "dtstart": dtstart, "interval": interval, "count": count}
    return kwargs | {"until": until, "wkst": _DAYS.index(wkst), "byweekday": tuple(days) or None}


def _ints(key: str, text: str) -> tuple[int, ...]:
    low, high, signed = _INTS[key]
    values = []
    for item in text.split(","):
        if not _SIGNED.fullmatch(item) or (not signed and item[0] in "+-"):
            _fail(f"{key}={text}: {item!r} is not a whole number in {low}..{high}")
        value = int(item)
        if not low <= (abs(value) if signed else value) <= high:
            span = f"{low}..{high} or -{high}..-1" if signed else f"{low}..{high}"
            _fail(f"{key}={text}: {value} is out of range {span}")
        values.append(value)
    return tuple(values)


def _byday(item: str, freq: int, parts: dict[str, str]) -> du.weekday:
    match = _BYDAY.fullmatch(item)
    if match is None:
        _fail(f"BYDAY value {item!r} is not a weekday like MO, 2TU or -1FR")
    weekday = du.weekdays[_DAYS.index(match[2])]
    if match[1] is None:
        return weekday
    ordinal = int(match[1])
    if freq not in (_MONTHLY, _YEARLY) or "BYWEEKNO" in parts:
        _fail(
            f"BYDAY={item}: a numbered weekday needs FREQ=MONTHLY or YEARLY without BYWEEKNO "
            f"(RFC 5545); for every {match[2]} write BYDAY={match[2]}"
        )
    limit = 5 if freq == _MONTHLY or "BYMONTH" in parts else 53
    if not 1 <= abs(ordinal) <= limit:
        _fail(f"BYDAY={item}: the number must be 1..{limit} or -{limit}..-1")
    return weekday(ordinal)


def _positive(key: str, text: str, limit: int | None) -> int:
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        _fail(f"{key} must be a positive whole number, got {text!r} (ASCII digits 0-9 only)")
    if limit is not None and int(text) > limit:
        _fail(f"{key}={text} is above the limit of {limit}")
    return int(text)


def _check_setpos(freq: int, by: dict[str, tuple[int, ...]], days: list[du.weekday]) -> None:
    """Reject BYSETPOS that can never select: it would make dateutil loop to year 9999."""
    if freq >= _DAILY:
        per_day = 1
    elif freq == _WEEKLY:
        per_day = len(days) or 1
    elif freq == _MONTHLY and "BYMONTHDAY" in by:
        per_day = len(by["BYMONTHDAY"])
    elif freq == _MONTHLY and days:
        per_day = sum(1 if day.n else 5 for day in days)
    else:
        per_day = 366 if freq == _YEARLY else 1
    times = 1
    for key, level in (("BYHOUR", _DAILY), ("BYMINUTE", _HOURLY), ("BYSECOND", _MINUTELY)):
        if freq <= level:
            times *= len(by.get(key, (0,)))
    most = per_day * times
    if min(abs(pos) for pos in by["BYSETPOS"]) > most:
        name = next(k for k, v in _FREQS.items() if v == freq)
        _fail(f"BYSETPOS can never select: a {name} period holds at most {most} instance(s)")


def _check_days_exist(parts: dict[str, str], day_parts: set[str], kwargs: dict[str, Any]) -> None:
    """Reject calendar filters no date satisfies (BYMONTH=2;BYMONTHDAY=30), in bounded time."""
    freq, dtstart = kwargs["freq"], kwargs["dtstart"]
    if freq > _MONTHLY and not {"BYMONTHDAY", "BYYEARDAY"} & day_parts:
        return
    probe: dict[str, Any] = {key: kwargs[key] for key in ("bymonthday", "byyearday", "byweekno")}
    probe["byweekday"] = kwargs["byweekday"]
    probe["bymonth"] = kwargs["bymonth"]
    if not day_parts and freq == _YEARLY:
        probe["bymonth"] = kwargs["bymonth"] or (dtstart.month,)
        probe["bymonthday"] = (dtstart.day,)
    elif not day_parts and freq == _MONTHLY:
        probe["bymonthday"] = (dtstart.day,)
    if freq == _MONTHLY:  # numbered weekdays count within each month
        probe["bymonth"] = kwargs["bymonth"] or tuple(range(1, 13))
    # Years 9596..9999 hold a whole 400-year cycle, and dateutil stops at year 9999.
    start = datetime(9596, 1, 1)
    found = du.rrule(du.YEARLY, dtstart=start, count=1, byhour=0, byminute=0, bysecond=0, **probe)
    if next(iter(found), None) is None:
        chosen = ";".join(f"{k}={parts[k]}" for k in ("BYMONTH", *sorted(day_parts)) if k in parts)
        _fail(f"no calendar date matches {chosen or 'DTSTART'} (rule can never fire)")
