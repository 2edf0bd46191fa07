"""Agenda cost at 10,000 tasks: ``Service.agenda`` (the code behind ``GET /agenda``).

Stores N active tasks of one agent in a private database (a mix: hourly cron, weekdays 08:30
RRULE, every 5 minutes with 60 s jitter, daily at a task-specific minute in one of four zones),
then times the first page of the next 24 hours (500 items), two pages of 10,000 (the largest
page) following a cursor, and the first page of a 31-day window, with the task rows each
call read (the agenda reads them in chunks, only as far as the page needs). Reproduce:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.agenda [--tasks 10000]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import Bench
from ordinaut.runtime import Runtime
from ordinaut.scheduling.planning import fire_time, schedule_of
from ordinaut.service.agents import ensure_admin
from ordinaut.service.facade import Service
from ordinaut.store.tables import task

ZONES = ("Europe/Chisinau", "America/New_York", "Asia/Tokyo", "UTC")
ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]}


def _spec(i: int) -> tuple[str, str, str, int]:
    zone = ZONES[i % len(ZONES)]
    return [
        ("cron", "0 * * * *", zone, 0),
        ("rrule", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30", zone, 0),
        ("cron", "*/5 * * * *", zone, 60),
        ("cron", f"{i % 60} {i % 24} * * *", zone, 0),
    ][i % 4]


def _rows(owner: uuid.UUID, count: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        kind, expr, zone, jitter = _spec(i)
        task_id = uuid.uuid4()
        occurrence = schedule_of(kind, expr, zone, now).next_after(now)
        rows.append(
            {
                "id": task_id,
                "title": f"task {i}",
                "created_by": owner,
                "schedule_kind": kind,
                "schedule_expr": expr,
                "timezone": zone,
                "payload": ECHO,
                "jitter_seconds": jitter,
                "next_occurrence_at": occurrence,
                "next_run_at": fire_time(task_id, occurrence, jitter),
                "created_at": now,
            }
        )
    return rows


ROWS_READ = [0]  # task rows the agenda's queries returned


def _timed(label: str, call: Callable[[], int], repeat: int = 3) -> None:
    best = float("inf")
    items = 0
    for _ in range(repeat):
        ROWS_READ[0] = 0
        started = time.perf_counter()
        items = call()
        best = min(best, time.perf_counter() - started)
    print(
        f"  {label:<44} {best * 1000:8.1f} ms  ({items} items, best of {repeat}; "
        f"{ROWS_READ[0]} task rows read)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    bench = Bench(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    runtime = Runtime(bench.settings, role="bench")
    try:
        now = datetime.now(UTC)
        with bench.engine.begin() as conn:
            admin = ensure_admin(conn, None)
            assert admin is not None
            conn.execute(sa.insert(task), _rows(admin.id, args.tasks, now))
        svc = Service(runtime, kick_dispatch=lambda: None)
        me = svc.authenticate(admin.token)

        @sa.event.listens_for(runtime.engine, "after_cursor_execute")
        def counted(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if "AS earliest" in statement:
                ROWS_READ[0] += cursor.rowcount

        def first_page() -> int:
            return len(svc.agenda(me, limit=500).items)

        def two_pages() -> int:
            first = svc.agenda(me, limit=10_000)
            second = svc.agenda(me, limit=10_000, cursor=first.next_cursor)
            return len(first.items) + len(second.items)

        def month_page() -> int:
            start = datetime.now(UTC)
            return len(svc.agenda(me, start=start, end=start + timedelta(days=31)).items)

        print(f"agenda over {args.tasks} active tasks (load average {os.getloadavg()[0]:.2f})")
        _timed("first page, next 24 h (500 items)", first_page)
        _timed("two pages of 10,000 (the page cap), next 24 h", two_pages)
        _timed("first page of a 31-day window (500 items)", month_page)
        print("reproduce: DATABASE_URL=... REDIS_URL=... python -m bench.agenda [--tasks 10000]")
    finally:
        runtime.close()
        bench.close()


if __name__ == "__main__":
    main()
