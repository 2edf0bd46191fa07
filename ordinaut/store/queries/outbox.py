"""Events written to the outbox in the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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
