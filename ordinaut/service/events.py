"""External events and the audit trail as callers see them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import redis
from sqlalchemy.engine import Connection

from ordinaut.errors import PayloadTooLarge, Unavailable, ValidationError
from ordinaut.events import feed
from ordinaut.jsonsize import json_size
from ordinaut.service.auth import Principal
from ordinaut.service.models import EventAccepted, EventIn, EventPage
from ordinaut.store import queries
from ordinaut.tools.redact import Redactor
from ordinaut.vocabulary import Scope

REDIS_RETRY_AFTER = 5


def publish_event(
    conn: Connection,
    principal: Principal,
    body: EventIn,
    *,
    now: datetime,
    max_bytes: int,
    redactor: Redactor,
) -> EventAccepted:
    """Record an external event in the outbox (``event.external.<topic>``); the relay puts
    it on the stream and the trigger consumer starts the event tasks it reaches
    (:mod:`ordinaut.events.trigger`).

    The payload is at most ``max_bytes`` as compact JSON (ORDINAUT_MAX_EVENT_PAYLOAD_BYTES,
    413 past it) and is stored with secret values redacted.
    """
    principal.require(Scope.EVENTS_PUBLISH)
    if json_size(body.payload, max_bytes) > max_bytes:
        raise PayloadTooLarge(
            f"event payload is larger than {max_bytes} bytes as JSON "
            "(ORDINAUT_MAX_EVENT_PAYLOAD_BYTES)",
            field="payload",
        )
    topic = f"event.external.{body.topic}"
    event_id = uuid.uuid4()
    queries.emit(
        conn,
        [
            (
                topic,
                {
                    "id": str(event_id),
                    "topic": body.topic,
                    "payload": redactor.value(body.payload),
                    "agent_id": str(principal.agent_id),
                    # an agents:admin publisher reaches every agent's event tasks
                    "admin": principal.is_admin,
                    "at": now.isoformat(),
                },
            )
        ],
    )
    return EventAccepted(id=event_id, topic=topic, accepted_at=now)


def list_audit(
    conn: Connection, principal: Principal, *, subject_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """Audit entries, newest first (agents:admin)."""
    principal.require(Scope.AGENTS_ADMIN)
    return queries.list_audit(conn, subject_id=subject_id, limit=limit)


def owner_lookup(
    tx: Callable[[], AbstractContextManager[Connection]], principal: Principal
) -> feed.Owned:
    """Which of some task ids ``principal`` owns, each asked in its own short transaction."""

    def owned(ids: set[uuid.UUID]) -> set[uuid.UUID]:
        with tx() as conn:
            return queries.owned_tasks(conn, principal.agent_id, ids)

    return owned


def _redis_down(exc: redis.RedisError) -> Unavailable:
    return Unavailable(
        f"the event stream is unavailable ({type(exc).__name__}); retry shortly",
        retry_after=REDIS_RETRY_AFTER,
    )


def list_events(
    client: redis.Redis,
    namespace: str,
    principal: Principal,
    owned: feed.Owned,
    *,
    after: str | None,
    topic: str | None,
    limit: int,
) -> EventPage:
    """A page of the event stream the caller may see, oldest first (runs:read).

    ``next_cursor`` is where to continue (``after=`` it), also when the page is empty or
    short, so a poller keeps its place; it is None only while the stream is empty.
    """
    principal.require(Scope.RUNS_READ)
    after = feed.check_cursor(after)
    pattern = feed.check_topic(topic)
    if isinstance(limit, bool) or not 1 <= limit <= feed.MAX_LIMIT:
        raise ValidationError(f"limit must be 1..{feed.MAX_LIMIT}", field="limit")

    def select(batch: Any) -> list[feed.FeedEntry]:
        return feed.visible(
            batch,
            agent_id=principal.agent_id,
            admin=principal.is_admin,
            owned=owned,
            topic=pattern,
        )

    try:
        items, cursor = feed.page(client, namespace, after=after, limit=limit, select=select)
    except redis.RedisError as exc:
        raise _redis_down(exc) from exc
    return EventPage(items=[i.public() for i in items], next_cursor=cursor)


class EventFollower:
    """A live position in the stream for one caller (``GET /events/stream``).

    Starts after ``after`` (``Last-Event-ID`` or ``since``) or, without it, at the newest
    entry (only what happens from now on). :meth:`next` waits up to ``block_ms`` and
    returns what the caller may see; an empty list is the caller's cue for a heartbeat.
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        principal: Principal,
        owned: feed.Owned,
        *,
        after: str | None,
        topic: str | None,
    ) -> None:
        principal.require(Scope.RUNS_READ)
        self._client, self._namespace = client, namespace
        self._principal, self._owned = principal, owned
        self._topic = feed.check_topic(topic)
        start = feed.check_cursor(after, field="Last-Event-ID")
        try:
            self.position = start or feed.last_id(client, namespace)
        except redis.RedisError as exc:
            raise _redis_down(exc) from exc

    def next(self, block_ms: int) -> list[dict[str, Any]]:
        """The next visible entries (JSON objects), or [] after ``block_ms`` of nothing."""
        entries, self.position = feed.wait_for_new(
            self._client, self._namespace, self.position, block_ms=block_ms
        )
        shown = feed.visible(
            entries,
            agent_id=self._principal.agent_id,
            admin=self._principal.is_admin,
            owned=self._owned,
            topic=self._topic,
        )
        return [e.public() for e in shown]
