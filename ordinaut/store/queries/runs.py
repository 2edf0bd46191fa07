"""Creating task_run rows in bulk: runs dispatch makes, and skips recorded on request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import jsonb

_RUN_FIELDS = frozenset(
    {
        "task_id",
        "status",
        "trigger",
        "scheduled_for",
        "not_before",
        "work_created_at",
        "attempt",
        "priority",
        "concurrency_key",
        "dedupe_key",
        "event",
        "reason",
        "finished_at",
    }
)

_INSERT_RUNS = sa.text(
    """
    INSERT INTO task_run (id, task_id, status, trigger, scheduled_for, not_before,
                          work_created_at, attempt, priority, concurrency_key, dedupe_key,
                          event, reason, finished_at)
    SELECT CAST(v->>'id' AS uuid), CAST(v->>'task_id' AS uuid),
           CAST(coalesce(v->>'status', 'queued') AS run_status),
           coalesce(v->>'trigger', 'schedule'), CAST(v->>'scheduled_for' AS timestamptz),
           CAST(v->>'not_before' AS timestamptz), CAST(v->>'work_created_at' AS timestamptz),
           coalesce(CAST(v->>'attempt' AS int), 1), coalesce(CAST(v->>'priority' AS int), 5),
           v->>'concurrency_key', v->>'dedupe_key', NULLIF(v->'event', 'null'), v->>'reason',
           CAST(v->>'finished_at' AS timestamptz)
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e(v)
    """
)


def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Insert task_run rows (one statement, any count) and return their new ids, in order.

    Keys are task_run columns (``_RUN_FIELDS``); missing ones take the column defaults.
    """
    if not rows:
        return []
    unknown = set().union(*rows) - _RUN_FIELDS
    if unknown:
        raise ValueError(f"insert_runs: not task_run fields: {sorted(unknown)}")
    ids = [uuid.uuid4() for _ in rows]
    batch = [{**row, "id": run_id} for run_id, row in zip(ids, rows, strict=True)]
    conn.execute(_INSERT_RUNS, {"rows": jsonb.dumps(batch)})
    return ids
