"""iCalendar lines and values as RFC 5545 writes them, read for :mod:`ordinaut.scheduling.rrule`.

A line is ``NAME[;TZID=…][;VALUE=DATE-TIME]:VALUE`` (a bare ``FREQ=…`` line is an RRULE).
DTSTART/RDATE/EXDATE values are ``YYYYMMDDTHHMMSS`` (floating: wall time in the zone given),
``…Z`` (UTC) or with ``TZID=``; UNTIL is a DATE or DATE-TIME, ``Z`` making it an instant.
Every rejection is a :class:`ValidationError` on ``schedule_expr`` starting ``rrule: ``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

from ordinaut.errors import ValidationError
from ordinaut.scheduling.wall import parse_timezone, resolve_wall_time, wall_of

__all__ = ["fail", "in_zone", "split_line", "stamps", "until"]

_FIELD = "schedule_expr"
_STAMP = re.compile(r"([0-9]{8})T([0-9]{6})(Z?)")  # ASCII digits only
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
_UTC = ZoneInfo("UTC")


def split_line(line: str) -> tuple[str, dict[str, str], str]:
    """Split a line into (NAME, {TZID/VALUE parameters}, value); a bare rule is RRULE."""
    head, colon, value = line.partition(":")
    if not colon:
        if "=" in line:  # a bare rule line
            return "RRULE", {}, line
        fail(f"cannot read line {line!r}: expected NAME:VALUE or FREQ=…")
    name, *raw = head.split(";")
    params: dict[str, str] = {}
    for item in raw:
        key, equals, val = item.partition("=")
        if not equals or key.upper() not in ("TZID", "VALUE"):
            fail(f"unsupported parameter {item!r} in line {line!r}")
        params[key.upper()] = val
    if params.get("VALUE", "DATE-TIME").upper() != "DATE-TIME":
        fail(f"only DATE-TIME values are supported, got VALUE={params['VALUE']}")
    return name.strip().upper(), params, value.strip()


def until(text: str, tz: ZoneInfo) -> datetime:
    """An UNTIL value as a naive wall time in ``tz`` (a DATE ends with its last second)."""
    match = _UNTIL.fullmatch(text)
    if match is None:
        fail(f"UNTIL={text} is not YYYYMMDD or YYYYMMDDTHHMMSS[Z]")
    day, clock, utc = match.groups()
    naive = _naive(day, clock or "235959", f"UNTIL={text}")
    return wall_of(naive.replace(tzinfo=UTC), tz) if utc else naive


def stamps(
    params: dict[str, str], value: str, tz: ZoneInfo, *, what: str
) -> list[tuple[ZoneInfo, datetime]]:
    """Read DTSTART/RDATE/EXDATE values as (zone, naive wall time) pairs."""
    if "TZID" in params:
        try:
            tz = parse_timezone(params["TZID"], field=_FIELD)
        except ValidationError as exc:
            fail(f"{what} TZID: {exc.message}")
    out = []
    for item in value.split(","):
        match = _STAMP.fullmatch(item.strip())
        if match is None:
            fail(f"{what} value {item!r} is not YYYYMMDDTHHMMSS, …Z or with TZID=")
        if match[3] and "TZID" in params:
            fail(f"{what} value {item!r} ends in Z but also has TZID")
        zone = _UTC if match[3] else tz
        out.append((zone, _naive(match[1], match[2], f"{what} value {item!r}")))
    return out


def in_zone(zone: ZoneInfo, wall: datetime, rule_tz: ZoneInfo) -> datetime:
    """``wall`` in ``zone`` as the naive wall time in ``rule_tz`` at the same instant."""
    if zone.key == rule_tz.key:
        return wall
    return wall_of(resolve_wall_time(wall, zone)[0], rule_tz)


def _naive(day: str, clock: str, what: str) -> datetime:
    try:
        return datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        fail(f"{what} is not a valid date and time")


def fail(reason: str) -> NoReturn:
    """Reject the rule: a :class:`ValidationError` on ``schedule_expr``."""
    raise ValidationError(f"rrule: {reason}", field=_FIELD)
