"""RFC 5545 recurrence rules: parsed and checked here, expanded by :mod:`.expansion`.

Accepted text: a single rule line (``FREQ=WEEKLY;BYDAY=MO``, with or without ``RRULE:``), or
the iCalendar form, one property per line (folded lines unfolded, :func:`.ical.unfold`): at
most one ``DTSTART``, exactly one ``RRULE``, any number of ``RDATE`` and ``EXDATE`` lines
(DATE-TIME or ``VALUE=DATE`` values, comma-separated). Parts: FREQ, INTERVAL, COUNT, UNTIL,
BYSECOND, BYMINUTE, BYHOUR, BYDAY, BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYMONTH, BYSETPOS, WKST
(default MO). Numbers are ASCII digits; duplicate BYxxx values count once; a BYDAY list is a
union of its numbered and plain weekdays (``1MO,FR``).

**Anchor and zone.** ``DTSTART:20260105T083000`` is floating: wall time in the task's zone.
``DTSTART;TZID=Zone/Name:…`` and ``DTSTART:…Z`` make the rule run in that zone or in UTC, as
RFC 5545 says; occurrences are still shown in the task's zone. Without a DTSTART line the
anchor is the task's creation time (for a preview: its ``after``) in the task's zone,
**truncated to the whole minute**. A rule inherits from DTSTART what it does not say (no
BYSECOND: DTSTART's second, hence always 0 without a DTSTART line; FREQ=DAILY without BYHOUR:
DTSTART's hour), so the seconds of "now" never leak into a fire time.

**Instants and wall times.** A value ending in ``Z`` or with a TZID other than the rule's
zone is an *instant*; a floating one (read in the rule's zone, i.e. DTSTART's) or one in the
rule's zone is a *wall time*. ``UNTIL=…Z`` bounds the rule's own instances by instant (not
the RDATEs); an instant EXDATE removes exactly that instant; an instant RDATE adds exactly
that instant (the second pass of a fold stays the second pass). Wall-time UNTIL/RDATE/EXDATE
compare with the rule's nominal wall times: an EXDATE at the *shifted* wall time of a gap
fire (03:30 for a 02:30 pushed by the gap) removes nothing — write the nominal 02:30 or the
instant. ``VALUE=DATE``: an RDATE fires that day at DTSTART's time, an EXDATE removes the
whole day. A rule whose own instances never occur still fires on its RDATEs.

**Rejected**: COUNT with UNTIL; INTERVAL or COUNT not a positive integer; a numbered BYDAY
(``1MO``, ``-1FR``) unless FREQ is MONTHLY or YEARLY, or with YEARLY and BYWEEKNO; BYWEEKNO
unless YEARLY; BYYEARDAY with DAILY, WEEKLY or MONTHLY; BYMONTHDAY with WEEKLY; BYSETPOS
without another BYxxx part or beyond what a period can hold; BYSECOND=60 (leap seconds);
unknown or repeated parts; no FREQ; EXRULE (deprecated); DTSTART/RDATE/EXDATE outside the
supported range (:mod:`ordinaut.limits`); and rules with no occurrence at all: calendar
filters are checked against a whole 400-year Gregorian cycle (by dateutil, bounded), a
sub-daily INTERVAL against the BYHOUR/BYMINUTE/BYSECOND times it can reach, and the rest by
finding the first occurrence within the expansion budget.

**Limits and cost.** COUNT <= 10 000, at most 1 000 RDATE/EXDATE values, 4 000 characters.
Expansion starts at the period holding the asked instant (no walk from a distant DTSTART);
a COUNT rule is walked once per compiled rule to its last occurrence. Everything spends the
:class:`~.expansion.Budget` it is given.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import product
from math import gcd
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule as du

from ordinaut.limits import LATEST
from ordinaut.scheduling import ical
from ordinaut.scheduling.expansion import Budget, Rule
from ordinaut.scheduling.ical import fail as _fail
from ordinaut.scheduling.ical import never as _never
from ordinaut.scheduling.wall import iter_utc, resolve_wall_time, wall_of

__all__ = ["MAX_COUNT", "RRuleSource", "parse_rrule"]

MAX_COUNT = 10_000
_MAX_DATES = 1_000
_MAX_TEXT = 4_000
_FREQ_NAMES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
_FREQS = {name: number for number, name in enumerate(_FREQ_NAMES)}  # dateutil's numbering
_YEARLY, _MONTHLY, _WEEKLY, _DAILY, _HOURLY, _MINUTELY, _SECONDLY = range(7)
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
    """A compiled rule set in ``tz``: the rule, RDATEs and EXDATEs, as wall times or instants.

    Wall times (floating or in the rule's own zone) go through the DST rule like the rule's
    own; instants (``Z``, another zone's ``TZID``, ``UNTIL=…Z``) are compared as instants.
    """

    tz: ZoneInfo  # the zone the rule runs in (TZID / Z of DTSTART, else the task's)
    rule: Rule | None  # None: the rule alone never fires; its RDATEs still do
    rdates: tuple[datetime, ...] = ()  # wall times in tz
    exdates: frozenset[datetime] = frozenset()  # wall times in tz
    exdays: frozenset[date] = frozenset()  # EXDATE;VALUE=DATE: every occurrence on that day
    rdate_instants: tuple[datetime, ...] = ()  # aware UTC
    exdate_instants: frozenset[datetime] = frozenset()  # aware UTC
    until_instant: datetime | None = None  # UNTIL=…Z: the rule's last possible instant

    def walls_from(self, start: datetime, budget: Budget) -> Iterator[datetime]:
        """Yield the set's wall times ``>= start``, ascending, each once (RDATE instants
        aside: see :meth:`iter_utc`)."""
        rule_walls = () if self.rule is None else self.rule.walls_from(start, budget)
        merged = heapq.merge(rule_walls, self.rdates[bisect_left(self.rdates, start) :])
        previous = None
        for wall in merged:
            if wall != previous and self._kept(wall):
                yield wall
            previous = wall

    def _kept(self, wall: datetime) -> bool:
        if wall in self.exdates or wall.date() in self.exdays:
            return False
        if self.until_instant is None and not self.exdate_instants:
            return True
        instant = resolve_wall_time(wall, self.tz)[0]
        if instant in self.exdate_instants:
            return False
        # UNTIL bounds the rule's own instances, not RDATEs
        late = self.until_instant is not None and instant > self.until_instant
        return not late or self._is_rdate(wall)

    def _is_rdate(self, wall: datetime) -> bool:
        index = bisect_left(self.rdates, wall)
        return index < len(self.rdates) and self.rdates[index] == wall

    def iter_utc(self, after: datetime, budget: Budget) -> Iterator[tuple[datetime, str | None]]:
        """Yield ``(utc, note)`` strictly after ``after``, ascending, each instant once."""
        walls = iter_utc(lambda start: self.walls_from(start, budget), self.tz, after)
        first = bisect_right(self.rdate_instants, after)
        instants = ((utc, None) for utc in self.rdate_instants[first:])
        previous = None
        for utc, note in heapq.merge(walls, instants, key=lambda pair: pair[0]):
            if utc != previous and utc not in self.exdate_instants:
                yield utc, note
            previous = utc


def parse_rrule(
    text: str, tz: ZoneInfo, *, created_at: datetime | None, budget: Budget | None = None
) -> RRuleSource:
    """Parse and check an RRULE (or iCalendar lines); :class:`ValidationError` says why not.

    Finding the first occurrence (and walking a COUNT rule to its end) spends ``budget``."""
    if len(text) > _MAX_TEXT:
        _fail(f"rule is longer than {_MAX_TEXT} characters")
    rule_values: list[str] = []
    starts: list[tuple[dict[str, str], str]] = []
    dates: dict[str, list[tuple[dict[str, str], str]]] = {"RDATE": [], "EXDATE": []}
    for line in ical.unfold(text):
        name, params, value = ical.split_line(line)
        if name == "RRULE":
            rule_values.append(value)
        elif name == "DTSTART":
            if params.get("VALUE", "DATE-TIME") != "DATE-TIME":
                _fail("DTSTART must be a DATE-TIME (VALUE=DATE is only read in RDATE/EXDATE)")
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
        if isinstance(dtstart, date) and not isinstance(dtstart, datetime):  # pragma: no cover
            _fail("DTSTART must be a DATE-TIME")
    elif created_at is None:
        raise ValueError("an RRULE without DTSTART needs created_at; use parse_schedule()")
    else:
        rule_tz, dtstart = tz, wall_of(created_at, tz).replace(second=0, microsecond=0)
    sets = _dates(dates, rule_tz, dtstart)
    if sum(len(found) for found in sets.values()) > _MAX_DATES:
        _fail(f"more than {_MAX_DATES} RDATE/EXDATE values")
    has_rdates = bool(sets["RDATE"] or sets["RDATE@"])
    until_text = parts.get("UNTIL")
    until_instant = ical.until_instant(until_text) if until_text else None
    if until_instant is not None:  # nothing past the supported range fires anyway
        until_instant = min(until_instant, LATEST)
    try:
        rule: Rule | None = _rule(parts, rule_tz, dtstart, until_instant)
    except ical.NeverFires:
        if not has_rdates:
            raise
        rule = None  # RFC 5545: the set is the rule's instances (none) plus the RDATEs
    source = RRuleSource(
        rule_tz, rule, tuple(sorted(set(sets["RDATE"]))), frozenset(sets["EXDATE"]),
        frozenset(sets["EXDAY"]), tuple(sorted(set(sets["RDATE@"]))),
        frozenset(sets["EXDATE@"]), until_instant,
    )  # fmt: skip
    begin = min((dtstart, *sets["RDATE"]))
    after = min((resolve_wall_time(begin, rule_tz)[0], *sets["RDATE@"])) - timedelta(days=2)
    if next(source.iter_utc(after, budget or Budget()), None) is None:
        start = resolve_wall_time(dtstart, rule_tz)[0]
        early = until_instant is not None and until_instant < start
        early = early or (rule is not None and rule.until is not None and rule.until < dtstart)
        _fail(f"rule produces no occurrence{' (UNTIL is before DTSTART)' if early else ''}")
    return source


def _dates(
    dates: dict[str, list[tuple[dict[str, str], str]]], rule_tz: ZoneInfo, dtstart: datetime
) -> dict[str, list[Any]]:
    """RDATE/EXDATE values sorted into wall times (floating or the rule's zone: key as is),
    instants (``Z`` or another zone: key + ``@``) and whole days (EXDATE;VALUE=DATE)."""
    out: dict[str, list[Any]] = {k: [] for k in ("RDATE", "RDATE@", "EXDATE", "EXDATE@", "EXDAY")}
    for key, values in dates.items():
        for params, value in values:
            for zone, stamp in ical.stamps(params, value, rule_tz, what=key):
                if not isinstance(stamp, datetime):  # VALUE=DATE
                    if key == "RDATE":
                        out["RDATE"].append(datetime.combine(stamp, dtstart.time()))
                    else:
                        out["EXDAY"].append(stamp)
                elif zone.key == rule_tz.key:
                    out[key].append(stamp)
                else:
                    out[key + "@"].append(resolve_wall_time(stamp, zone)[0])
    return out


def _rule(
    parts: dict[str, str], tz: ZoneInfo, dtstart: datetime, until_instant: datetime | None
) -> Rule:
    """The checked rule; :class:`ical.NeverFires` when its own instances can never exist."""
    kwargs = _rule_kwargs(parts, tz, dtstart)
    day_parts = {"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY"} & parts.keys()
    _check_days_exist(parts, day_parts, kwargs)
    freq = kwargs["freq"]
    days: tuple[du.weekday, ...] = kwargs["byweekday"] or ()
    plain = frozenset(day.weekday for day in days if not day.n)
    numbered = frozenset((day.n, day.weekday) for day in days if day.n)
    bymonth = frozenset(kwargs["bymonth"] or ())
    bymonthday = frozenset(kwargs["bymonthday"] or ())
    if not day_parts:  # RFC 5545: what the rule does not say comes from DTSTART
        if freq == _YEARLY:
            bymonth = bymonth or frozenset({dtstart.month})
            bymonthday = frozenset({dtstart.day})
        elif freq == _MONTHLY:
            bymonthday = frozenset({dtstart.day})
        elif freq == _WEEKLY:
            plain = frozenset({dtstart.weekday()})
    until = kwargs["until"]
    if until_instant is not None:  # a bound on wall times; the instant decides (RRuleSource)
        until = wall_of(until_instant, tz) + timedelta(days=1)

    def times(key: str, level: int, default: int) -> tuple[int, ...] | None:
        given: tuple[int, ...] | None = kwargs[key]
        return given if given else ((default,) if freq < level else None)

    _check_grid(freq, kwargs["interval"], dtstart, kwargs)
    return Rule(
        freq=freq, interval=kwargs["interval"], dtstart=dtstart, wkst=kwargs["wkst"],
        count=kwargs["count"], until=until, bymonth=bymonth, bymonthday=bymonthday,
        byyearday=frozenset(kwargs["byyearday"] or ()),
        byweekno=frozenset(kwargs["byweekno"] or ()), byday=plain, bynthday=numbered,
        byhour=times("byhour", _HOURLY, dtstart.hour),
        byminute=times("byminute", _MINUTELY, dtstart.minute),
        bysecond=times("bysecond", _SECONDLY, dtstart.second),
        bysetpos=tuple(kwargs["bysetpos"] or ()),
    )  # fmt: skip


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
    days = list(dict.fromkeys(days))  # BYDAY=MO,MO is BYDAY=MO
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
        _never(f"INTERVAL={interval} stays on DTSTART's weekday, which BYDAY excludes")
    until = ical.until(parts["UNTIL"]) if "UNTIL" in parts else None
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
        if key == "BYSECOND" and value == 60:
            _fail(f"{key}={text}: 60 is a leap second, and leap seconds are not supported")
        if not low <= (abs(value) if signed else value) <= high:
            span = f"{low}..{high} or -{high}..-1" if signed else f"{low}..{high}"
            _fail(f"{key}={text}: {value} is out of range {span}")
        values.append(value)
    return tuple(sorted(set(values)))  # BYHOUR=23,23 is BYHOUR=23 (BYSETPOS counts on it)


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
        _never(f"BYSETPOS can never select: a {name} period holds at most {most} instance(s)")


def _check_grid(freq: int, interval: int, dtstart: datetime, kwargs: dict[str, Any]) -> None:
    """Reject a sub-daily INTERVAL that never lands on the BYHOUR/BYMINUTE/BYSECOND times
    (``FREQ=HOURLY;INTERVAL=2;BYHOUR=1`` from an even hour): period starts advance by
    INTERVAL units from DTSTART's, so the seconds of the day they reach are DTSTART's modulo
    gcd(INTERVAL x unit, 1 day)."""
    if freq < _HOURLY:
        return
    unit = {_HOURLY: 3600, _MINUTELY: 60, _SECONDLY: 1}[freq]
    grid = gcd(interval * unit, 86_400)
    first = (dtstart.hour * 60 + dtstart.minute) * 60 + dtstart.second
    first -= first % unit
    hours = kwargs["byhour"] or range(24)
    minutes = (kwargs["byminute"] or range(60)) if freq >= _MINUTELY else (0,)
    seconds = (kwargs["bysecond"] or range(60)) if freq >= _SECONDLY else (0,)
    if grid == unit or not (kwargs["byhour"] or kwargs["byminute"] or kwargs["bysecond"]):
        return
    for hour, minute, second in product(hours, minutes, seconds):
        if ((hour * 60 + minute) * 60 + second - first) % grid == 0:
            return
    name = next(k for k, v in _FREQS.items() if v == freq)
    _never(
        f"FREQ={name};INTERVAL={interval} from DTSTART's {dtstart:%H:%M:%S} never reaches the "
        "BYHOUR/BYMINUTE/BYSECOND times (rule can never fire)"
    )


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
    # Years 9596..9999 hold a whole 400-year cycle, and dateutil stops at year 9999: at most
    # 404 yearly periods. A BYDAY list is a union: numbered and plain weekdays probed apart.
    weekdays: tuple[du.weekday, ...] = probe.pop("byweekday") or ()
    groups: list[tuple[du.weekday, ...] | None] = [
        group
        for group in (tuple(d for d in weekdays if d.n), tuple(d for d in weekdays if not d.n))
        if group
    ]
    start = datetime(9596, 1, 1)
    found = False
    for group in groups or [None]:
        found = found or any(
            du.rrule(
                du.YEARLY, dtstart=start, count=1, byhour=0, byminute=0, bysecond=0,
                byweekday=group, **probe,
            )
        )  # fmt: skip
    if not found:
        chosen = ";".join(f"{k}={parts[k]}" for k in ("BYMONTH", *sorted(day_parts)) if k in parts)
        _never(f"no calendar date matches {chosen or 'DTSTART'} (rule can never fire)")
