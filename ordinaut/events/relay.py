"""The outbox relay: Postgres outbox rows → the Redis stream ``<namespace>:events``.

Every state change writes its event to the ``outbox`` table in the same transaction, so an
event exists exactly when its change committed. The relay (a beat entry on the control
queue) takes the oldest unpublished rows with ``FOR UPDATE SKIP LOCKED``, ``XADD``s them in
order, and marks them published in the same transaction. If Redis is down nothing is marked
and the next pass retries: an event may be appended twice after a crash between XADD and
COMMIT (at-least-once), each entry carries the outbox ``id`` so consumers can de-duplicate,
and nothing is ever lost. The stream is capped (approximately) at ``MAX_STREAM_LENGTH``.
No entry carries a secret value: payloads are redacted on the way out
(:mod:`ordinaut.tools.redact`), whatever wrote them.
"""

from __future__ import annotations

import json
import os

import redis
from redis.typing import EncodableT, FieldT
from sqlalchemy.engine import Engine

from ordinaut.store import queries
from ordinaut.tools import redact

MAX_STREAM_LENGTH = 100_000


def stream_key(namespace: str) -> str:
    """The Redis stream events are appended to."""
    return f"{namespace}:events"


def relay_batch(engine: Engine, client: redis.Redis, namespace: str, *, limit: int = 500) -> int:
    """Publish up to ``limit`` outbox rows; returns how many were published."""
    redactor = redact.redactor_for(os.environ)
    with engine.begin() as conn:
        rows = queries.take_unpublished(conn, limit)
        if not rows:
            return 0
        pipe = client.pipeline(transaction=False)
        for row in rows:
            fields: dict[FieldT, EncodableT] = {
                "outbox_id": row.id,
                "topic": row.topic,
                "payload": json.dumps(redactor.value(row.payload), separators=(",", ":")),
                "at": row.created_at.isoformat(),
            }
            pipe.xadd(stream_key(namespace), fields, maxlen=MAX_STREAM_LENGTH, approximate=True)
        pipe.execute()
        queries.mark_relayed(conn, [row.id for row in rows])
    return len(rows)


def relay(engine: Engine, client: redis.Redis, namespace: str, *, max_batches: int = 20) -> int:
    """Relay until the outbox is drained (bounded); returns the number published."""
    total = 0
    for _ in range(max_batches):
        published = relay_batch(engine, client, namespace)
        total += published
        if published < 500:
            break
    return total
