"""Quiet hours: when steps of some tool scopes must not run, and when they may again.

A rule (an agent's default, or a task's override) reads::

    {"tz": "Europe/Chisinau", "windows": ["22:00-08:00", "SA 00:00-24:00"],
     "on_quiet": "defer", "scopes": ["notify"]}

* ``windows``: local ``HH:MM-HH:MM`` spans, optionally prefixed by weekday codes
  (``MO,TU,WE,TH,FR,SA,SU``, comma-separated) naming the days a window *starts* on. An end
  at or before the start crosses midnight (``22:00-08:00`` ends the next morning);
  ``24:00`` is the end of the day. Windows that touch or overlap are one quiet period.
* ``on_quiet``: ``defer`` (default; the run waits before the step until the period ends),
  ``drop`` (the step is skipped and recorded, the run goes on) or ``digest`` (deferred, and
  the calls deferred to the same end are merged into one).
* ``scopes`` (default ``["notify"]``): the tool scopes silenced.

Window edges are wall times turned into instants with the schedules' DST rule
(:mod:`ordinaut.scheduling.wall`): an edge inside a spring-forward gap is shifted forward by
the gap (a 02:30 end on that night ends at 03:30 new time), an edge inside a fall-back fold
is its first occurrence. A window whose end lands at or before its start that way is empty
on that day. Rules whose windows cover the whole week are refused: nothing could ever run.

Everything is pure: ``now`` is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ordinaut.errors import ValidationError
from ordinaut.scheduling.wall import parse_timezone, resolve_wall_time, wall_of
from ordinaut.vocabulary import OnQuiet

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DEFAULT_SCOPES = ("notify",)
MAX_WINDOWS = 32
MAX_SCOPES = 32
_KEYS = frozenset({"tz", "windows", "on_quiet", "scopes"})
_WINDOW = re.compile(r"(?:(?P<days>[A-Z]{2}(?:,[A-Z]{2})*) +)?(?P<span>\S+)")
_SPAN = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_SCOPE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_DAY = timedelta(days=1)
_SCAN_DAYS = 9  # how far ahead a quiet period is followed (a week, plus a crossing window)


@dataclass(frozen=True)
class Window:
    """One window: the weekdays it starts on (0 = Monday), and its minutes after midnight."""

    text: str
    days: frozenset[int]
    start: int
    end: int  # 1..1440; at or before ``start``: the next day

    @property
    def shown(self) -> str:
        """The window as people read it, with an en dash: ``22:00\u201308:00``."""
        return self.text.replace("-", "\u2013")


@dataclass(frozen=True)
class QuietHours:
    """A validated quiet-hours rule."""

    tz: ZoneInfo
    windows: tuple[Window, ...]
    on_quiet: OnQuiet = OnQuiet.DEFER
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def to_json(self) -> dict[str, Any]:
        """The rule as stored and shown (defaults filled in)."""
        return {
            "tz": self.tz.key,
            "windows": [w.text for w in self.windows],
            "on_quiet": self.on_quiet.value,
            "scopes": list(self.scopes),
        }

    def silences(self, tool_scopes: Sequence[str]) -> bool:
        """True when a tool holding ``tool_scopes`` is silenced by this rule."""
        return any(scope in self.scopes for scope in tool_scopes)


@dataclass(frozen=True)
class QuietState:
    """Whether ``at`` is quiet; if so, the window it is in and when the quiet period ends."""

    at: datetime
    quiet: bool
    window: Window | None = None
    until: datetime | None = None

    @property
    def next_allowed(self) -> datetime:
        """When silenced steps may run: ``at`` itself when not quiet."""
        return self.until if self.until is not None else self.at


def parse_quiet_hours(
    raw: Any, *, field: str = "quiet_hours", default_tz: str = "UTC"
) -> QuietHours:
    """Validate a rule; ValidationError names the field (``quiet_hours.windows[1]``)."""
    if not isinstance(raw, Mapping):
        raise ValidationError("must be an object with tz, windows, on_quiet, scopes", field=field)
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r}; allowed: tz, windows, on_quiet, scopes",
            field=_at(field, unknown[0]),
        )
    tz_name = raw.get("tz", default_tz)
    tz = parse_timezone(tz_name, field=_at(field, "tz"))
    windows = _windows(raw.get("windows"), _at(field, "windows"))
    on_quiet_raw = raw.get("on_quiet", OnQuiet.DEFER.value)
    try:
        on_quiet = OnQuiet(on_quiet_raw)
    except ValueError:
        raise ValidationError(
            f"{on_quiet_raw!r} is not one of {', '.join(o.value for o in OnQuiet)}",
            field=_at(field, "on_quiet"),
        ) from None
    scopes = _scopes(raw.get("scopes", list(DEFAULT_SCOPES)), _at(field, "scopes"))
    return QuietHours(tz, windows, on_quiet, scopes)


def _windows(raw: Any, field: str) -> tuple[Window, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError('must be a non-empty list like ["22:00-08:00"]', field=field)
    if len(raw) > MAX_WINDOWS:
        raise ValidationError(f"at most {MAX_WINDOWS} windows", field=field)
    windows = tuple(parse_window(text, field=f"{field}[{i}]") for i, text in enumerate(raw))
    covered = bytearray(7 * 1440)
    for w in windows:
        length = (w.end - w.start) % 1440 or 1440
        for day in w.days:
            first = day * 1440 + w.start
            for minute in range(first, first + length):
                covered[minute % len(covered)] = 1
    if all(covered):
        raise ValidationError(
            "the windows cover the whole week: silenced steps could never run", field=field
        )
    return windows


def parse_window(text: Any, *, field: str = "window") -> Window:
    """One window: ``[DAYS ]HH:MM-HH:MM`` (``MO,TU 22:00-08:00``, ``SA 00:00-24:00``)."""
    if not isinstance(text, str) or len(text) > 64:
        raise ValidationError(
            'must be a string like "22:00-08:00" or "SA 00:00-24:00"', field=field
        )
    match = _WINDOW.fullmatch(text.strip())
    span = _SPAN.fullmatch(match.group("span")) if match else None
    if match is None or span is None:
        raise ValidationError(
            f'{text!r} is not a window: "HH:MM-HH:MM", optionally after weekday codes '
            'like "MO,TU " (MO TU WE TH FR SA SU)',
            field=field,
        )
    days = frozenset(range(7))
    if match.group("days"):
        codes = match.group("days").split(",")
        bad = [c for c in codes if c not in DAYS]
        if bad:
            raise ValidationError(
                f"unknown weekday {bad[0]!r}; use MO TU WE TH FR SA SU", field=field
            )
        days = frozenset(DAYS.index(c) for c in codes)
    h1, m1, h2, m2 = (int(g) for g in span.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValidationError(
            f"{text!r}: times are 00:00-23:59 (24:00 only as an end)", field=field
        )
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValidationError(f"{text!r} is empty; a whole day is 00:00-24:00", field=field)
    return Window(text.strip(), days, start, end)


def _scopes(raw: Any, field: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError(
            'must be a non-empty list of tool scopes like ["notify"]', field=field
        )
    if len(raw) > MAX_SCOPES:
        raise ValidationError(f"at most {MAX_SCOPES} scopes", field=field)
    for i, scope in enumerate(raw):
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise ValidationError(
                f"{scope!r} is not a scope: lowercase letters, digits and _ . : -",
                field=f"{field}[{i}]",
            )
    return tuple(dict.fromkeys(raw))


def periods(rule: QuietHours, around: datetime) -> list[tuple[datetime, datetime, Window]]:
    """The quiet intervals ``[start, end)`` (UTC) of windows starting from two days before
    ``around`` to about a week after, sorted by start."""
    local_day = wall_of(around, rule.tz).date()
    out: list[tuple[datetime, datetime, Window]] = []
    for offset in range(-2, _SCAN_DAYS):
        day = local_day + timedelta(days=offset)
        midnight = datetime.combine(day, time())
        for w in rule.windows:
            if day.weekday() not in w.days:
                continue
            end_minutes = w.end if w.end > w.start else w.end + 1440
            start, _ = resolve_wall_time(midnight + timedelta(minutes=w.start), rule.tz)
            end, _ = resolve_wall_time(midnight + timedelta(minutes=end_minutes), rule.tz)
            if end > start:
                out.append((start, end, w))
    out.sort(key=lambda p: (p[0], p[1]))
    return out


def quiet_at(rule: QuietHours, now: datetime) -> QuietState:
    """Is ``now`` inside a window? If so, which, and when the whole quiet period ends
    (touching or overlapping windows are followed to their last end)."""
    spans = periods(rule, now)
    inside = [(s, e, w) for s, e, w in spans if s <= now < e]
    if not inside:
        return QuietState(now, False)
    window = inside[0][2]
    until = max(e for _, e, _ in inside)
    moved = True
    while moved:
        moved = False
        for start, end, _ in spans:
            if start <= until < end:
                until, moved = end, True
    return QuietState(now, True, window, until)


def describe(rule: QuietHours, state: QuietState) -> str:
    """Why a step waits: ``quiet hours 22:00\u201308:00 Europe/Chisinau until 08:00``."""
    if not state.quiet or state.window is None or state.until is None:
        return f"no quiet hours at {state.at.isoformat()}"
    local_until = state.until.astimezone(rule.tz)
    day = ""
    if local_until.date() != state.at.astimezone(rule.tz).date() + _DAY and (
        local_until.date() != state.at.astimezone(rule.tz).date()
    ):
        day = f" on {local_until.date().isoformat()}"
    return (
        f"quiet hours {state.window.shown} {rule.tz.key} until {local_until.strftime('%H:%M')}{day}"
    )


def _at(field: str, name: str) -> str:
    """``field.name``, or ``name`` alone when the rule is the whole body."""
    return f"{field}.{name}" if field else name
