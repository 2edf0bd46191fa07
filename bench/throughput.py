"""Execution throughput and lag, end to end, on one worker host.

Three measurements in one invocation, each on its own fresh database and Redis namespace,
with the processes ``ordinaut up`` runs: beat, a control worker (``-c 1``: dispatch, reaper,
sweeper) and a runs worker at Celery's default concurrency (one process per core):

(a) burn-down: N once-tasks (one ``builtin.echo`` step) all due at the same instant; beat
    fires them, dispatch queues them, the worker runs them. Runs/s from the first run's
    start to the last one's finish, and PostgreSQL commits per run (``xact_commit`` of the
    bench database over the whole phase, beat and dispatch included).
(b) steady: R runs/s offered for S seconds (once-tasks due every 1/R s). Lag from the due
    instant to the run's start: p50/p95/p99/max, split into beat → due_work (row written),
    due_work → publish (dispatch committed the run and sent ``execute_run``), publish →
    start (claimed by a worker).
(c) ceiling: N plain Celery no-op tasks (``bench.noop``: one Redis INCR) through the same
    broker, queue and worker settings; tasks/s from first start to last finish, and the
    ratio (a)/(c).

Run: ``DATABASE_URL=postgresql://… REDIS_URL=redis://… python -m bench.throughput``.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import NOOP_COUNTER, NOOP_FIRST, NOOP_LAST, Bench, percentile, wait_for

ECHO = {"pipeline": [{"id": "noop", "uses": "builtin.echo", "with": {"ok": True}}]}


def _finished(bench: Bench) -> int:
    with bench.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM task_run WHERE status IN ('succeeded', 'failed')")
            ).scalar_one()
        )


def _ordinaut(bench: Bench) -> None:
    bench.start_beat()
    bench.start_worker("control", "control", concurrency=1)
    bench.start_worker("runs", "runs")
    bench.wait_workers(2)


def burn_down(database_url: str, redis_url: str, runs: int) -> dict[str, Any]:
    """(a): runs/s draining ``runs`` runs due at once, and commits per run."""
    bench = Bench(database_url, redis_url)
    try:
        _ordinaut(bench)
        before = bench.commits()
        due = datetime.now(UTC) + timedelta(seconds=3)
        bench.insert_once_tasks(due, runs, 0.0, ECHO)
        wait_for(lambda: _finished(bench) >= runs, 600, bench, interval=0.25)
        after = bench.commits()
        with bench.engine.connect() as conn:
            first, last, ok, lag = conn.execute(
                sa.text(
                    "SELECT min(started_at), max(finished_at), "
                    "count(*) FILTER (WHERE status = 'succeeded'), "
                    "extract(epoch FROM min(started_at) - min(scheduled_for)) FROM task_run"
                )
            ).one()
        seconds = (last - first).total_seconds()
        return {
            "runs": runs,
            "succeeded": ok,
            "seconds": seconds,
            "runs_per_s": runs / seconds,
            "first_start_lag_ms": float(lag) * 1000,
            "commits_per_run": (after - before) / runs,
        }
    finally:
        bench.close()


def steady(database_url: str, redis_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """(b): lag percentiles at ``rate`` runs/s for ``seconds`` seconds."""
    bench = Bench(database_url, redis_url)
    count = int(rate * seconds)
    try:
        _ordinaut(bench)
        first = datetime.now(UTC) + timedelta(seconds=5)
        bench.insert_once_tasks(first, count, 1.0 / rate, ECHO)
        wait_for(lambda: _finished(bench) >= count, seconds + 120, bench, interval=0.5)
        with bench.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT extract(epoch FROM started_at - scheduled_for),
                           extract(epoch FROM work_created_at - scheduled_for),
                           extract(epoch FROM published_at - work_created_at),
                           extract(epoch FROM started_at - published_at)
                    FROM task_run WHERE status = 'succeeded'
                    """
                )
            ).all()
        out: dict[str, Any] = {"runs": count, "succeeded": len(rows), "rate": rate}
        names = ("total", "beat_to_due_work", "due_work_to_publish", "publish_to_start")
        for i, name in enumerate(names):
            values = [float(r[i]) * 1000 for r in rows if r[i] is not None]
            out[name] = {
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "p99": percentile(values, 99),
                "max": max(values) if values else float("nan"),
            }
        return out
    finally:
        bench.close()


