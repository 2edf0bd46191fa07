"""Agent rows: identities, their scopes and token hashes (never a token)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.tables import agent


@dataclass(frozen=True)
class Agent:
    """One agent as stored."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    token_hash: str | None
    webhook_url: str | None
    created_at: datetime
    revoked_at: datetime | None
    limits: Any = None  # the JSON of its AgentLimits (ordinaut.policy.agent_limits), or None


def _agent(row: Row[Any]) -> Agent:
    # the record's fields only: the row has more columns (quiet_hours, budgets:
    # ordinaut.policy; the webhook secret, which only a delivery reads: queries.webhooks)
    data = {
        f.name: row._mapping[f.name] for f in dataclasses.fields(Agent) if f.name in row._mapping
    }
    return Agent(**{**data, "scopes": tuple(row.scopes)})


def agent_by_token(conn: Connection, token_hash: str) -> Agent | None:
    """The live (not revoked) agent whose token hashes to ``token_hash``."""
    row = conn.execute(
        sa.select(agent).where(agent.c.token_hash == token_hash, agent.c.revoked_at.is_(None))
    ).first()
    return _agent(row) if row is not None else None


def get_agent(conn: Connection, agent_id: uuid.UUID, *, lock: bool = False) -> Agent | None:
    """One agent by id, revoked or not; ``lock`` holds it (``FOR UPDATE``) until commit.

    Claiming a run takes ``FOR KEY SHARE`` on its owner (:func:`.run_states.claim_run`), so
    a revocation holding this lock and a claim are ordered: one sees the other.
    """
    query = sa.select(agent).where(agent.c.id == agent_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _agent(row) if row is not None else None


def agent_named(conn: Connection, name: str) -> Agent | None:
    """One agent by its unique name."""
    row = conn.execute(sa.select(agent).where(agent.c.name == name)).first()
    return _agent(row) if row is not None else None


def list_agents(conn: Connection) -> list[Agent]:
    """Every agent, oldest first."""
    rows = conn.execute(sa.select(agent).order_by(agent.c.created_at, agent.c.name)).all()
    return [_agent(r) for r in rows]


def insert_agent(conn: Connection, name: str, scopes: Sequence[str], token_hash: str) -> uuid.UUID:
    """Store a new agent; returns its id."""
    agent_id: uuid.UUID = conn.execute(
        sa.insert(agent)
        .values(name=name, scopes=list(scopes), token_hash=token_hash)
        .returning(agent.c.id)
    ).scalar_one()
    return agent_id


def set_agent_token(
    conn: Connection, agent_id: uuid.UUID, token_hash: str, *, reinstate: bool = False
) -> None:
    """Replace an agent's token hash; ``reinstate`` also lifts a revocation."""
    values: dict[str, Any] = {"token_hash": token_hash}
    if reinstate:
        values["revoked_at"] = None
    conn.execute(sa.update(agent).where(agent.c.id == agent_id).values(values))


def set_agent_webhook(conn: Connection, agent_id: uuid.UUID, webhook_url: str | None) -> None:
    """Set where an agent's notifications go."""
    conn.execute(sa.update(agent).where(agent.c.id == agent_id).values(webhook_url=webhook_url))


def revoke_agent(conn: Connection, agent_id: uuid.UUID) -> datetime:
    """Revoke an agent for good: stamped ``revoked_at``, token hash dropped; returns the stamp.

    The stamp is the moment of this statement (``clock_timestamp()``), not of the
    transaction's start: taken under the agent's lock, it is later than the start of every
    run claimed before (a run claimed after sees the revocation and is refused).
    """
    stamp: datetime = conn.execute(
        sa.update(agent)
        .where(agent.c.id == agent_id)
        .values(revoked_at=sa.func.clock_timestamp(), token_hash=None)
        .returning(agent.c.revoked_at)
    ).scalar_one()
    return stamp


def set_agent_limits(conn: Connection, agent_id: uuid.UUID, limits: Any) -> bool:
    """Replace an agent's limits (JSON, or None for none); False when there is no such agent."""
    result = conn.execute(sa.update(agent).where(agent.c.id == agent_id).values(limits=limits))
    return bool(result.rowcount)
