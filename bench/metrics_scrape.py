"""Cost of one ``/metrics`` scrape against a large history (``observe.snapshot``).

Fills a private database with N finished runs (5% failed) of 100 tasks and 3 step receipts
each over 10 tool addresses, plus a backlog of 1,000 due_work rows and 1,000 unrelayed
outbox events, then times the scrape's database read (best of 5). Reproduce:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.metrics_scrape [--runs 200000]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from bench.common import Bench
from ordinaut.runtime import Runtime
from ordinaut.service import observe

FILL = """
WITH a AS (INSERT INTO agent (name) VALUES ('bench') RETURNING id),
t AS (
  INSERT INTO task (title, created_by, schedule_kind, schedule_expr, payload, next_run_at)
  SELECT 'bench ' || g, (SELECT id FROM a), 'cron', '0 * * * *', '{}'::jsonb,
         now() + interval '1 hour'
  FROM generate_series(1, 100) g RETURNING id
),
tl AS (SELECT id, row_number() OVER () AS n FROM t),
r AS (
  INSERT INTO task_run (task_id, status, scheduled_for, started_at, finished_at)
  SELECT (SELECT id FROM tl WHERE n = 1 + g % 100),
         CASE WHEN g % 20 = 0 THEN 'failed'::run_status ELSE 'succeeded'::run_status END,
         now() - g * interval '1 second', now() - g * interval '1 second',
         now() - g * interval '1 second' + interval '40 milliseconds'
  FROM generate_series(1, :runs) g RETURNING id
)
INSERT INTO step_result (run_id, step_path, step_id, address, status, started_at, finished_at)
SELECT r.id, 's' || k, 's' || k, 'tool.' || (k * 7 + length(r.id::text)) % 10, 'succeeded',
       now(), now() + (k * 10) * interval '1 millisecond'
FROM r, generate_series(1, 3) k
"""
BACKLOG = """
INSERT INTO due_work (task_id, run_at, not_before)
SELECT (SELECT id FROM task LIMIT 1), now() - g * interval '1 second', now() - interval '1 minute'
FROM generate_series(1, 1000) g;
INSERT INTO outbox (topic, payload) SELECT 'bench', '{}'::jsonb FROM generate_series(1, 1000);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    args = parser.parse_args()
    bench = Bench(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    runtime = Runtime(bench.settings, role="bench")
    try:
        with bench.engine.begin() as conn:
            conn.execute(sa.text(FILL), {"runs": args.runs})
            for statement in BACKLOG.strip().split(";\n"):
                conn.execute(sa.text(statement))
        with bench.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            snap = observe.snapshot(runtime, datetime.now(UTC))
            best = min(best, time.perf_counter() - started)
        steps = sum(s.count for s in snap.steps)
        print(
            f"/metrics scrape over {sum(snap.runs.values())} runs and {steps} step receipts "
            f"(load average {os.getloadavg()[0]:.2f}): {best * 1000:.1f} ms (best of 5)"
        )
        print("reproduce: DATABASE_URL=... REDIS_URL=... python -m bench.metrics_scrape [--runs N]")
    finally:
        runtime.close()
        bench.close()


if __name__ == "__main__":
    main()
