"""External events and the audit trail as callers see them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.errors import PayloadTooLarge
from ordinaut.service.auth import Principal
from ordinaut.service.models import EventAccepted, EventIn
from ordinaut.store import queries
from ordinaut.vocabulary import Scope

MAX_EVENT_BYTES = 64 * 1024


def publish_event(
    conn: Connection, principal: Principal, body: EventIn, *, now: datetime
) -> EventAccepted:
    """Record an external event in the outbox (``event.external.<topic>``)."""
    principal.require(Scope.EVENTS_PUBLISH)
    size = len(json.dumps(body.payload))
    if size > MAX_EVENT_BYTES:
        raise PayloadTooLarge(
            f"event payload is {size} bytes; the limit is {MAX_EVENT_BYTES}", field="payload"
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
                    "payload": body.payload,
                    "agent_id": str(principal.agent_id),
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
