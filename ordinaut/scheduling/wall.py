"""Local wall time to UTC, with Ordinaut's DST rule (RFC 5545 §3.3.5).

Recurrences are computed as naive *wall times* in a zone ("every day at 02:30") and only then
turned into instants. Two wall times are special:

* **Gap** (spring forward): the wall time does not exist. It fires once, shifted forward by
  the length of the gap: 02:30 in a 02:00→03:00 gap fires at 03:30 new time. This is what
  ``zoneinfo`` gives for ``fold=0``: the wall time is read with the offset in force *before*
  the transition.
* **Fold** (fall back): the wall time happens twice. It fires once, at its first (earlier)
  occurrence, which is again ``fold=0``.

A gap-shifted wall time can land on an instant that another wall time of the same schedule
also has (an hourly 02:00 shifted to 03:00, and the real 03:00). :func:`iter_utc` merges such
collisions: each instant fires once, and the note says so. Every note is a sentence for humans.
"""

from __future__ import annotations

import heapq
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ordinaut.errors import ValidationError

__all__ = ["iter_utc", "parse_timezone", "resolve_wall_time", "wall_of"]

_NEAR = timedelta(days=2)  # wider than any offset change; one transition at most in that span
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")  # no dots: no "..", no files
# tzdata files that are not zones: host-dependent (localtime), a template (posixrules), "no
# zone" (Factory), and the leap-second ("right/") and duplicate ("posix/") trees
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})
_NOT_ZONE_TREES = ("right/", "posix/")


@cache
def _zone_names(search_path: tuple[str, ...]) -> frozenset[str]:
    """Canonical IANA zones and their links (backward names like US/Eastern), as installed
    on ``search_path`` (``zoneinfo.TZPATH``; a new path, a new listing)."""
    return frozenset(available_timezones()) - _NOT_ZONES


def parse_timezone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called ``name`` (``Europe/Chisinau``, ``UTC``, ``Etc/GMT+2``).

    Canonical names and links (``US/Eastern``) only: the ``right/`` (leap-second) and
    ``posix/`` trees, ``posixrules``, ``Factory`` and ``localtime`` are refused.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            "time zone is empty; give an IANA name like Europe/Chisinau", field=field
        )
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise ValidationError(f"{name[:64]!r} is not an IANA time zone name", field=field)
    if name in _NOT_ZONES or name.startswith(_NOT_ZONE_TREES):
        raise ValidationError(
            f"{name!r} is a tzdata file, not an IANA time zone (right/ and posix/ copies, "
            "posixrules, Factory and localtime are refused); give a name like Europe/Chisinau",
            field=field,
        )
    if name not in _zone_names(zoneinfo.TZPATH):
        raise ValidationError(
            f"unknown time zone {name!r} (names are case-sensitive, e.g. Europe/Chisinau)",
            field=field,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            f"unknown time zone {name!r} (names are case-sensitive, e.g. Europe/Chisinau)",
            field=field,
        ) from None


def wall_of(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall time that the aware ``instant`` shows in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def resolve_wall_time(naive_local: datetime, tz: ZoneInfo) -> tuple[datetime, str | None]:
    """Turn a naive wall time in ``tz`` into an aware UTC instant, with a note if DST moved it."""
    naive = naive_local.replace(fold=0)
    before = tz.utcoffset(naive)  # fold=0: the offset in force before a transition
    after = tz.utcoffset(naive.replace(fold=1))
    if before is None or after is None:  # pragma: no cover - every ZoneInfo has offsets
        raise ValueError(f"zone {tz.key} has no UTC offset at {naive}")
    utc = (naive - before).replace(tzinfo=UTC)
    if before == after:
        return utc, None
    day, clock = naive.date().isoformat(), _clock(naive)
    if before < after:
        shown = utc.astimezone(tz)
        return utc, (
            f"{clock} does not exist on {day} in {tz.key} (DST gap: clocks skip "
            f"{_duration(after - before)}); fires at {_clock(shown)} {shown.tzname()}"
        )
    first = utc.astimezone(tz)
    second = (naive - after).replace(tzinfo=UTC).astimezone(tz)
    return utc, (
        f"{clock} happens twice on {day} in {tz.key} (DST fold: clocks go back "
        f"{_duration(before - after)}); fires once, at the first {clock} ({first.tzname()}), "
        f"not again at {clock} {second.tzname()} (RFC 5545 §3.3.5)"
    )


def iter_utc(
    walls_from: Callable[[datetime], Iterable[datetime]], tz: ZoneInfo, after: datetime
) -> Iterator[tuple[datetime, str | None]]:
    """Yield ``(utc, note)`` for each instant strictly after ``after``, ascending, once each.

    ``walls_from(start)`` must yield the schedule's naive wall times ``>= start`` in ascending
    order. Near a transition the wall-to-UTC mapping is not monotonic (a gap-shifted 02:30 is
    later than a real 03:15), so instants are held back until no later wall time can precede
    them; away from transitions each one is yielded as soon as it is found.
    """
    after = after.astimezone(UTC)
    local_after = wall_of(after, tz)
    start = local_after - _offset_spread(tz, local_after)
    pending: dict[datetime, list[tuple[datetime, str | None]]] = {}
    heap: list[datetime] = []
    spreads: dict[date, timedelta] = {}
    for wall in walls_from(start):
        utc, note = resolve_wall_time(wall, tz)
        if utc > after:
            if utc in pending:
                pending[utc].append((wall, note))
            else:
                pending[utc] = [(wall, note)]
                heapq.heappush(heap, utc)
        # Every later wall time maps to at least utc - spread: what lies below is final.
        day = wall.date()
        if day not in spreads:
            spreads[day] = _offset_spread(tz, datetime(day.year, day.month, day.day), days=1)
        floor = utc - spreads[day]
        while heap and heap[0] < floor:
            first = heapq.heappop(heap)
            yield first, _merged_note(pending.pop(first), first, tz)
    while heap:
        first = heapq.heappop(heap)
        yield first, _merged_note(pending.pop(first), first, tz)


def _offset_spread(tz: ZoneInfo, wall: datetime, *, days: int = 0) -> timedelta:
    """How far the zone's UTC offset moves from two days before ``wall`` to two days after
    ``wall + days`` (sampled at the ends and at ``wall``: at most one transition lies there)."""
    ends = (-_NEAR, timedelta(0), _NEAR + timedelta(days=days))
    offsets = [tz.utcoffset(wall + delta) for delta in ends]
    known = [offset for offset in offsets if offset is not None]
    return max(known) - min(known)


def _merged_note(
    walls: list[tuple[datetime, str | None]], utc: datetime, tz: ZoneInfo
) -> str | None:
    first_wall, note = walls[0]
    if len(walls) == 1:
        return note
    others = ", ".join(
        _clock(wall) if wall.date() == first_wall.date() else f"{wall.date()} {_clock(wall)}"
        for wall, _ in walls[1:]
    )
    if note:
        return f"{note}; the {others} occurrence is the same instant, so it fires once"
    shown = utc.astimezone(tz)
    return (
        f"{_clock(first_wall)} and {others} on {shown.date().isoformat()} in {tz.key} are the "
        f"same instant ({_clock(shown)} {shown.tzname()}), so it fires once"
    )


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}h{rest:02d}min"
    return f"{hours}h" if hours else f"{rest}min"
