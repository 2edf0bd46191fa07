"""Execution throughput, lag and cost, end to end, on one worker host.

Each measurement on its own fresh database and Redis namespace, with the processes
``ordinaut up`` runs: beat, a control worker (``-c 1``: dispatch, reaper, sweeper, relay) and a
runs worker at Celery's default concurrency (one process per core):

(a) burn-down: N once-tasks (one ``builtin.echo`` step) all due at the same instant; beat
    fires them, dispatch queues them, the worker runs them. Runs/s from the first run's
    start to the last one's finish.
(b) steady: R runs/s offered for S seconds (once-tasks due every 1/R s). Lag from the due
    instant to the run's start: p50/p95/p99/max, split into beat → due_work (row written),
    due_work → publish (dispatch committed the run and sent ``execute_run``), publish →
    start (claimed by a worker).
(h) the same as (b) with a CPU-bound process (a busy loop) running on the machine.
(c) ceiling: N plain Celery no-op tasks (``bench.noop``: one Redis INCR) through the same
    broker, queue and worker settings; tasks/s from first start to last finish.
(d) idle: CPU and commits per second of the whole stack with nothing due.
(e) floor: plain Celery at the steady pace of (b) — ``bench.noop`` tasks (one Redis INCR)
    published at R/s by this process, run by a worker with the runs worker's settings; CPU
    per task of the worker (pool included) and of the publishing calls. What Celery's own
    messaging costs per message, under every Ordinaut run.

Cost per run, for (a), (b) and (h): **CPU** is the user + system time of beat, both workers
(pool processes included) and the PostgreSQL backends of the bench database over the
measurement (:class:`bench.common.CpuMeter`; Redis is shared and left out). **Commits** are
``xact_commit`` of the bench database read *after* every process has exited (a backend
publishes its counts when it goes idle, at most once a second, and when it disconnects; a
figure read while they run undercounts), from before the processes start: start-up and
shutdown are included, so the figure is an upper bound. Each part runs ``--repeat`` times
(default 3); every line prints the load average, and the median comes last.

Run: ``DATABASE_URL=postgresql://… REDIS_URL=redis://… python -m bench.throughput``.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import (
    NOOP_COUNTER,
    NOOP_FIRST,
    NOOP_LAST,
    Bench,
    CpuHog,
    load_average,
    percentile,
    wait_for,
)

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
    """(a): runs/s draining ``runs`` runs due at once; CPU and commits per run."""
    bench = Bench(database_url, redis_url)
    try:
        before = bench.commits()  # nothing runs yet: an exact starting point
        _ordinaut(bench)
        due = datetime.now(UTC) + timedelta(seconds=3)
        bench.insert_once_tasks(due, runs, 0.0, ECHO)
        wait_for(lambda: datetime.now(UTC) >= due - timedelta(milliseconds=200), 10, bench)
        meter = bench.cpu().start()
        wait_for(lambda: _finished(bench) >= runs, 600, bench, interval=0.25)
        cpu = meter.stop()
        load = load_average()
        bench.stop_processes()
        after = bench.commits()  # every backend has disconnected: all counts published
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
            "cpu_ms_per_run": cpu * 1000 / runs,
            "cpu_split": meter.split(runs),
            "commits_per_run": (after - before) / runs,
            "load": load,
        }
    finally:
        bench.close()


def steady(
    database_url: str, redis_url: str, rate: float, seconds: float, *, hog: bool = False
) -> dict[str, Any]:
    """(b): lag percentiles, CPU and commits per run at ``rate`` runs/s for ``seconds`` s.

    With ``hog``, a CPU-bound process runs on the machine throughout the measurement.
    """
    bench = Bench(database_url, redis_url)
    count = int(rate * seconds)
    hogger = CpuHog() if hog else None
    try:
        before = bench.commits()
        _ordinaut(bench)
        first = datetime.now(UTC) + timedelta(seconds=5)
        bench.insert_once_tasks(first, count, 1.0 / rate, ECHO)
        wait_for(lambda: datetime.now(UTC) >= first, 10, bench)
        meter = bench.cpu().start()
        wait_for(lambda: _finished(bench) >= count, seconds + 120, bench, interval=0.5)
        cpu = meter.stop()
        load = load_average()
        bench.stop_processes()
        after = bench.commits()
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
        out: dict[str, Any] = {
            "runs": count,
            "succeeded": len(rows),
            "rate": rate,
            "hog": hog,
            "cpu_ms_per_run": cpu * 1000 / count,
            "cpu_split": meter.split(count),
            "commits_per_run": (after - before) / count,
            "load": load,
        }
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
        if hogger is not None:
            hogger.stop()
        bench.close()


def idle(database_url: str, redis_url: str, seconds: float) -> dict[str, Any]:
    """(d): CPU and commits per second of the whole stack with nothing due.

    Commits are read after the processes exit, for two lifetimes (``seconds`` apart), so
    start-up and shutdown cancel out: rate = difference of commits / difference of time.
    """
    lifetimes = []
    cpu_per_s = 0.0
    for extra in (0.0, seconds):
        bench = Bench(database_url, redis_url)
        try:
            before = bench.commits()
            started = time.monotonic()
            _ordinaut(bench)
            time.sleep(3)  # first ticks, connections made
            meter = bench.cpu().start()
            time.sleep(5 + extra)  # the stack idles: that is what is measured
            spent = meter.stop()
            if extra:
                cpu_per_s = spent / (5 + extra)
            bench.stop_processes()
            lifetimes.append((time.monotonic() - started, bench.commits() - before))
        finally:
            bench.close()
    (t0, c0), (t1, c1) = lifetimes
    return {
        "cpu_ms_per_s": cpu_per_s * 1000,
        "commits_per_s": (c1 - c0) / (t1 - t0),
        "load": load_average(),
    }


def _plain_worker(bench: Bench) -> tuple[Any, tuple[str, str]]:
    """A plain Celery worker on the bench's runs queue, warmed by one no-op task; its app
    (built for this bench's namespace) and the Redis keys of the first and last no-op's time."""
    ns = bench.settings.namespace
    counter, first_key, last_key = (f"{ns}:{k}" for k in (NOOP_COUNTER, NOOP_FIRST, NOOP_LAST))
    os.environ.update(bench.env())
    from bench import common

    common._app = None  # built from the environment: this bench's namespace, not the last one's
    app = common.app
    bench.start_worker("plain", "runs", app="bench.common")
    app.send_task("bench.noop", args=[1], queue=f"{ns}.runs")
    wait_for(lambda: bench.redis.get(last_key), 60, bench)
    bench.redis.delete(counter, first_key, last_key)
    return app, (first_key, last_key)


def ceiling(database_url: str, redis_url: str, tasks: int) -> dict[str, Any]:
    """(c): plain Celery no-op tasks/s on the same broker and worker settings."""
    bench = Bench(database_url, redis_url)
    ns = bench.settings.namespace
    try:
        app, (first_key, last_key) = _plain_worker(bench)
        with app.producer_or_acquire() as producer:
            for _ in range(tasks):
                app.send_task("bench.noop", args=[tasks], queue=f"{ns}.runs", producer=producer)
        wait_for(lambda: bench.redis.get(last_key), 600, bench, interval=0.1)
        start, end = float(bench.redis.get(first_key) or 0), float(bench.redis.get(last_key) or 0)
        return {"tasks": tasks, "seconds": end - start, "tasks_per_s": (tasks - 1) / (end - start)}
    finally:
        bench.close()


def celery_floor(database_url: str, redis_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """(e): CPU per plain Celery no-op task at ``rate`` tasks/s (worker + publisher)."""
    bench = Bench(database_url, redis_url)
    ns = bench.settings.namespace
    count = int(rate * seconds)
    try:
        app, (_, last_key) = _plain_worker(bench)
        meter = bench.cpu().start()
        publishing = 0.0
        with app.producer_or_acquire() as producer:
            started = time.monotonic()
            for i in range(count):
                pause = started + i / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                before = time.process_time()
                app.send_task("bench.noop", args=[count], queue=f"{ns}.runs", producer=producer)
                publishing += time.process_time() - before
        wait_for(lambda: bench.redis.get(last_key), 60, bench, interval=0.1)
        worker = meter.stop()
        return {
            "tasks": count,
            "rate": rate,
            "worker_cpu_ms_per_task": worker * 1000 / count,
            "publish_cpu_ms_per_task": publishing * 1000 / count,
            "cpu_ms_per_task": (worker + publishing) * 1000 / count,
            "load": load_average(),
        }
    finally:
        bench.close()


def _median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def _print_steady(label: str, b: dict[str, Any]) -> None:
    print(
        f"({label}) steady {b['rate']:g} runs/s{' + CPU hog' if b['hog'] else ''}: "
        f"{b['succeeded']}/{b['runs']} succeeded; {b['cpu_ms_per_run']:.2f} ms CPU and "
        f"{b['commits_per_run']:.2f} commits per run; lag ms "
        + "  ".join(
            f"{name} p50 {b[name]['p50']:.1f} p99 {b[name]['p99']:.1f}"
            for name in ("total", "beat_to_due_work", "due_work_to_publish", "publish_to_start")
        )
        + f"  [{b['load']}]\n    CPU ms per run by process: {b['cpu_split']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="burn-down and ceiling size")
    parser.add_argument("--rate", type=float, default=50.0, help="steady offered runs/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady duration")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each part (median)")
    parser.add_argument(
        "--only",
        choices=("a", "b", "h", "c", "d", "e"),
        action="append",
        help="a burn-down, b steady, h steady with a CPU hog, c plain Celery, d idle, "
        "e plain Celery's CPU per task at the steady pace",
    )
    args = parser.parse_args(argv)
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        print("set DATABASE_URL and REDIS_URL (servers to create a bench database on)")
        return 2
    parts = set(args.only or ("a", "b", "h", "c", "d", "e"))
    print(f"# bench/throughput on {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"# {load_average()} at start; each part {args.repeat}x, the median last")
    medians: dict[str, float] = {}
    if "a" in parts:
        runs = []
        for _ in range(args.repeat):
            a = burn_down(database_url, redis_url, args.runs)
            runs.append(a)
            print(
                f"(a) burn-down: {a['succeeded']}/{a['runs']} in {a['seconds']:.2f} s = "
                f"{a['runs_per_s']:.0f} runs/s; first start {a['first_start_lag_ms']:.0f} ms "
                f"after due; {a['cpu_ms_per_run']:.2f} ms CPU and {a['commits_per_run']:.2f} "
                f"commits per run  [{a['load']}]"
            )
        medians["a"] = _median(runs, "runs_per_s")
        print(
            f"(a) median: {medians['a']:.0f} runs/s, "
            f"{_median(runs, 'cpu_ms_per_run'):.2f} ms CPU/run, "
            f"{_median(runs, 'commits_per_run'):.2f} commits/run"
        )
    for label, hog in (("b", False), ("h", True)):
        if label not in parts:
            continue
        runs = []
        for _ in range(args.repeat):
            b = steady(database_url, redis_url, args.rate, args.seconds, hog=hog)
            runs.append(b)
            _print_steady(label, b)
        print(
            f"({label}) median: lag p50 {_median(runs, 'total', 'p50'):.1f} ms, "
            f"p99 {_median(runs, 'total', 'p99'):.1f} ms; "
            f"{_median(runs, 'cpu_ms_per_run'):.2f} ms CPU/run, "
            f"{_median(runs, 'commits_per_run'):.2f} commits/run"
        )
    if "c" in parts:
        runs = []
        for _ in range(args.repeat):
            c = ceiling(database_url, redis_url, args.runs)
            runs.append(c)
            print(
                f"(c) plain Celery: {c['tasks']} no-op tasks in {c['seconds']:.2f} s "
                f"= {c['tasks_per_s']:.0f} tasks/s  [{load_average()}]"
            )
        medians["c"] = _median(runs, "tasks_per_s")
        print(f"(c) median: {medians['c']:.0f} tasks/s")
    if "a" in medians and "c" in medians:
        print(f"(a)/(c) = {medians['a'] / medians['c']:.2f} (medians)")
    if "d" in parts:
        runs = []
        for _ in range(args.repeat):
            d = idle(database_url, redis_url, args.idle_seconds)
            runs.append(d)
            print(
                f"(d) idle: {d['cpu_ms_per_s']:.1f} ms CPU and {d['commits_per_s']:.2f} commits "
                f"per second with nothing due  [{d['load']}]"
            )
        print(
            f"(d) median: {_median(runs, 'cpu_ms_per_s'):.1f} ms CPU/s, "
            f"{_median(runs, 'commits_per_s'):.2f} commits/s"
        )
    if "e" in parts:
        runs = []
        for _ in range(args.repeat):
            e = celery_floor(database_url, redis_url, args.rate, args.seconds)
            runs.append(e)
            print(
                f"(e) plain Celery at {e['rate']:g} tasks/s: {e['cpu_ms_per_task']:.2f} ms CPU "
                f"per task (worker {e['worker_cpu_ms_per_task']:.2f}, publishing "
                f"{e['publish_cpu_ms_per_task']:.2f})  [{e['load']}]"
            )
        print(f"(e) median: {_median(runs, 'cpu_ms_per_task'):.2f} ms CPU per task")
    flags = "".join(f" --only {p}" for p in sorted(args.only or ()))
    print(
        "reproduce: DATABASE_URL=postgresql://USER@HOST:PORT/postgres REDIS_URL=redis://HOST:PORT/0"
        f" python -m bench.throughput --runs {args.runs} --rate {args.rate:g}"
        f" --seconds {args.seconds:g} --repeat {args.repeat}{flags}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
