"""Schedules: parse once, then ask for the next occurrences; pure functions of their inputs.

A task's schedule is ``(kind, expr, timezone)``:

* ``cron`` — a crontab(5) expression (:mod:`ordinaut.scheduling.cron`);
* ``rrule`` — an RFC 5545 rule or iCalendar lines (:mod:`ordinaut.scheduling.rrule`);
* ``once`` — an ISO 8601 timestamp: with an offset (``+02:00``, ``Z``) it is absolute, without
  one it is wall time in the task's zone. A time already past at creation is rejected
  (:func:`ensure_not_past`); there is no implicit "fire at once";
* ``event`` — a topic (``[A-Za-z0-9_.*:-]``, up to 200 characters), fired by events;
* ``condition`` — a non-empty expression, fired by a checker.

Event and condition schedules have no times (``next_after`` is ``None``). Cron and RRULE
recurrences are computed in local wall time and turned into UTC with the DST rule of
:mod:`ordinaut.scheduling.wall` (gap: shifted forward by the gap; fold: first occurrence;
colliding instants fire once); an RRULE's ``Z``/other-zone UNTIL, RDATE and EXDATE are
instants and compared as such. Every returned datetime is aware; ``utc`` fields are in UTC.
Nothing here reads the clock: ``after``/``now``/``created_at`` are arguments.

Supported range: :data:`~ordinaut.limits.EARLIEST` … :data:`~ordinaut.limits.LATEST`; a
``once`` time or a preview ``after`` outside it is refused. Cost: every computation goes
through :meth:`Schedule.iter_after`, which spends an expansion
:class:`~ordinaut.scheduling.expansion.Budget` (``TooCostly`` past it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Protocol
from zoneinfo import ZoneInfo

from ordinaut.errors import ValidationError
from ordinaut.limits import EARLIEST, LATEST
from ordinaut.scheduling import cron, rrule, topics, wall
from ordinaut.scheduling.expansion import Budget
from ordinaut.scheduling.wall import parse_timezone
from ordinaut.vocabulary import ScheduleKind

__all__ = [
    "DEFAULT_TIMEZONE",
    "MAX_PREVIEW",
    "Occurrence",
    "Preview",
    "Schedule",
    "ScheduleKind",
    "ensure_not_past",
    "parse_schedule",
    "parse_timezone",
    "preview",
]

DEFAULT_TIMEZONE = "Europe/Chisinau"
MAX_PREVIEW = 1000
_MAX_EXPR = 4000


@dataclass(frozen=True)
class Occurrence:
    """One fire time: the instant, how it reads in the schedule's zone, and any DST note."""

    utc: datetime
    local: datetime
    note: str | None = None


class _Plan(Protocol):
    def iter_utc(
        self, after: datetime, budget: Budget
    ) -> Iterator[tuple[datetime, str | None]]: ...


@dataclass(frozen=True)
class _CronPlan:
    """Cron: wall times in a zone, resolved to instants."""

    source: cron.CronExpr
    tz: ZoneInfo

    def iter_utc(self, after: datetime, budget: Budget) -> Iterator[tuple[datetime, str | None]]:
        return wall.iter_utc(lambda start: self.source.walls_from(start, budget), self.tz, after)


@dataclass(frozen=True)
class _OncePlan:
    instant: datetime
    note: str | None

    def iter_utc(self, after: datetime, budget: Budget) -> Iterator[tuple[datetime, str | None]]:
        if self.instant > after:
            yield self.instant, self.note


@dataclass(frozen=True)
class _NoPlan:
    def iter_utc(self, after: datetime, budget: Budget) -> Iterator[tuple[datetime, str | None]]:
        return iter(())


@dataclass(frozen=True)
class Schedule:
    """A validated schedule. Build it with :func:`parse_schedule`.

    Equality looks at ``kind``, ``expr`` and ``tz`` only; the compiled form (which for an
    RRULE without DTSTART also holds the creation-time anchor) is kept alongside.
    """

    kind: ScheduleKind
    expr: str | None
    tz: ZoneInfo
    _plan: _Plan | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ScheduleKind(self.kind))
        if self._plan is None:
            object.__setattr__(self, "_plan", _compile(self.kind, self.expr, self.tz, None))

    def iter_after(self, after: datetime, budget: Budget | None = None) -> Iterator[Occurrence]:
        """Lazily yield the occurrences strictly after ``after`` (aware), ascending.

        This is the one way fire times are computed (validation, preview, beat): the work is
        counted against ``budget`` (a fresh :class:`~ordinaut.scheduling.expansion.Budget`
        unless given), and :class:`~ordinaut.scheduling.expansion.TooCostly` ends a search
        that spends it. The sequence ends before :data:`~ordinaut.limits.LATEST`: time past
        it is not scheduled (and date arithmetic near year 9999 would overflow).
        """
        plan = self._plan
        assert plan is not None  # set by __post_init__
        found = plan.iter_utc(_aware(after, "after"), budget or Budget())
        while True:
            try:
                utc, note = next(found)
            except (StopIteration, OverflowError):
                return
            if utc >= LATEST:
                return
            yield Occurrence(utc=utc, local=utc.astimezone(self.tz), note=note)

    def next_after(self, after: datetime, budget: Budget | None = None) -> datetime | None:
        """The first occurrence strictly after ``after``, in UTC; ``None`` when there is none."""
        first = next(self.iter_after(after, budget), None)
        return None if first is None else first.utc

    def occurrences(
        self, after: datetime, count: int, budget: Budget | None = None
    ) -> list[Occurrence]:
        """The next ``count`` occurrences strictly after ``after`` (fewer if exhausted)."""
        return list(islice(self.iter_after(after, budget), max(count, 0)))


