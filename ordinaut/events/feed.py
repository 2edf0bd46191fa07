"""Following the event stream: pages for clients that poll, and the reads behind the SSE feed.

Both read the Redis stream ``<namespace>:events`` (see the README's "stream entry format")
and show each caller only what it may see (:func:`visible`): an ``agents:admin`` caller
sees every entry; any other agent sees the entries about its own tasks (``payload.task_id``)
and the external events it published itself (``payload.agent_id``). A topic filter uses the
event-task pattern syntax (:mod:`ordinaut.scheduling.topics`) on the entry's full topic
(``task.run.succeeded``, ``event.external.mail.received``).

Work per call is bounded: a page scans at most ``SCAN_FACTOR x limit`` entries and its
cursor is the last entry scanned, so a caller who sees little of the stream still advances.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from ordinaut.errors import ValidationError
from ordinaut.events.relay import stream_key
from ordinaut.scheduling import topics

SCAN_FACTOR = 5
MAX_LIMIT = 1000
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass(frozen=True)
class FeedEntry:
    """One stream entry as callers see it."""

    id: str  # the stream entry id: the cursor, and SSE's event id
    outbox_id: int
    topic: str
    payload: Any
    at: str

    def public(self) -> dict[str, Any]:
        """The JSON object of this entry (``GET /events`` items, SSE ``data``)."""
        return {
            "id": self.id,
            "outbox_id": self.outbox_id,
            "topic": self.topic,
            "payload": self.payload,
            "at": self.at,
        }


def check_cursor(value: str | None, field: str = "after") -> str | None:
    """A stream id (``1733140000000-0``), or ValidationError naming ``field``."""
    if value is None:
        return None
    if not _STREAM_ID.fullmatch(value):
        raise ValidationError(
            f"{field} must be an event id as the stream gives it (e.g. 1733140000000-0)",
            field=field,
        )
    return value


def check_topic(value: str | None) -> str | None:
    """A topic pattern, or ValidationError naming ``topic``."""
    return None if value is None else topics.check_pattern(value, field="topic")


def entries_of(raw: Iterable[Any]) -> list[FeedEntry]:
    """Parse ``(id, fields)`` pairs as XRANGE/XREAD return them (entries without fields are
    skipped)."""
    found = []
    for entry_id, fields in raw:
        if not fields:
            continue
        try:
            payload = json.loads(fields.get("payload", "null"))
            found.append(
                FeedEntry(
                    id=str(entry_id),
                    outbox_id=int(fields["outbox_id"]),
                    topic=str(fields.get("topic", "")),
                    payload=payload,
                    at=str(fields.get("at", "")),
                )
            )
        except (KeyError, ValueError):
            continue
    return found


def task_ids(entries: Iterable[FeedEntry]) -> set[uuid.UUID]:
    """The task ids the entries are about (for one ownership lookup)."""
    ids = set()
    for entry in entries:
        value = entry.payload.get("task_id") if isinstance(entry.payload, dict) else None
        try:
            ids.add(uuid.UUID(str(value))) if value else None
        except ValueError:
            continue
    return ids


Owned = Callable[[set[uuid.UUID]], set[uuid.UUID]]
"""Given task ids, those the caller owns (a database lookup the service provides)."""


def visible(
    entries: Sequence[FeedEntry],
    *,
    agent_id: uuid.UUID,
    admin: bool,
    owned: Owned,
    topic: str | None,
) -> list[FeedEntry]:
    """The entries this caller may see that match ``topic`` (see the module docstring)."""
    if topic is not None:
        entries = [e for e in entries if topics.matches(topic, e.topic)]
    if admin or not entries:
        return list(entries)
    mine = owned(task_ids(entries))
    shown = []
    for entry in entries:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        if str(payload.get("agent_id")) == str(agent_id):
            shown.append(entry)
            continue
        try:
            if payload.get("task_id") and uuid.UUID(str(payload["task_id"])) in mine:
                shown.append(entry)
        except ValueError:
            continue
    return shown


def page(
    client: redis.Redis,
    namespace: str,
    *,
    after: str | None,
    limit: int,
    select: Callable[[Sequence[FeedEntry]], list[FeedEntry]],
) -> tuple[list[FeedEntry], str | None]:
    """Up to ``limit`` selected entries after ``after`` (oldest first; from the stream's
    start without it), and the cursor to continue from: the last entry returned when the
    page is full, else the last entry scanned (``after`` when nothing was)."""
    cursor = after
    shown: list[FeedEntry] = []
    budget = SCAN_FACTOR * limit
    while budget > 0:
        start = f"({cursor}" if cursor else "-"
        raw = client.xrange(stream_key(namespace), min=start, count=min(budget, 500))
        if not raw:
            break
        budget -= len(raw)
        chosen = {e.id: e for e in select(entries_of(raw))}
        for entry_id, _fields in raw:
            cursor = str(entry_id)
            if cursor in chosen:
                shown.append(chosen[cursor])
                if len(shown) == limit:
                    return shown, cursor
    return shown, cursor


def last_id(client: redis.Redis, namespace: str) -> str:
    """The id of the newest entry ("0-0" when the stream is empty): where a live feed that
    asks for nothing older starts."""
    newest = client.xrevrange(stream_key(namespace), count=1)
    return str(newest[0][0]) if newest else "0-0"


def wait_for_new(
    client: redis.Redis, namespace: str, after: str, *, block_ms: int, count: int = 100
) -> tuple[list[FeedEntry], str]:
    """Entries after ``after``, waiting up to ``block_ms`` for one; and the new position."""
    answer: Any = client.xread({stream_key(namespace): after}, count=count, block=block_ms)
    if not answer:
        return [], after
    raw: list[Any]
    if isinstance(answer, dict):  # RESP3: {stream: [[entries]]}
        raw = [e for value in answer.values() for e in (value[0] if _nested(value) else value)]
    else:  # RESP2: [[stream, [entries]]]
        raw = [e for _, value in answer for e in value]
    if not raw:
        return [], after
    return entries_of(raw), str(raw[-1][0])


def _nested(value: Any) -> bool:
    return bool(value) and isinstance(value[0], list)
