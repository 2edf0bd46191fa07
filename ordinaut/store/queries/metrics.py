"""What ``/metrics`` reports, read from PostgreSQL at scrape time (the whole deployment).

Every figure is counted from the tables every process writes, so it is the same whichever
API process is scraped and however many workers and hosts there are. Gauges over queues
(due work, outbox, waiting runs) count at most :data:`GAUGE_CAP` rows each, from their
indexes; the counters (runs by status, steps by tool, with their durations) are one
aggregate pass over ``task_run`` and ``step_result``. The whole read runs under a statement
timeout, so a scrape of a huge history fails fast instead of loading the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries.render import literal
from ordinaut.vocabulary import RunStatus, StepStatus

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


_RUN_COUNTS = sa.text("SELECT status::text, count(*) FROM task_run GROUP BY status")

_bucket_columns = ",\n           ".join(
    f"count(*) FILTER (WHERE d <= {bound})" for bound in STEP_BUCKETS
)
_STEP_STATS = sa.text(
    f"""
    SELECT address, count(*), count(*) FILTER (WHERE status = {literal(StepStatus.SUCCEEDED)}),
           coalesce(sum(d), 0),
           {_bucket_columns}
    FROM (SELECT address, status,
                 GREATEST(EXTRACT(EPOCH FROM finished_at - started_at), 0) AS d
          FROM step_result WHERE NOT cached) AS s
    GROUP BY address ORDER BY address
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
        WHERE status IN ({literal(RunStatus.RUNNING)}, {literal(RunStatus.SUCCEEDED)},
                         {literal(RunStatus.FAILED)})
          AND started_at > :recent),
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
    """How many runs are in each status now."""
    return {status: int(n) for status, n in conn.execute(_RUN_COUNTS).all()}


def step_stats(conn: Connection) -> Sequence[StepStats]:
    """Per tool address: steps run, succeeded, total seconds and the duration buckets."""
    return [
        StepStats(
            address=row[0],
            count=int(row[1]),
            succeeded=int(row[2]),
            seconds=float(row[3]),
            buckets=tuple(int(n) for n in row[4:]),
        )
        for row in conn.execute(_STEP_STATS).all()
    ]


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
