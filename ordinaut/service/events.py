"""External events and the audit trail as callers see them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.errors import PayloadTooLarge
from ordinaut.jsonsize import json_size
from ordinaut.service.auth import Principal
from ordinaut.service.models import EventAccepted, EventIn
from ordinaut.store import queries
from ordinaut.tools.redact import Redactor
from ordinaut.vocabulary import Scope


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
