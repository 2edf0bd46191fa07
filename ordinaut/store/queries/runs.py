"""task_run rows: created (by beat and dispatch, and as records of what did not run) and read.

Every change of a run's status lives in :mod:`.run_states`, along a declared transition.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut import limits
from ordinaut.store.queries import jsonb
from ordinaut.store.queries.render import literal, one_of
from ordinaut.store.queries.transitions import check_inserted, inserted
from ordinaut.store.tables import task, task_run
from ordinaut.vocabulary import RunStatus, Trigger

# runs that hold a concurrency slot or block their task's next occurrence (queued ones are
# about to run)
OPEN: Final = (RunStatus.QUEUED, RunStatus.RUNNING)

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
        "worker_pool",
        "decisions",
    }
)


# the runs the unique index ux_task_run_occurrence covers: fired occurrences (not records)
ONE_RUN_PER_OCCURRENCE: Final = (
    f"{one_of('trigger', (Trigger.SCHEDULE, Trigger.CATCH_UP))} "
    f"AND status <> {literal(RunStatus.SKIPPED)}"
)


def insert_runs_sql(param: str) -> str:
    """The INSERT of task_run rows from the JSON array ``:param`` (returns the new ids)."""
    return f"""
    INSERT INTO task_run (id, task_id, status, trigger, scheduled_for, not_before,
                          work_created_at, attempt, priority, concurrency_key, dedupe_key,
                          event, reason, finished_at, worker_pool, decisions)
    SELECT CAST(v->>'id' AS uuid), CAST(v->>'task_id' AS uuid),
           CAST(coalesce(v->>'status', {inserted(RunStatus.QUEUED)}) AS run_status),
           coalesce(v->>'trigger', {literal(Trigger.SCHEDULE)}),
           CAST(v->>'scheduled_for' AS timestamptz),
           CAST(v->>'not_before' AS timestamptz), CAST(v->>'work_created_at' AS timestamptz),
           coalesce(CAST(v->>'attempt' AS int), 1), coalesce(CAST(v->>'priority' AS int), 5),
           v->>'concurrency_key', v->>'dedupe_key', NULLIF(v->'event', 'null'), v->>'reason',
           CAST(v->>'finished_at' AS timestamptz), v->>'worker_pool',
           coalesce(NULLIF(v->'decisions', 'null'), '[]'::jsonb)
    FROM jsonb_array_elements(CAST(:{param} AS jsonb)) AS e(v)
    ON CONFLICT (task_id, scheduled_for, attempt) WHERE {ONE_RUN_PER_OCCURRENCE} DO NOTHING
    RETURNING id
    """


_INSERT_RUNS = sa.text(insert_runs_sql("rows"))


def runs_batch(rows: Sequence[Mapping[str, Any]]) -> tuple[list[uuid.UUID], str]:
    """New ids for ``rows`` and the JSON parameter that inserts them (see insert_runs)."""
    unknown = set().union(*rows) - _RUN_FIELDS if rows else set()
    if unknown:
        raise ValueError(f"insert_runs: not task_run fields: {sorted(unknown)}")
    for row in rows:
        if "status" in row:
            check_inserted(row["status"])
    ids = [uuid.uuid4() for _ in rows]
    batch = [{**row, "id": run_id} for run_id, row in zip(ids, rows, strict=True)]
    return ids, jsonb.dumps(batch)


def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID | None]:
    """Insert task_run rows (one statement, any count); their new ids, in order.

    Keys are task_run columns (``_RUN_FIELDS``); missing ones take the column defaults. A
    ``status`` must be one a run may be inserted with (``queued`` or ``skipped``). A
    scheduled occurrence (trigger ``schedule``/``catch_up``) that already has a run for the
    same attempt is not inserted again — its id is ``None`` — so two writers racing on one
    occurrence (two beats, or beat and dispatch) make one run between them.
    """
    if not rows:
        return []
    ids, batch = runs_batch(rows)
    made = set(conn.execute(_INSERT_RUNS, {"rows": batch}).scalars())
    return [run_id if run_id in made else None for run_id in ids]


def skipped_runs_sql(param: str) -> str:
    """The INSERT of skipped runs from ``:param`` (returns what their events need)."""
    return f"""
        INSERT INTO task_run (task_id, status, trigger, scheduled_for, attempt, priority,
                              reason, finished_at)
        SELECT v.task_id, {inserted(RunStatus.SKIPPED)}, v.trigger, v.scheduled_for, 1,
               v.priority, v.reason, v.finished_at
        FROM jsonb_to_recordset(CAST(:{param} AS jsonb))
             AS v(task_id uuid, trigger text, scheduled_for timestamptz, priority int,
                  reason text, finished_at timestamptz)
        RETURNING id, task_id, scheduled_for, reason
    """


def skipped_events_sql(runs: str) -> str:
    """The ``task.run.skipped`` events of the skipped runs returned by the CTE ``runs``."""
    return f"""
    INSERT INTO outbox (topic, payload)
    SELECT 'task.run.skipped',
           jsonb_build_object('task_id', task_id, 'run_id', id,
                              'scheduled_for', scheduled_for, 'reason', reason)
    FROM {runs}
    """


_RECORD_SKIPPED_RUNS = sa.text(
    f"WITH runs AS ({skipped_runs_sql('rows')}) {skipped_events_sql('runs')}"
)


def skipped_batch(rows: Sequence[Mapping[str, Any]]) -> str:
    """The JSON parameter of :func:`record_skipped_runs`."""
    return json.dumps(
        [
            {
                "task_id": str(r["task_id"]),
                "trigger": str(r["trigger"]),
                "scheduled_for": jsonb.iso(r["scheduled_for"]),
                "priority": r["priority"],
                "reason": r["reason"],
                "finished_at": jsonb.iso(r["finished_at"]),
            }
            for r in rows
        ]
    )


def record_skipped_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record occurrences that did not run as ``skipped`` runs, each with a
    ``task.run.skipped`` event. Rows: ``task_id``, ``trigger``, ``scheduled_for``,
    ``priority``, ``reason``, ``finished_at``. Returns the runs recorded."""
    if not rows:
        return 0
    return int(conn.execute(_RECORD_SKIPPED_RUNS, {"rows": skipped_batch(rows)}).rowcount)


