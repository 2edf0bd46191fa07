"""Dispatch's statements: lease due_work, lock keys, check limits and dedupe, track publishing."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

# Rows that could become runs right now. The concurrency and overlap filters read a snapshot
# taken before any lock, so they only keep hopeless rows out of the batch (no head-of-line
# blocking behind a full key); dispatch decides again under advisory locks.
_LEASE_DUE_WORK = sa.text(
    """
    SELECT d.id, d.task_id, d.run_at, d.not_before, d.trigger, d.attempt, d.priority, d.event,
           d.created_at AS work_created_at,
           t.status AS task_status, t.dedupe_key, t.dedupe_window_seconds,
           t.concurrency_key, t.concurrency_limit, t.overlap_policy
    FROM due_work d JOIN task t ON t.id = d.task_id
    WHERE d.not_before <= :now AND t.status <> 'paused'
      AND (t.concurrency_key IS NULL
           OR (SELECT count(*) FROM task_run r
               WHERE r.concurrency_key = t.concurrency_key
                 AND r.status IN ('queued', 'running')) < t.concurrency_limit)
      AND (t.overlap_policy = 'allow'
           OR (t.overlap_policy = 'skip' AND d.trigger <> 'retry')
           OR NOT EXISTS (SELECT 1 FROM task_run r
                          WHERE r.task_id = d.task_id AND r.status IN ('queued', 'running')))
    ORDER BY d.priority, d.not_before, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


def lease_due_work(conn: Connection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Lock the most urgent dispatchable due_work rows: priority 1 first, then not_before."""
    return conn.execute(_LEASE_DUE_WORK, {"now": now, "limit": limit}).all()


_DELETE_DUE_WORK = sa.text("DELETE FROM due_work WHERE id = ANY(:ids)")


def delete_due_work(conn: Connection, ids: Iterable[int]) -> None:
    """Remove due_work rows that became runs (in the same transaction as the runs)."""
    id_list = list(ids)
    if id_list:
        conn.execute(_DELETE_DUE_WORK, {"ids": id_list})


_LOCK_KEYS = sa.text(
    """
    SELECT count(pg_advisory_xact_lock(k.a, k.b))
    FROM (SELECT a, b FROM unnest(CAST(:a AS int[]), CAST(:b AS int[])) AS u(a, b)
          ORDER BY a, b) AS k
    """
)


def advisory_key(space: str, key: str) -> tuple[int, int]:
    """The (int, int) advisory lock id of ``key`` in lock space ``space``."""
    return zlib.crc32(space.encode()) - 2**31, zlib.crc32(key.encode()) - 2**31


def lock_keys(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Take transaction-scoped advisory locks on (space, key) pairs, in one global order.

    Every caller locks in ascending (space hash, key hash) order, so two dispatchers that
    need overlapping sets of keys queue behind each other instead of deadlocking.
    """
    ids = sorted({advisory_key(space, key) for space, key in keys})
    if ids:
        conn.execute(_LOCK_KEYS, {"a": [i[0] for i in ids], "b": [i[1] for i in ids]})


_OPEN_RUNS_BY_KEY = sa.text(
    """
    SELECT concurrency_key, count(*) FROM task_run
    WHERE concurrency_key = ANY(:keys) AND status IN ('queued', 'running')
    GROUP BY concurrency_key
    """
)


def open_runs_by_key(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """Runs holding a slot of each concurrency key (queued ones are about to run)."""
    key_list = sorted(set(keys))
    if not key_list:
        return {}
    rows = conn.execute(_OPEN_RUNS_BY_KEY, {"keys": key_list}).all()
    return {str(r[0]): int(r[1]) for r in rows}


_TASKS_WITH_OPEN_RUNS = sa.text(
    """
    SELECT DISTINCT task_id FROM task_run
    WHERE task_id = ANY(:ids) AND status IN ('queued', 'running')
    """
)


def tasks_with_open_runs(conn: Connection, task_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``task_ids`` that have a run queued or running."""
    id_list = sorted(set(task_ids))
    if not id_list:
        return set()
    return {r[0] for r in conn.execute(_TASKS_WITH_OPEN_RUNS, {"ids": id_list})}


_RECENT_DEDUPE_RUN = sa.text(
    """
    SELECT id FROM task_run
    WHERE dedupe_key = :key
      AND status IN ('queued', 'running', 'succeeded', 'waiting_approval')
      AND scheduled_for > :since AND scheduled_for < :until
    ORDER BY scheduled_for DESC LIMIT 1
    """
)


def recent_dedupe_run(
    conn: Connection, key: str, since: datetime, until: datetime
) -> uuid.UUID | None:
    """A live or successful run with dedupe key ``key`` scheduled inside (since, until)."""
    value: uuid.UUID | None = conn.execute(
        _RECENT_DEDUPE_RUN, {"key": key, "since": since, "until": until}
    ).scalar()
    return value


_MARK_PUBLISHED = sa.text(
    "UPDATE task_run SET published_at = :at WHERE id = ANY(:ids) AND published_at IS NULL"
)


def mark_published(conn: Connection, run_ids: Sequence[uuid.UUID], at: datetime) -> None:
    """Record that execute_run messages went out at ``at`` (whatever the runs' states now)."""
    if run_ids:
        conn.execute(_MARK_PUBLISHED, {"ids": list(run_ids), "at": at})


_REPUBLISH_STALE = sa.text(
    """
    UPDATE task_run SET published_at = now(), lease_owner = NULL, leased_until = NULL
    WHERE id IN (SELECT id FROM task_run
                 WHERE status = 'queued'
                   AND ((published_at IS NULL AND created_at < :stale_before)
                        OR published_at < :republish_before
                        OR leased_until < now())
                 ORDER BY priority, created_at
                 LIMIT :limit
                 FOR UPDATE SKIP LOCKED)
    RETURNING id, priority
    """
)


def take_stale_queued_runs(
    conn: Connection,
    stale_before: datetime,
    republish_before: datetime,
    limit: int,
) -> Sequence[Row[Any]]:
    """Queued runs without a live message: never published (created before
    ``stale_before``), published before ``republish_before`` and never claimed, or reserved
    by a worker whose reservation ran out (it died holding their message; the database's
    clock decides, like every lease).

    Stamps them published now, drops the reservation and returns (id, priority); the caller
    publishes before it commits, so a failed publish rolls it all back for the next sweep.
    """
    return conn.execute(
        _REPUBLISH_STALE,
        {
            "stale_before": stale_before,
            "republish_before": republish_before,
            "limit": limit,
        },
    ).all()
