"""Scheduling scale: 100,000 stored tasks; idle tick, 1,000 due, a 10,000 burst, beat memory.

On a fresh database (created on the server in ``DATABASE_URL``, dropped at the end) and a
private Redis namespace:

1. stores N active tasks (default 100,000) with COPY: daily cron (``M H * * *``), daily RRULE
   with seconds, and one-off tasks, whose next times are spread between one and 23 hours
   ahead (none comes due during the measurement: checked); then ANALYZE;
2. **idle tick**: the real ``DatabaseScheduler.tick()`` in this process, nothing due —
   median, p95 and max over many ticks;
3. **1,000 due**: moves 1,000 tasks' next time to just now and times the one ``tick()`` that
   claims them, writes their due_work rows and advances them (three rounds, median);
4. **beat memory** and **burst**: starts a real ``celery -A ordinaut beat`` process, makes
   10,000 tasks due at the same second, and times from that second until all 10,000 due_work
   rows are written (polling the table); beat's memory is that process's resident set (RSS)
   while idle, and its peak (VmHWM) after the burst.

Reproduce::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.scale [--tasks 100000]

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import Bench, load_average, wait_for
from ordinaut.beat.scheduler import DatabaseScheduler
from ordinaut.celery import create_app
from ordinaut.scheduling.planning import fire_time
from ordinaut.scheduling.recurrence import parse_schedule

ECHO = json.dumps({"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"ok": True}}]})
COLUMNS = (
    "id, title, created_by, schedule_kind, schedule_expr, timezone, payload, "
    "next_occurrence_at, next_run_at, created_at, jitter_seconds"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _plain_url(bench: Bench) -> str:
    url = make_url(bench.settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


# Stored tasks' next times lie between one hour and 23 hours ahead. Not 25: a daily cron or
# RRULE built from a time more than 24 hours away names a wall time whose *next* occurrence
# is within the hour, so about one task a second came due by itself during the measurement
# (a tick wrote 1,001 rows instead of 1,000 and the "idle" ticks were not idle).
SPREAD = timedelta(hours=22)


def _spec(i: int, count: int, now: datetime) -> tuple[str, str, int]:
    """Task i's (kind, expr, jitter): next times one hour to 23 hours ahead, evenly spread."""
    at = now + timedelta(hours=1) + SPREAD * (i / count)
    if i % 10 == 9:
        return "once", at.replace(microsecond=0).isoformat(), 0
    if i % 10 >= 6:
        rule = f"FREQ=DAILY;BYHOUR={at.hour};BYMINUTE={at.minute};BYSECOND={at.second}"
        return "rrule", rule, 0
    return "cron", f"{at.minute} {at.hour} * * *", 30 if i % 3 == 0 else 0


