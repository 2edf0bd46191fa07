"""The audit log: who changed what, written in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.tables import audit_log


def insert_audit(
    conn: Connection,
    *,
    actor: uuid.UUID | None,
    action: str,
    subject_id: uuid.UUID | None = None,
    details: Any = None,
) -> None:
    """Write one audit entry (``details`` must be JSON-serialisable)."""
    conn.execute(
        sa.insert(audit_log).values(
            actor_agent_id=actor, action=action, subject_id=subject_id, details=details
        )
    )


def list_audit(
    conn: Connection, *, subject_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """Audit entries, newest first, optionally about one subject."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if subject_id is not None:
        query = query.where(audit_log.c.subject_id == subject_id)
    return [dict(r._mapping) for r in conn.execute(query)]
