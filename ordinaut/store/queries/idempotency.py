"""Idempotency keys of create requests: claimed once, the first response stored for replays."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from ordinaut.store.tables import api_idempotency as idem


@dataclass(frozen=True)
class IdempotencyEntry:
    """The first request made with a key: what it was, and its response once finished."""

    operation: str
    request_hash: str
    response: Any  # None while the first request is still running


def claim_idempotency_key(
    conn: Connection, agent_id: uuid.UUID, key: str, operation: str, request_hash: str
) -> bool:
    """Claim (agent, key) for this request; False when it was claimed before.

    ``INSERT … ON CONFLICT DO NOTHING``: a concurrent claim of the same key waits on the row
    until the first transaction ends.
    """
    claimed = conn.execute(
        insert(idem)
        .values(agent_id=agent_id, key=key, operation=operation, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(idem.c.key)
    ).first()
    return claimed is not None


def idempotency_entry(conn: Connection, agent_id: uuid.UUID, key: str) -> IdempotencyEntry:
    """The stored entry of a claimed (agent, key)."""
    row = conn.execute(
        sa.select(idem.c.operation, idem.c.request_hash, idem.c.response).where(
            idem.c.agent_id == agent_id, idem.c.key == key
        )
    ).one()
    return IdempotencyEntry(row.operation, row.request_hash, row.response)


def save_idempotent_response(
    conn: Connection, agent_id: uuid.UUID, key: str, response: Any
) -> None:
    """Store the response (JSON) of the request that claimed (agent, key)."""
    conn.execute(
        sa.update(idem)
        .where(idem.c.agent_id == agent_id, idem.c.key == key)
        .values(response=response)
    )


def idempotency_known(conn: Connection, agent_id: uuid.UUID, key: str) -> bool:
    """True when (agent, key) was already claimed by a request."""
    query = sa.select(idem.c.key).where(idem.c.agent_id == agent_id, idem.c.key == key)
    return conn.execute(query).first() is not None