def store_tasks(bench: Bench, count: int) -> float:
    """COPY ``count`` tasks in, as the service would have stored them; returns seconds."""
    owner = bench.agent()
    now = utcnow()
    created = now - timedelta(days=1)
    started = time.perf_counter()
    with psycopg.connect(_plain_url(bench)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY task ({COLUMNS}) FROM STDIN") as copy:
            for i in range(count):
                kind, expr, jitter = _spec(i, count, now)
                tid = uuid.uuid4()
                occurrence = parse_schedule(kind, expr, "UTC", created_at=created).next_after(now)
                copy.write_row(
                    (
                        tid,
                        f"scale {i}",
                        owner,
                        kind,
                        expr,
                        "UTC",
                        ECHO,
                        occurrence,
                        fire_time(tid, occurrence, jitter),
                        created,
                        jitter,
                    )
                )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE task")
    return time.perf_counter() - started


def make_due(bench: Bench, count: int, at: datetime) -> None:
    """Move ``count`` tasks not yet due to fire at ``at`` (as a snooze would)."""
    with bench.engine.begin() as conn:
        moved = conn.execute(
            sa.text(
                """
                UPDATE task SET next_occurrence_at = :at, next_run_at = :at
                WHERE id IN (SELECT id FROM task WHERE status = 'active' AND next_run_at > :later
                             ORDER BY random() LIMIT :count)
                """
            ),
            {"at": at, "later": at + timedelta(minutes=30), "count": count},
        ).rowcount
    assert moved == count, moved


def due_work_count(bench: Bench) -> int:
    with bench.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM due_work")).scalar_one())


def timed_tick(scheduler: DatabaseScheduler) -> float:
    started = time.perf_counter()
    scheduler.tick()
    return time.perf_counter() - started


def in_process(bench: Bench, rounds: int) -> dict[str, Any]:
    """Idle ticks and 1,000-due ticks of the real scheduler class, in this process."""
    app = create_app(bench.settings)
    scheduler = DatabaseScheduler(app)
    scheduler.sleeps_on_notices = False  # time the work of a tick, not its sleep
    try:
        for _ in range(5):  # connections, caches, first Redis round-trips
            scheduler.tick()
        quiet = due_work_count(bench)
        idle = [timed_tick(scheduler) for _ in range(rounds)]
        assert due_work_count(bench) == quiet, "an idle tick wrote due_work: not idle"
        due = []
        for _ in range(3):
            before = due_work_count(bench)
            make_due(bench, 1000, utcnow() - timedelta(milliseconds=1))
            # beat hears of the change by a notice, looks (at most once per
            # beat_max_interval) and then fires: the measured tick is the firing one
            time.sleep(bench.settings.beat_max_interval + 0.1)
            scheduler.tick()
            due.append(timed_tick(scheduler))
            written = due_work_count(bench) - before
            assert written == 1000, f"one tick wrote {written} due_work rows, not 1000"
        quiet = due_work_count(bench)
        idle_after = [timed_tick(scheduler) for _ in range(rounds)]
        assert due_work_count(bench) == quiet, "an idle tick wrote due_work: not idle"
    finally:
        scheduler.close()
        app.close()
    return {"idle": idle, "idle_after": idle_after, "due_1000": due}


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, in MiB."""
    current = psutil.Process(pid).memory_info().rss / 2**20
    peak = current
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak


def real_beat(bench: Bench, burst: int) -> dict[str, Any]:
    """A real beat process: idle RSS, then ``burst`` tasks due in one second."""
    heartbeat = f"{bench.settings.namespace}:heartbeat:beat"
    bench.redis.delete(heartbeat)
    proc = bench.start_beat()
    wait_for(lambda: bench.redis.get(heartbeat), 60, bench)
    time.sleep(3)  # a few idle ticks
    idle_rss, _ = rss_mib(proc.proc.pid)
    before = due_work_count(bench)
    due_at = utcnow().replace(microsecond=0) + timedelta(seconds=3)
    make_due(bench, burst, due_at)
    wait_for(lambda: utcnow() >= due_at, 10, bench, interval=0.005)
    wait_for(lambda: due_work_count(bench) - before >= burst, 60, bench, interval=0.02)
    elapsed = (utcnow() - due_at).total_seconds()
    bench.check_alive()
    time.sleep(2)
    rss, peak = rss_mib(proc.proc.pid)
    return {"burst_seconds": elapsed, "idle_rss": idle_rss, "rss": rss, "peak_rss": peak}


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=50, help="idle ticks to time")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    bench = Bench(server, redis_url)
    try:
        stored = store_tasks(bench, args.tasks)
        print(f"stored {args.tasks:,} tasks (COPY + ANALYZE) in {stored:.1f} s")
        ticks = in_process(bench, args.ticks)
        beat = real_beat(bench, args.burst)
    finally:
        bench.close()
    cpus = os.cpu_count()
    print(f"\nScheduling scale, {args.tasks:,} active tasks stored")
    print(f"  machine: {cpus} cores, Python {platform.python_version()}, {platform.system()}")
    print(f"  {load_average()} at the end")
    rows = [
        ("idle tick, nothing due (in-process DatabaseScheduler.tick())", ms(ticks["idle"])),
        ("idle tick, after 3,000 due_work rows were written", ms(ticks["idle_after"])),
        ("tick that writes 1,000 due tasks (claim, due_work, advance)", ms(ticks["due_1000"])),
        (
            f"burst: {args.burst:,} tasks due in one second, all in due_work",
            f"{beat['burst_seconds']:.2f} s after that second (real beat process)",
        ),
        (
            "beat memory, RSS of a real `celery -A ordinaut beat`",
            f"{beat['idle_rss']:.0f} MiB idle, {beat['rss']:.0f} MiB after the burst, "
            f"peak {beat['peak_rss']:.0f} MiB",
        ),
    ]
    for label, value in rows:
        print(f"  {label:<62} {value}")
    print(
        "\nreproduce: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres "
        f"REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.scale --tasks {args.tasks}"
    )


if __name__ == "__main__":
    main()
