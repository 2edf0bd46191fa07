"""The outbox: events written in the caller's transaction, taken in order by the relay."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.tables import outbox


def emit(conn: Connection, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Write events to the outbox in the caller's transaction."""
    rows = [{"topic": topic, "payload": _jsonable(payload)} for topic, payload in events]
    if rows:
        conn.execute(sa.insert(outbox).values(rows))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class OutboxEvent:
    """One event waiting to be relayed."""

    id: int
    topic: str
    payload: Any
    created_at: datetime


_TAKE_UNPUBLISHED = sa.text(
    """
    SELECT id, topic, payload, created_at FROM outbox
    WHERE published_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


def take_unpublished(conn: Connection, limit: int) -> list[OutboxEvent]:
    """The oldest unpublished events, locked (another relay skips them) until commit."""
    rows = conn.execute(_TAKE_UNPUBLISHED, {"limit": limit}).all()
    return [OutboxEvent(r.id, r.topic, r.payload, r.created_at) for r in rows]


_MARK_RELAYED = sa.text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")


def mark_relayed(conn: Connection, ids: Sequence[int]) -> None:
    """Record that these events are on the stream."""
    if ids:
        conn.execute(_MARK_RELAYED, {"ids": list(ids)})