@dataclass(frozen=True)
class Preview:
    """The next occurrences of an expression, with the DST notes that apply to them."""

    occurrences: list[Occurrence]
    notes: list[str]


def parse_schedule(
    kind: str, expr: str | None, tz: str, *, created_at: datetime, budget: Budget | None = None
) -> Schedule:
    """Validate a schedule; :class:`ValidationError` names the field and the reason.

    ``created_at`` (aware) anchors an RRULE that has no DTSTART line (whole minute, local).
    Validating an RRULE finds its first occurrence within ``budget`` (a fresh one unless given).
    """
    try:
        schedule_kind = ScheduleKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in ScheduleKind)
        raise ValidationError(
            f"unknown schedule kind {kind!r} (allowed: {allowed})", field="schedule_kind"
        ) from None
    zone = parse_timezone(tz)
    try:
        plan = _compile(schedule_kind, expr, zone, _aware(created_at, "created_at"), budget)
    except OverflowError:  # a date near year 1 or 9999 moved by a zone offset
        raise ValidationError(
            f"{schedule_kind.value}: a date in it is outside the supported range "
            f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)",
            field="schedule_expr",
        ) from None
    return Schedule(schedule_kind, expr, zone, plan)


def ensure_not_past(schedule: Schedule, now: datetime) -> None:
    """Reject a ``once`` schedule whose instant is not after ``now``; other kinds pass."""
    plan = schedule._plan
    if isinstance(plan, _OncePlan) and plan.instant <= _aware(now, "now"):
        raise ValidationError(
            f"once: {_iso(plan.instant)} is not in the future (now is {_iso(now)})",
            field="schedule_expr",
        )


def preview(kind: str, expr: str, tz: str, *, count: int, after: datetime) -> Preview:
    """The next ``count`` (1..1000) occurrences strictly after ``after``, with DST notes."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise ValidationError(f"count must be 1..{MAX_PREVIEW}, got {count!r}", field="count")
    if after.tzinfo is None:
        raise ValidationError("after needs a UTC offset (e.g. 2026-03-29T00:00:00Z)", field="after")
    if not EARLIEST <= after < LATEST:
        raise ValidationError(
            f"after {_iso(after)} is outside the supported range {EARLIEST:%Y-%m-%d} to "
            f"{LATEST:%Y-%m-%d} (UTC)",
            field="after",
        )
    found = parse_schedule(kind, expr, tz, created_at=after).occurrences(after, count)
    notes = dict.fromkeys(occ.note for occ in found if occ.note)
    return Preview(occurrences=found, notes=[note for note in notes if note])


def _compile(
    kind: ScheduleKind,
    expr: str | None,
    tz: ZoneInfo,
    created_at: datetime | None,
    budget: Budget | None = None,
) -> _Plan:
    text = (expr or "").strip()
    if not text:
        raise ValidationError(
            f"schedule_expr is required for kind {kind.value}", field="schedule_expr"
        )
    if len(text) > _MAX_EXPR:
        raise ValidationError(
            f"schedule_expr is longer than {_MAX_EXPR} characters", field="schedule_expr"
        )
    if kind is ScheduleKind.CRON:
        return _CronPlan(cron.parse_cron(text), tz)
    if kind is ScheduleKind.RRULE:
        return rrule.parse_rrule(text, tz, created_at=created_at, budget=budget)
    if kind is ScheduleKind.ONCE:
        return _parse_once(text, tz)
    if kind is ScheduleKind.CONDITION:  # the cadence of its checks: an RRULE or a cron line
        if is_rrule(text):
            return rrule.parse_rrule(text, tz, created_at=created_at, budget=budget)
        return _CronPlan(cron.parse_cron(text), tz)
    if kind is ScheduleKind.EVENT:
        topics.check_pattern(text)
    return _NoPlan()


def is_rrule(text: str) -> bool:
    """True for RRULE text (a ``FREQ=`` part, or ``RRULE:``/``DTSTART`` lines), else cron."""
    upper = text.upper()
    return "FREQ=" in upper or upper.startswith(("RRULE:", "DTSTART"))


def _parse_once(text: str, tz: ZoneInfo) -> _OncePlan:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or not text.isascii() or not re.search(r"[0-9][T ][0-9]", text):
        raise ValidationError(
            f"once: {text[:60]!r} is not an ISO 8601 date and time "
            "(e.g. 2026-12-01T09:00:00+02:00, …Z, or without offset for the task's zone)",
            field="schedule_expr",
        )
    try:
        if moment.tzinfo is not None:
            instant, note = moment.astimezone(UTC), None
        else:
            instant, note = wall.resolve_wall_time(moment, tz)
    except OverflowError:
        instant, note = LATEST, None  # at the very end of datetime's range: refused below
    if not EARLIEST <= instant < LATEST:
        raise ValidationError(
            f"once: {text[:60]!r} is outside the supported range {EARLIEST:%Y-%m-%d} to "
            f"{LATEST:%Y-%m-%d} (UTC)",
            field="schedule_expr",
        )
    return _OncePlan(instant, note)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
    return moment
