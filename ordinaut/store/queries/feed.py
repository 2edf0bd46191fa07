"""What the event feed needs from the database: which of some tasks an agent owns."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_OWNED = sa.text("SELECT id FROM task WHERE id = ANY(:ids) AND created_by = :agent")


def owned_tasks(
    conn: Connection, agent_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of ``ids`` that are tasks of ``agent_id``."""
    if not ids:
        return set()
    return set(conn.execute(_OWNED, {"ids": list(ids), "agent": agent_id}).scalars())
