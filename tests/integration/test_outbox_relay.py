"""Guarantee 9: events go to a Postgres outbox with their change and reach Redis Streams,
even when Redis goes away for a while (a real Redis server is stopped and restarted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.embedded import EmbeddedRedis
from ordinaut.events.relay import relay, stream_key
from ordinaut.store import queries
from ordinaut.store.tables import outbox
from tests.support import stream_fields


def emit(engine: Engine, n: int, start: int) -> None:
    with engine.begin() as conn:
        queries.emit(conn, [("test.event", {"n": i}) for i in range(start, start + n)])


def unpublished(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.published_at.is_(None))
            ).scalar_one()
        )


def test_relay_survives_redis_outage(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url, decode_responses=True, protocol=3)
    try:
        emit(engine, 3, 0)
        assert relay(engine, client, settings.namespace) == 3

        server.stop()
        emit(engine, 4, 3)
        with pytest.raises(redis.ConnectionError):
            relay(engine, client, settings.namespace)
        assert unpublished(engine) == 4  # nothing marked while Redis was away

        server.start()
        assert relay(engine, client, settings.namespace) == 4
        assert unpublished(engine) == 0
        entries = stream_fields(client, stream_key(settings.namespace))
        numbers = [json.loads(f["payload"])["n"] for f in entries]
        assert numbers == list(range(7))  # all of them, in order, once
        assert [f["topic"] for f in entries] == ["test.event"] * 7
        assert relay(engine, client, settings.namespace) == 0
    finally:
        client.close()
        server.stop()
