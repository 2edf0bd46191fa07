"""Who holds a queued or running run: reservations, leases, and its execute_run message.

None of these change a run's status (see :mod:`.run_states`); they move ``lease_owner``,
``leased_until`` and ``published_at``, always compared with the database's clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries.jsonb import among
from ordinaut.store.queries.render import literal
from ordinaut.vocabulary import RunStatus

_RESERVE_RUNS = sa.text(
    f"""
    UPDATE task_run
    SET lease_owner = :owner, leased_until = now() + make_interval(secs => :lease_seconds)
    WHERE id = ANY(:ids) AND status = {literal(RunStatus.QUEUED)}
    """
)


def reserve_runs(
    conn: Connection, run_ids: Sequence[uuid.UUID], owner: str, lease_seconds: float
) -> None:
    """Mark queued runs as held by ``owner`` (whose message it has) for one lease.

    Advisory only — any worker may still claim them — but a reservation that runs out tells
    the sweeper their message died with its worker.
    """
    if run_ids:
        conn.execute(
            _RESERVE_RUNS,
            {"ids": list(run_ids), "owner": owner, "lease_seconds": lease_seconds},
        )


_EXTEND_LEASE = sa.text(
    f"""
    UPDATE task_run SET leased_until = now() + make_interval(secs => :lease_seconds)
    WHERE lease_owner = :owner
      AND ((id = :run_id AND status = {literal(RunStatus.RUNNING)})
           OR (id = ANY(:reserved) AND status = {literal(RunStatus.QUEUED)}))
    RETURNING id, status
    """
)


def extend_lease(
    conn: Connection,
    run_id: uuid.UUID,
    owner: str,
    lease_seconds: float,
    reserved: Sequence[uuid.UUID] = (),
) -> bool:
    """Push the lease (and our reservations) forward; False when the run is no longer ours
    (reaped or canceled)."""
    rows = conn.execute(
        _EXTEND_LEASE,
        {
            "run_id": run_id,
            "owner": owner,
            "lease_seconds": lease_seconds,
            "reserved": list(reserved),
        },
    ).all()
    return any(r.id == run_id and r.status == RunStatus.RUNNING for r in rows)


_MARK_PUBLISHED = sa.text(
    "UPDATE task_run SET published_at = :at WHERE id = ANY(:ids) AND published_at IS NULL"
)


def mark_published(conn: Connection, run_ids: Sequence[uuid.UUID], at: datetime) -> None:
    """Record that execute_run messages went out at ``at`` (whatever the runs' states now)."""
    if run_ids:
        conn.execute(_MARK_PUBLISHED, {"ids": list(run_ids), "at": at})


def stamp_published_sql(param: str) -> str:
    """The UPDATE recording when runs' messages went out, from ``:param`` ([{id, at}])."""
    return f"""
    UPDATE task_run AS r SET published_at = v.at
    FROM jsonb_to_recordset(CAST(:{param} AS jsonb)) AS v(id uuid, at timestamptz)
    WHERE r.id = v.id AND r.published_at IS NULL AND {among("r.id", param)}
    RETURNING r.id
    """


_MARK_PUBLISHED_AT = sa.text(stamp_published_sql("rows"))


def stamps_batch(published: Sequence[tuple[uuid.UUID, datetime]]) -> str:
    """The JSON parameter of :func:`mark_published_at`."""
    return json.dumps([{"id": str(run_id), "at": at.isoformat()} for run_id, at in published])


def mark_published_at(conn: Connection, published: Sequence[tuple[uuid.UUID, datetime]]) -> None:
    """Record when each run's execute_run message went out (one statement, any count)."""
    if published:
        conn.execute(_MARK_PUBLISHED_AT, {"rows": stamps_batch(published)})


@dataclass(frozen=True)
class StaleRun:
    """A queued run whose message is missing, stamped to be published again."""

    id: uuid.UUID
    priority: int
    title: str = ""
    worker_pool: str | None = None


_REPUBLISH_STALE = sa.text(
    f"""
    UPDATE task_run SET published_at = now(), lease_owner = NULL, leased_until = NULL
    WHERE id IN (SELECT id FROM task_run
                 WHERE status = {literal(RunStatus.QUEUED)}
                   AND ((published_at IS NULL AND created_at < :stale_before)
                        OR (published_at < :republish_before AND leased_until IS NULL)
                        OR leased_until < now())
                 ORDER BY priority, created_at
                 LIMIT :limit
                 FOR UPDATE SKIP LOCKED)
    RETURNING id, priority, worker_pool,
              (SELECT title FROM task WHERE task.id = task_run.task_id) AS title
    """
)


def take_stale_queued_runs(
    conn: Connection,
    stale_before: datetime,
    republish_before: datetime,
    limit: int,
) -> list[StaleRun]:
    """Queued runs without a live message: never published (created before
    ``stale_before``), published before ``republish_before`` and never claimed nor reserved
    (a live reservation means a worker holds their message), or reserved by a worker whose
    reservation ran out (it died holding their message; the database's clock decides, like
    every lease).

    Stamps them published now, drops the reservation and returns them; the caller
    publishes before it commits, so a failed publish rolls it all back for the next sweep.
    """
    rows = conn.execute(
        _REPUBLISH_STALE,
        {
            "stale_before": stale_before,
            "republish_before": republish_before,
            "limit": limit,
        },
    ).all()
    return [StaleRun(r.id, r.priority, r.title, r.worker_pool) for r in rows]