def ceiling(database_url: str, redis_url: str, tasks: int) -> dict[str, Any]:
    """(c): plain Celery no-op tasks/s on the same broker and worker settings."""
    bench = Bench(database_url, redis_url)
    ns = bench.settings.namespace
    counter, first_key, last_key = (f"{ns}:{k}" for k in (NOOP_COUNTER, NOOP_FIRST, NOOP_LAST))
    try:
        os.environ.update(bench.env())
        from bench import common

        app = common.app
        bench.start_worker("plain", "runs", app="bench.common")
        app.send_task("bench.noop", args=[1], queue=f"{ns}.runs")
        wait_for(lambda: bench.redis.get(last_key), 60, bench)
        bench.redis.delete(counter, first_key, last_key)
        with app.producer_or_acquire() as producer:
            for _ in range(tasks):
                app.send_task("bench.noop", args=[tasks], queue=f"{ns}.runs", producer=producer)
        wait_for(lambda: bench.redis.get(last_key), 600, bench, interval=0.1)
        start, end = float(bench.redis.get(first_key) or 0), float(bench.redis.get(last_key) or 0)
        return {"tasks": tasks, "seconds": end - start, "tasks_per_s": (tasks - 1) / (end - start)}
    finally:
        bench.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="burn-down and ceiling size")
    parser.add_argument("--rate", type=float, default=50.0, help="steady offered runs/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady duration")
    parser.add_argument("--only", choices=("a", "b", "c"), action="append", help="run a part")
    args = parser.parse_args(argv)
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        print("set DATABASE_URL and REDIS_URL (servers to create a bench database on)")
        return 2
    parts = set(args.only or ("a", "b", "c"))
    print(f"# bench/throughput on {os.cpu_count()} cores, python {sys.version.split()[0]}")
    a = c = None
    if "a" in parts:
        a = burn_down(database_url, redis_url, args.runs)
        print(
            f"(a) burn-down: {a['succeeded']}/{a['runs']} runs succeeded in {a['seconds']:.2f} s "
            f"= {a['runs_per_s']:.0f} runs/s; first start {a['first_start_lag_ms']:.0f} ms "
            f"after due; {a['commits_per_run']:.2f} PostgreSQL commits per run"
        )
    if "b" in parts:
        b = steady(database_url, redis_url, args.rate, args.seconds)
        print(
            f"(b) steady: {b['rate']:g} runs/s for {args.seconds:g} s, "
            f"{b['succeeded']}/{b['runs']} succeeded; lag in ms:"
        )
        for name in ("total", "beat_to_due_work", "due_work_to_publish", "publish_to_start"):
            p = b[name]
            print(
                f"    {name:<20} p50 {p['p50']:7.1f}  p95 {p['p95']:7.1f}  "
                f"p99 {p['p99']:7.1f}  max {p['max']:7.1f}"
            )
    if "c" in parts:
        c = ceiling(database_url, redis_url, args.runs)
        print(
            f"(c) plain Celery: {c['tasks']} no-op tasks in {c['seconds']:.2f} s "
            f"= {c['tasks_per_s']:.0f} tasks/s"
        )
    if a and c:
        print(f"(a)/(c) = {a['runs_per_s'] / c['tasks_per_s']:.2f}")
    flags = "".join(f" --only {p}" for p in sorted(args.only or ()))
    print(
        "reproduce: DATABASE_URL=postgresql://USER@HOST:PORT/postgres REDIS_URL=redis://HOST:PORT/0"
        f" python -m bench.throughput --runs {args.runs} --rate {args.rate:g}"
        f" --seconds {args.seconds:g}{flags}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
