"""What ``/metrics`` reports, read from PostgreSQL at scrape time (the whole deployment).

Every figure is counted from the tables every process writes, so it is the same whichever
API process is scraped and however many workers and hosts there are.

The counters (runs by final status; steps by tool address: successes, duration buckets and
their sum) must not cost a scan of the whole history at every scrape. What finished up to a
watermark is kept summed in ``metric_rollup``; a scrape adds what finished after it (an
index range on ``task_run.finished_at``, and those runs' step receipts by ``run_id``) plus
the steps of runs still open. :func:`roll_up` moves the watermark to ``ROLL_LAG`` before
now (one scraper at a time, under an advisory lock), so a scrape reads at most a few
minutes of runs whatever the history holds; a run's row and its receipts are committed
well within that lag. The read happens in one REPEATABLE READ snapshot, so a concurrent
roll-up is seen entirely or not at all. Gauges over queues (due work, outbox, waiting runs)
count at most :data:`GAUGE_CAP` rows each, from their indexes. Everything runs under a
statement timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries.locks import advisory_key
from ordinaut.store.queries.render import literal, one_of
from ordinaut.vocabulary import RunStatus, StepStatus

ROLL_LAG = timedelta(minutes=2)  # roll up runs that finished at least this long ago
ROLL_EVERY = timedelta(seconds=30)  # and only when the watermark is this much behind that
GAUGE_CAP = 100_000
STEP_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class StepStats:
    """The steps one tool ran (served from cache excluded): outcomes and durations."""

    address: str
    count: int
    succeeded: int
    seconds: float
    buckets: tuple[int, ...]  # cumulative counts, one per STEP_BUCKETS bound


@dataclass(frozen=True)
class Gauges:
    """Queues and lag at the moment of the scrape."""

    due_backlog: int  # due_work rows whose not_before has come
    due_oldest_seconds: float  # how long the oldest of them has waited
    queued_late: int  # queued runs whose not_before has come
    lag_seconds: float  # due → started: the longest current wait, or the recent worst start
    outbox_backlog: int  # events not yet relayed
    waiting_concurrency: int  # due work held back by a full concurrency key


_FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SKIPPED)
_BUCKETS_SQL = "ARRAY[" + ", ".join(str(b) for b in STEP_BUCKETS) + ", 'Infinity']::float8[]"


def _steps_sql(runs: str) -> str:
    """Step receipts (not served from cache) of the runs the CTE ``runs`` lists, with their
    durations ``d`` in seconds."""
    return f"""
        SELECT s.address, s.status, GREATEST(EXTRACT(EPOCH FROM s.finished_at - s.started_at),
                                             0)::float8 AS d
        FROM step_result s JOIN {runs} ON s.run_id = {runs}.id WHERE NOT s.cached
    """


_ROLL_UP = sa.text(
    f"""
    WITH runs AS (
        SELECT id, status FROM task_run
        WHERE finished_at > :since AND finished_at <= :until
    ), steps AS ({_steps_sql("runs")}
    ), counted AS (
        SELECT 'runs' AS kind, status::text AS label, 'Infinity'::float8 AS le,
               count(*) AS count, 0::float8 AS seconds
        FROM runs WHERE {one_of("status", _FINISHED)} GROUP BY status
        UNION ALL
        SELECT 'steps', address, b.le, count(*) FILTER (WHERE d <= b.le),
               CASE WHEN b.le = 'Infinity' THEN coalesce(sum(d), 0) ELSE 0 END
        FROM steps CROSS JOIN unnest({_BUCKETS_SQL}) AS b(le) GROUP BY address, b.le
        UNION ALL
        SELECT 'step_success', address, 'Infinity',
               count(*) FILTER (WHERE status = {literal(StepStatus.SUCCEEDED)}), 0
        FROM steps GROUP BY address
    ), added AS (
        INSERT INTO metric_rollup AS m (kind, label, le, count, seconds)
        SELECT kind, label, le, count, seconds FROM counted
        ON CONFLICT (kind, label, le) DO UPDATE
        SET count = m.count + EXCLUDED.count, seconds = m.seconds + EXCLUDED.seconds
    )
    UPDATE metric_watermark SET rolled_until = :until WHERE id = 1
    """
)
_WATERMARK = sa.text("SELECT rolled_until FROM metric_watermark WHERE id = 1")
_TRY_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:space, :key)")


def roll_up(conn: Connection, now: datetime) -> bool:
    """Add what finished up to ``now - ROLL_LAG`` to ``metric_rollup`` and move the
    watermark there, when it is ``ROLL_EVERY`` behind and no other process is doing it.
    Returns whether it rolled; commits nothing (the caller's transaction does)."""
    space, key = advisory_key("ordinaut:metrics", "rollup")
    if not conn.execute(_TRY_LOCK, {"space": space, "key": key}).scalar():
        return False
    since = conn.execute(_WATERMARK).scalar_one()
    until = now - ROLL_LAG
    if since >= until - ROLL_EVERY:
        return False
    conn.execute(_ROLL_UP, {"since": since, "until": until})
    return True


_RUN_COUNTS = sa.text(
    f"""
    SELECT label, sum(count)::bigint FROM (
        SELECT label, count FROM metric_rollup WHERE kind = 'runs'
        UNION ALL
        SELECT status::text, count(*) FROM task_run
        WHERE finished_at > :since AND {one_of("status", _FINISHED)} GROUP BY status
        UNION ALL
        SELECT status::text, count(*) FROM task_run WHERE finished_at IS NULL GROUP BY status
    ) AS c GROUP BY label
    """
)

_STEP_STATS = sa.text(
    f"""
    WITH live_runs AS (
        SELECT id FROM task_run WHERE finished_at > :since
        UNION ALL
        SELECT id FROM task_run WHERE finished_at IS NULL
    ), live AS ({_steps_sql("live_runs")}
    ), counted AS (
        SELECT kind, label, le, count, seconds FROM metric_rollup
        WHERE kind IN ('steps', 'step_success')
        UNION ALL
        SELECT 'steps', address, b.le, count(*) FILTER (WHERE d <= b.le),
               CASE WHEN b.le = 'Infinity' THEN coalesce(sum(d), 0) ELSE 0 END
        FROM live CROSS JOIN unnest({_BUCKETS_SQL}) AS b(le) GROUP BY address, b.le
        UNION ALL
        SELECT 'step_success', address, 'Infinity',
               count(*) FILTER (WHERE status = {literal(StepStatus.SUCCEEDED)}), 0
        FROM live GROUP BY address
    )
    SELECT kind, label, le, sum(count)::bigint, sum(seconds)
    FROM counted GROUP BY kind, label, le ORDER BY label, kind, le
    """
)

_OPEN = f"({literal(RunStatus.QUEUED)}, {literal(RunStatus.RUNNING)})"
_GAUGES = sa.text(
    f"""
    SELECT
      (SELECT count(*) FROM (SELECT 1 FROM due_work WHERE not_before <= :now
                             LIMIT {GAUGE_CAP}) AS d),
      (SELECT min(not_before) FROM due_work WHERE not_before <= :now),
      (SELECT count(*) FROM (SELECT 1 FROM task_run
                             WHERE status = {literal(RunStatus.QUEUED)}
                               AND coalesce(not_before, scheduled_for) <= :now
                             LIMIT {GAUGE_CAP}) AS q),
      (SELECT min(coalesce(not_before, scheduled_for)) FROM task_run
        WHERE status = {literal(RunStatus.QUEUED)}),
      (SELECT max(EXTRACT(EPOCH FROM started_at - coalesce(not_before, scheduled_for)))
         FROM task_run
        WHERE (finished_at IS NULL OR finished_at > :recent) AND started_at > :recent),
      (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE published_at IS NULL
                             LIMIT {GAUGE_CAP}) AS o),
      (SELECT count(*) FROM (
         SELECT 1 FROM due_work d JOIN task t ON t.id = d.task_id
          WHERE d.not_before <= :now AND t.concurrency_key IS NOT NULL
            AND (SELECT count(*) FROM task_run r
                  WHERE r.concurrency_key = t.concurrency_key AND r.status IN {_OPEN})
                >= t.concurrency_limit
          LIMIT {GAUGE_CAP}) AS c)
    """
)


def run_counts(conn: Connection) -> dict[str, int]:
    """How many runs are in each status now (finished ones: ever)."""
    since = conn.execute(_WATERMARK).scalar_one()
    return {status: int(n) for status, n in conn.execute(_RUN_COUNTS, {"since": since}).all()}


def step_stats(conn: Connection) -> Sequence[StepStats]:
    """Per tool address: steps run, succeeded, total seconds and the duration buckets."""
    by_address: dict[str, dict[tuple[str, float], tuple[int, float]]] = {}
    since = conn.execute(_WATERMARK).scalar_one()
    for kind, label, le, count, seconds in conn.execute(_STEP_STATS, {"since": since}).all():
        by_address.setdefault(label, {})[(kind, float(le))] = (int(count), float(seconds))
    stats = []
    for address, rows in sorted(by_address.items()):
        total, seconds = rows.get(("steps", float("inf")), (0, 0.0))
        stats.append(
            StepStats(
                address=address,
                count=total,
                succeeded=rows.get(("step_success", float("inf")), (0, 0.0))[0],
                seconds=seconds,
                buckets=tuple(rows.get(("steps", float(b)), (0, 0.0))[0] for b in STEP_BUCKETS),
            )
        )
    return stats


def gauges(conn: Connection, now: datetime, *, recent: datetime) -> Gauges:
    """Queue sizes and lag at ``now``; the lag of runs that started after ``recent`` counts."""
    row = conn.execute(_GAUGES, {"now": now, "recent": recent}).one()
    due_oldest = (now - row[1]).total_seconds() if row[1] is not None else 0.0
    queued_oldest = (now - row[3]).total_seconds() if row[3] is not None else 0.0
    waiting = max(due_oldest, queued_oldest, 0.0)
    return Gauges(
        due_backlog=int(row[0]),
        due_oldest_seconds=max(due_oldest, 0.0),
        queued_late=int(row[2]),
        lag_seconds=max(waiting, float(row[4] or 0.0)),
        outbox_backlog=int(row[5]),
        waiting_concurrency=int(row[6]),
    )


_TIMEOUT = sa.text("SELECT set_config('statement_timeout', :ms, true)")


def limit_time(conn: Connection, seconds: float) -> None:
    """Cancel any statement of this transaction that runs longer than ``seconds``."""
    conn.execute(_TIMEOUT, {"ms": str(int(seconds * 1000))})
