"""Fair sharing: agent A has a burst of runs due, then agent B has 10; how long B waits.

Real processes (beat, a control worker, a runs worker) on a private database. Agent A's
burst is written as due_work rows and dispatched; once A's runs are flowing, agent B gets 10
due rows and a dispatch request. B's start delay is each of its runs' ``started_at`` minus
the moment its rows were written, with A's backlog still waiting then. With round-robin
leasing and the queue window (``ORDINAUT_DISPATCH_QUEUE_WINDOW``, default 1024) B waits
behind at most the window, whatever A's backlog; ``--window 0`` (no bound) shows the
behaviour without it. Reproduce:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/0 \
    python -m bench.fairness [--backlog 1000 5000] [--window 1024 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import Bench, load_average, wait_for
from ordinaut.celery import create_app

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"ok": True}}]}


def _agent_task(bench: Bench, name: str) -> uuid.UUID:
    with bench.engine.begin() as conn:
        agent_id = conn.execute(
            sa.text("INSERT INTO agent (name, scopes) VALUES (:n, '{}') RETURNING id"), {"n": name}
        ).scalar_one()
        task_id: uuid.UUID = conn.execute(
            sa.text(
                "INSERT INTO task (title, created_by, schedule_kind, schedule_expr, timezone, "
                "payload) VALUES (:n, :a, 'once', '2026-01-01T00:00:00+00:00', 'UTC', "
                "CAST(:p AS jsonb)) RETURNING id"
            ),
            {"n": name, "a": agent_id, "p": json.dumps(ECHO)},
        ).scalar_one()
    return task_id


def _due(bench: Bench, task_id: uuid.UUID, count: int, at: datetime) -> None:
    with bench.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO due_work (task_id, run_at, not_before) "
                "SELECT :t, :at - i * interval '1 millisecond', :at "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"t": task_id, "at": at, "n": count},
        )


def _count(bench: Bench, task_id: uuid.UUID, started: bool = False) -> int:
    column = "started_at" if started else "finished_at"
    with bench.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count({column}) FROM task_run WHERE task_id = :t"),
                {"t": task_id},
            ).scalar_one()
        )


def scenario(database_url: str, redis_url: str, backlog: int, window: int) -> dict[str, Any]:
    """A's ``backlog`` runs, then B's 10: B's start delays (ms) and A's backlog left then."""
    bench = Bench(database_url, redis_url, dispatch_queue_window=window)
    app = create_app(bench.settings)
    try:
        bench.start_beat()
        bench.start_worker("control", "control", concurrency=1)
        bench.start_worker("runs", "runs")
        bench.wait_workers(2)
        a, b = _agent_task(bench, "agent-a"), _agent_task(bench, "agent-b")
        _due(bench, a, backlog, datetime.now(UTC))
        app.send_task("ordinaut.dispatch", queue=bench.settings.control_queue)
        wait_for(lambda: _count(bench, a) >= 200, 120, bench, interval=0.05)
        b_at = datetime.now(UTC)
        _due(bench, b, 10, b_at)
        a_left = backlog - _count(bench, a, started=True)
        app.send_task("ordinaut.dispatch", queue=bench.settings.control_queue)
        wait_for(lambda: _count(bench, b) >= 10, 300, bench, interval=0.05)
        load = load_average()
        wait_for(lambda: _count(bench, a) >= backlog, 600, bench, interval=0.1)
        with bench.engine.connect() as conn:
            starts = conn.execute(
                sa.text("SELECT started_at FROM task_run WHERE task_id = :t"), {"t": b}
            ).scalars()
            delays = sorted((s - b_at) / timedelta(milliseconds=1) for s in starts)
            first, last = conn.execute(
                sa.text(
                    "SELECT min(started_at), max(finished_at) FROM task_run WHERE task_id = :t"
                ),
                {"t": a},
            ).one()
        return {
            "backlog": backlog,
            "window": window,
            "a_waiting_when_b_came": a_left,
            "b_median_ms": statistics.median(delays),
            "b_max_ms": delays[-1],
            "a_runs_per_s": backlog / (last - first).total_seconds(),
            "load": load,
        }
    finally:
        app.close()
        bench.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--window", type=int, nargs="+", default=[1024])
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    print(
        "| A's backlog | window | A still waiting when B came | B start median | B max "
        "| A's runs/s | load |"
    )
    print("|---|---|---|---|---|---|---|")
    for window in args.window:
        for backlog in args.backlog:
            r = scenario(database_url, redis_url, backlog, window)
            print(
                f"| {r['backlog']} | {r['window'] or 'none'} | {r['a_waiting_when_b_came']} "
                f"| {r['b_median_ms']:.0f} ms | {r['b_max_ms']:.0f} ms "
                f"| {r['a_runs_per_s']:.0f} | {r['load']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
