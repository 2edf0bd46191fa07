"""Beat's write for one batch, as ONE statement: runs, due_work, skipped runs and their
events, the tasks advanced (and their status events) and the publish times of the runs the
previous batch created.

Every part is the statement its own module runs standalone (the SQL comes from there), here
as data-modifying CTEs of one statement: one round trip instead of five, inside beat's
transaction. An empty part is an empty JSON array, which writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import driver
from ordinaut.store.queries.due_work import due_work_batch, insert_due_work_sql
from ordinaut.store.queries.leases import stamp_published_sql, stamps_batch
from ordinaut.store.queries.runs import (
    insert_runs_sql,
    runs_batch,
    skipped_batch,
    skipped_events_sql,
    skipped_runs_sql,
)
from ordinaut.store.queries.tasks import advance_batch, advance_tasks_sql, advanced_events_sql

_WRITE_FIRED = sa.text(
    f"""
    WITH stamped AS ({stamp_published_sql("stamps")}),
         made AS ({insert_runs_sql("runs")}),
         work AS ({insert_due_work_sql("work")}),
         skipped AS ({skipped_runs_sql("skipped")}),
         skipped_events AS ({skipped_events_sql("skipped")}),
         moved AS ({advance_tasks_sql("moves")}),
         moved_events AS ({advanced_events_sql("moved")})
    SELECT (SELECT coalesce(array_agg(id), '{{}}') FROM made) AS made,
           (SELECT count(*) FROM work) AS work
    """
)


def write_fired(
    conn: Connection,
    *,
    runs: Sequence[Mapping[str, Any]],
    work: Sequence[Mapping[str, Any]],
    skipped: Sequence[Mapping[str, Any]],
    moves: Sequence[Mapping[str, Any]],
    stamps: Sequence[tuple[uuid.UUID, datetime]],
) -> tuple[list[uuid.UUID | None], int]:
    """Write one fired batch (see the module docstring) in one statement.

    Returns the ids of ``runs`` in order (``None`` for an occurrence that already had its
    run: another beat won the race) and the number of due_work rows added.
    """
    ids, runs_param = runs_batch(runs)
    row = driver.first(
        conn,
        _WRITE_FIRED,
        {
            "stamps": stamps_batch(stamps),
            "runs": runs_param,
            "work": due_work_batch(work),
            "skipped": skipped_batch(skipped),
            "moves": advance_batch(moves),
        },
    )
    made = set(row.made)
    return [run_id if run_id in made else None for run_id in ids], int(row.work)