_RUN_STATUS = sa.text("SELECT status FROM task_run WHERE id = :run_id")


def run_status(conn: Connection, run_id: uuid.UUID) -> RunStatus | None:
    """The run's current status, or None when there is no such run."""
    value = conn.execute(_RUN_STATUS, {"run_id": run_id}).scalar()
    return None if value is None else RunStatus(value)


_OPEN_RUNS_BY_KEY = sa.text(
    f"""
    SELECT concurrency_key, count(*) FROM task_run
    WHERE concurrency_key = ANY(:keys) AND {one_of("status", OPEN)}
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
    f"""
    SELECT DISTINCT task_id FROM task_run
    WHERE task_id = ANY(:ids) AND {one_of("status", OPEN)}
    """
)


def tasks_with_open_runs(conn: Connection, task_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``task_ids`` that have a run queued or running."""
    id_list = sorted(set(task_ids))
    if not id_list:
        return set()
    return {r[0] for r in conn.execute(_TASKS_WITH_OPEN_RUNS, {"ids": id_list})}


# a run with these states "took" its dedupe key: it will run, runs, or ran successfully
_DEDUPE_HOLDERS = (
    RunStatus.QUEUED,
    RunStatus.RUNNING,
    RunStatus.SUCCEEDED,
    RunStatus.WAITING_APPROVAL,
    RunStatus.DEFERRED,
)
_RECENT_DEDUPE_RUN = sa.text(
    f"""
    SELECT id FROM task_run
    WHERE dedupe_key = :key
      AND {one_of("status", _DEDUPE_HOLDERS)}
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


# what lists show of a run: everything but the lease, its output and the event it carried
_SUMMARY_COLUMNS = [
    c
    for c in task_run.c
    if c.name not in ("lease_owner", "leased_until", "output", "event", "suspended_input")
]


def _shown_output(column: sa.ColumnElement[Any] = task_run.c.output) -> sa.ColumnElement[Any]:
    return jsonb.shown(
        column, inline=limits.INLINE_STEP_DATA_BYTES, preview=limits.PREVIEW_CHARS
    ).label(column.name)


def list_runs(
    conn: Connection,
    *,
    created_by: uuid.UUID | None,
    task_id: uuid.UUID | None,
    status: RunStatus | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Runs newest first (by ``created_at``, then id), at most ``limit``: summaries, without
    the lease, the output or the triggering event (a page never carries run data).

    ``created_by`` limits them to that agent's tasks (None: every agent's); ``before`` is
    the (created_at, id) a page continues after.
    """
    query = sa.select(*_SUMMARY_COLUMNS).select_from(task_run)
    if created_by is not None:
        query = query.join(task, task.c.id == task_run.c.task_id).where(
            task.c.created_by == created_by
        )
    if task_id is not None:
        query = query.where(task_run.c.task_id == task_id)
    if status is not None:
        query = query.where(task_run.c.status == status.value)
    if before is not None:
        query = query.where(sa.tuple_(task_run.c.created_at, task_run.c.id) < sa.tuple_(*before))
    return conn.execute(
        query.order_by(task_run.c.created_at.desc(), task_run.c.id.desc()).limit(limit)
    ).all()


def get_run(conn: Connection, run_id: uuid.UUID) -> Row[Any] | None:
    """One run without the lease, with its task's ``created_by``; None when there is none.

    An output (or a suspended step's input) over ``limits.INLINE_STEP_DATA_BYTES`` of JSON
    text comes back as the truncation marker (:func:`~ordinaut.store.queries.jsonb.shown`).
    """
    query: sa.Select[Any] = (
        sa.select(
            *_SUMMARY_COLUMNS,
            _shown_output(),
            _shown_output(task_run.c.suspended_input),
            task.c.created_by,
        )
        .join(task, task.c.id == task_run.c.task_id)
        .where(task_run.c.id == run_id)
    )
    return conn.execute(query).first()


@dataclass(frozen=True)
class LockedRun:
    """A run held ``FOR UPDATE`` while an operation decides what to do with it."""

    id: uuid.UUID
    status: RunStatus
    task_id: uuid.UUID
    created_by: uuid.UUID
    suspended_step: str | None = None


_LOCK_RUN = sa.text(
    """
    SELECT r.id, r.status, r.task_id, t.created_by, r.suspended_step
    FROM task_run r JOIN task t ON t.id = r.task_id
    WHERE r.id = :run_id
    FOR UPDATE OF r
    """
)


def lock_run(conn: Connection, run_id: uuid.UUID) -> LockedRun | None:
    """The run, locked until the transaction ends, with its task's owner; None if none."""
    row = conn.execute(_LOCK_RUN, {"run_id": run_id}).first()
    if row is None:
        return None
    return LockedRun(row.id, RunStatus(row.status), row.task_id, row.created_by, row.suspended_step)
