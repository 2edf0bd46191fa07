"""pending_change rows: creates and updates of tasks that wait for a person's approval."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut.store.tables import agent, pending_change
from ordinaut.vocabulary import ChangeStatus

_COLUMNS = [*pending_change.c, agent.c.name.label("agent_name")]


def insert_change(conn: Connection, values: Mapping[str, Any]) -> Row[Any]:
    """Store a pending change (``values`` are its columns); returns it as listed."""
    change_id = conn.execute(
        sa.insert(pending_change).values(**values).returning(pending_change.c.id)
    ).scalar_one()
    found = get_change(conn, change_id)
    assert found is not None
    return found


def get_change(conn: Connection, change_id: uuid.UUID, *, lock: bool = False) -> Row[Any] | None:
    """One change with its agent's name; ``lock`` holds it until commit."""
    query = (
        sa.select(*_COLUMNS)
        .join(agent, agent.c.id == pending_change.c.agent_id)
        .where(pending_change.c.id == change_id)
    )
    if lock:
        query = query.with_for_update(of=pending_change)
    return conn.execute(query).first()


def change_by_key(conn: Connection, agent_id: uuid.UUID, key: str) -> Row[Any] | None:
    """The change an agent proposed with this Idempotency-Key, if any."""
    query = (
        sa.select(*_COLUMNS)
        .join(agent, agent.c.id == pending_change.c.agent_id)
        .where(pending_change.c.agent_id == agent_id, pending_change.c.idempotency_key == key)
    )
    return conn.execute(query).first()


def count_pending(conn: Connection, agent_id: uuid.UUID) -> int:
    """How many changes of an agent wait for a decision."""
    query = sa.select(sa.func.count()).where(
        pending_change.c.agent_id == agent_id,
        pending_change.c.status == ChangeStatus.PENDING.value,
    )
    return int(conn.execute(query).scalar_one())


def list_changes(
    conn: Connection,
    *,
    agent_id: uuid.UUID | None,
    status: ChangeStatus | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Changes oldest first (by created_at, then id), at most ``limit``; ``agent_id`` limits
    them to that agent's proposals, ``after`` is the (created_at, id) a page continues after."""
    query: sa.Select[Any] = sa.select(*_COLUMNS).join(
        agent, agent.c.id == pending_change.c.agent_id
    )
    if agent_id is not None:
        query = query.where(pending_change.c.agent_id == agent_id)
    if status is not None:
        query = query.where(pending_change.c.status == status.value)
    if after is not None:
        query = query.where(
            sa.tuple_(pending_change.c.created_at, pending_change.c.id) > sa.tuple_(*after)
        )
    order = (pending_change.c.created_at, pending_change.c.id)
    return conn.execute(query.order_by(*order).limit(limit)).all()


def decide_change(
    conn: Connection,
    change_id: uuid.UUID,
    *,
    status: ChangeStatus,
    by: uuid.UUID,
    at: datetime,
    comment: str | None,
    result_task_id: uuid.UUID | None = None,
) -> bool:
    """pending → ``status``, with who decided, when and why; False when it was not pending."""
    result = conn.execute(
        sa.update(pending_change)
        .where(
            pending_change.c.id == change_id,
            pending_change.c.status == ChangeStatus.PENDING.value,
        )
        .values(
            status=status.value,
            decided_by=by,
            decided_at=at,
            comment=comment,
            result_task_id=result_task_id,
        )
    )
    return bool(result.rowcount)
