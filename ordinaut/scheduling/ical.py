"""iCalendar lines and values as RFC 5545 writes them, read for :mod:`ordinaut.scheduling.rrule`.

A line is ``NAME[;TZID=…][;VALUE=DATE-TIME|DATE]:VALUE`` (a bare ``FREQ=…`` line is an
RRULE); folded lines (RFC 5545 §3.1) are unfolded and ``TZID="…"`` may be quoted.
DTSTART/RDATE/EXDATE values are ``YYYYMMDDTHHMMSS`` (floating: wall time in the zone given),
``…Z`` (UTC) or with ``TZID=``; RDATE/EXDATE may be ``VALUE=DATE`` (``YYYYMMDD``). UNTIL is a
DATE or DATE-TIME, ``Z`` making it an instant.
Every rejection is a :class:`ValidationError` on ``schedule_expr`` starting ``rrule: ``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

from ordinaut.errors import ValidationError
from ordinaut.limits import EARLIEST, LATEST
from ordinaut.scheduling.wall import parse_timezone

__all__ = [
    "NeverFires", "fail", "never", "split_line", "stamps", "unfold", "until", "until_instant",
]  # fmt: skip

_FIELD = "schedule_expr"
_STAMP = re.compile(r"([0-9]{8})T([0-9]{6})(Z?)")  # ASCII digits only
_DAY = re.compile(r"[0-9]{8}")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
_UTC = ZoneInfo("UTC")
_FIRST, _LAST = EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None)  # as wall times


class NeverFires(ValidationError):
    """The rule's own instances can never exist (its RDATEs may still fire)."""


_PROPERTY = re.compile(r"(?:DTSTART|RRULE|RDATE|EXDATE|EXRULE)[;:]|FREQ=", re.IGNORECASE)


def unfold(text: str) -> list[str]:
    """The content lines of ``text``: RFC 5545 §3.1 folding undone, blank lines dropped.

    A line that starts with a space or tab continues the previous one (without that one
    character) unless it starts a property (``RRULE:``, ``EXDATE;…``): indented pastes stay
    readable.
    """
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        folded = raw[:1] in (" ", "\t") and lines and not _PROPERTY.match(raw.strip())
        if folded:
            lines[-1] += raw[1:].rstrip()
        elif raw.strip():
            lines.append(raw.strip())
    return lines


def split_line(line: str) -> tuple[str, dict[str, str], str]:
    """Split a line into (NAME, {TZID/VALUE parameters}, value); a bare rule is RRULE.

    Parameter values may be quoted (``TZID="America/New_York"``); VALUE is DATE-TIME or DATE.
    """
    head, colon, value = _split_head(line)
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
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params[key.upper()] = val if key.upper() == "TZID" else val.upper()
    if params.get("VALUE", "DATE-TIME") not in ("DATE-TIME", "DATE"):
        fail(f"VALUE={params['VALUE']} is not supported (DATE-TIME or DATE)")
    return name.strip().upper(), params, value.strip()


def _split_head(line: str) -> tuple[str, str, str]:
    """Split at the first colon outside double quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index], ":", line[index + 1 :]
    return line, "", ""


def until(text: str) -> datetime | None:
    """An UNTIL value without ``Z`` as a naive wall time (a DATE ends with its last second);
    ``None`` for an instant (see :func:`until_instant`)."""
    day, clock, utc = _until_parts(text)
    return None if utc else _naive(day, clock or "235959", f"UNTIL={text}")


def until_instant(text: str) -> datetime | None:
    """An UNTIL value ending in ``Z`` as an aware UTC instant; ``None`` for a wall time."""
    day, clock, utc = _until_parts(text)
    if not utc:
        return None
    return _naive(day, clock or "235959", f"UNTIL={text}").replace(tzinfo=UTC)


def _until_parts(text: str) -> tuple[str, str | None, str | None]:
    match = _UNTIL.fullmatch(text)
    if match is None:
        fail(f"UNTIL={text} is not YYYYMMDD or YYYYMMDDTHHMMSS[Z]")
    day, clock, utc = match.groups()
    return day, clock, utc


def stamps(
    params: dict[str, str], value: str, tz: ZoneInfo, *, what: str
) -> list[tuple[ZoneInfo, datetime | date]]:
    """Read DTSTART/RDATE/EXDATE values as (zone, naive wall time) pairs; with VALUE=DATE,
    (zone, date) pairs."""
    if "TZID" in params:
        try:
            tz = parse_timezone(params["TZID"], field=_FIELD)
        except ValidationError as exc:
            fail(f"{what} TZID: {exc.message}")
    out: list[tuple[ZoneInfo, datetime | date]] = []
    for item in value.split(","):
        if params.get("VALUE") == "DATE":
            if not _DAY.fullmatch(item.strip()):
                fail(f"{what};VALUE=DATE value {item!r} is not YYYYMMDD")
            out.append((tz, _naive(item.strip(), "000000", f"{what} value {item!r}").date()))
            continue
        match = _STAMP.fullmatch(item.strip())
        if match is None:
            fail(f"{what} value {item!r} is not YYYYMMDDTHHMMSS, …Z or with TZID=")
        if match[3] and "TZID" in params:
            fail(f"{what} value {item!r} ends in Z but also has TZID")
        zone = _UTC if match[3] else tz
        out.append((zone, _naive(match[1], match[2], f"{what} value {item!r}")))
    return out


def _naive(day: str, clock: str, what: str) -> datetime:
    try:
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        fail(f"{what} is not a valid date and time")
    if not what.startswith("UNTIL") and not _FIRST <= moment < _LAST:
        fail(f"{what} is outside the supported range {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}")
    return moment


def fail(reason: str) -> NoReturn:
    """Reject the rule: a :class:`ValidationError` on ``schedule_expr``."""
    raise ValidationError(f"rrule: {reason}", field=_FIELD)


def never(reason: str) -> NoReturn:
    """Reject the rule's own instances: :class:`NeverFires` (RDATEs may still save it)."""
    raise NeverFires(f"rrule: {reason}", field=_FIELD)
