"""Retention of the event side's history: the fire ledger, condition checks, deliveries."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# each statement removes at most :limit rows: a big backlog is cleared over several passes
_PRUNE = {
    "event_fire": sa.text(
        "DELETE FROM event_fire WHERE ctid IN (SELECT ctid FROM event_fire "
        "WHERE fired_at < :before LIMIT :limit)"
    ),
    "condition_check": sa.text(
        "DELETE FROM condition_check WHERE id IN (SELECT id FROM condition_check "
        "WHERE checked_at < :before LIMIT :limit)"
    ),
    "webhook_delivery": sa.text(
        "DELETE FROM webhook_delivery WHERE id IN (SELECT id FROM webhook_delivery "
        "WHERE status <> 'pending' AND finished_at < :before LIMIT :limit)"
    ),
}


def prune_event_history(conn: Connection, before: datetime, *, limit: int) -> dict[str, int]:
    """Delete ledger rows, checks and finished deliveries older than ``before`` (at most
    ``limit`` of each); how many of each went."""
    return {
        table: int(conn.execute(statement, {"before": before, "limit": limit}).rowcount)
        for table, statement in _PRUNE.items()
    }
