"""Webhook deliveries: written per (agent, run event), claimed for a POST, finished or retried."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.tables import agent, webhook_delivery

_ENQUEUE = sa.text(
    """
    INSERT INTO webhook_delivery (agent_id, outbox_id, topic, body)
    SELECT a.id, v.outbox_id, v.topic, v.body
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(outbox_id bigint, topic text, body text, task_id uuid)
    JOIN task t ON t.id = v.task_id
    JOIN agent a ON a.id = t.created_by
    WHERE a.webhook_url IS NOT NULL AND a.webhook_secret IS NOT NULL AND a.revoked_at IS NULL
    ON CONFLICT (agent_id, outbox_id) DO NOTHING
    """
)


def enqueue_deliveries(conn: Connection, events: Sequence[dict[str, Any]]) -> int:
    """One pending delivery per event (``outbox_id``, ``topic``, ``body``, ``task_id``) to the
    task owner's webhook, if it has one; an (agent, event) pair is written once."""
    if not events:
        return 0
    return int(conn.execute(_ENQUEUE, {"rows": json.dumps(events, default=str)}).rowcount)


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for one attempt, with where and how to send it."""

    id: int
    agent_id: uuid.UUID
    topic: str
    body: str
    attempts: int
    url: str | None
    secret: str | None


_CLAIM = sa.text(
    """
    UPDATE webhook_delivery d SET next_attempt_at = :hold_until
    FROM agent a
    WHERE a.id = d.agent_id AND d.id IN (
        SELECT id FROM webhook_delivery
        WHERE status = 'pending' AND next_attempt_at <= :now
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING d.id, d.agent_id, d.topic, d.body, d.attempts, a.webhook_url, a.webhook_secret
    """
)


def claim_deliveries(
    conn: Connection, now: datetime, *, hold_until: datetime, limit: int
) -> list[DueDelivery]:
    """Take due deliveries: moved to ``hold_until`` so no other worker sends them meanwhile
    (a worker that dies mid-POST leaves them to be retried then)."""
    rows = conn.execute(_CLAIM, {"now": now, "hold_until": hold_until, "limit": limit}).all()
    return [
        DueDelivery(r.id, r.agent_id, r.topic, r.body, r.attempts, r.webhook_url, r.webhook_secret)
        for r in rows
    ]


_FINISH = sa.text(
    """
    UPDATE webhook_delivery
    SET attempts = attempts + 1,
        attempt_log = attempt_log || CAST(:attempt AS jsonb),
        status = :status,
        next_attempt_at = coalesce(:next_attempt_at, next_attempt_at),
        finished_at = CASE WHEN :status = 'pending' THEN NULL ELSE CAST(:now AS timestamptz) END
    WHERE id = :id
    """
)


def record_attempt(
    conn: Connection,
    delivery_id: int,
    attempt: dict[str, Any],
    *,
    status: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    """Append one attempt's outcome; ``status`` pending (retry at ``next_attempt_at``),
    delivered or failed."""
    conn.execute(
        _FINISH,
        {
            "id": delivery_id,
            "attempt": json.dumps([attempt], default=str),
            "status": status,
            "next_attempt_at": next_attempt_at,
            "now": now,
        },
    )


def list_deliveries(
    conn: Connection, agent_id: uuid.UUID, *, before: int | None, limit: int
) -> Sequence[Any]:
    """An agent's deliveries, newest first (``before``: a delivery id to page on)."""
    query = sa.select(
        webhook_delivery.c.id,
        webhook_delivery.c.outbox_id,
        webhook_delivery.c.topic,
        webhook_delivery.c.status,
        webhook_delivery.c.attempts,
        webhook_delivery.c.attempt_log,
        webhook_delivery.c.next_attempt_at,
        webhook_delivery.c.created_at,
        webhook_delivery.c.finished_at,
    ).where(webhook_delivery.c.agent_id == agent_id)
    if before is not None:
        query = query.where(webhook_delivery.c.id < before)
    return conn.execute(query.order_by(webhook_delivery.c.id.desc()).limit(limit)).all()


def set_webhook(conn: Connection, agent_id: uuid.UUID, url: str | None, secret: str | None) -> None:
    """Set (or clear) an agent's webhook URL and signing secret."""
    conn.execute(
        sa.update(agent)
        .where(agent.c.id == agent_id)
        .values(webhook_url=url, webhook_secret=secret)
    )
