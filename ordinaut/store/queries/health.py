"""Is the database answering, and is there maintenance to do?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries.render import literal
from ordinaut.store.queries.suspension import DUE_RESUME
from ordinaut.vocabulary import RunStatus

_PING = sa.text("SELECT 1")


def ping(conn: Connection) -> None:
    """One round trip; raises when the database does not answer."""
    conn.execute(_PING)


@dataclass(frozen=True)
class Backlog:
    """What the periodic maintenance pass has to do (all False when the stack is idle)."""

    expired_leases: bool  # running runs whose lease ran out (the reaper's work)
    stale_queued: bool  # queued runs without a live message (the sweeper's work)
    dispatchable: bool  # due_work whose not_before came, or a suspended run's resume_at
    # (dispatch's work)
    unrelayed: bool  # outbox rows not yet on the stream (the relay's work)


_BACKLOG = sa.text(
    f"""
    SELECT EXISTS (SELECT 1 FROM task_run
                   WHERE status = {literal(RunStatus.RUNNING)} AND leased_until < now()),
           EXISTS (SELECT 1 FROM task_run
                   WHERE status = {literal(RunStatus.QUEUED)}
                     AND ((published_at IS NULL AND created_at < :stale_before)
                          OR published_at < :republish_before
                          OR leased_until < now())),
           EXISTS (SELECT 1 FROM due_work WHERE not_before <= :now) OR {DUE_RESUME},
           EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)
    """
)


def backlog(
    conn: Connection, now: datetime, *, stale_before: datetime, republish_before: datetime
) -> Backlog:
    """One read-only round trip: which maintenance jobs have something to do.

    The conditions are those of the jobs' own statements (reap, sweep, lease due work,
    relay), each answered from an index, so an idle stack costs this query and no commit.
    """
    row = conn.execute(
        _BACKLOG,
        {"now": now, "stale_before": stale_before, "republish_before": republish_before},
    ).one()
    return Backlog(bool(row[0]), bool(row[1]), bool(row[2]), bool(row[3]))
