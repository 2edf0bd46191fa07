"""procrastinate's burn-down and ``schedule_at`` lag — run by :mod:`bench.run_all` in its own
virtualenv (procrastinate is no dependency of Ordinaut; this file imports nothing of it).

``python bench/procrastinate_peer.py CONNINFO JOBS RATE SECONDS`` prints one JSON line:
``burn_down_per_s`` (``JOBS`` no-op jobs deferred, then one worker, concurrency 2, drains
them: first start → last finish, from procrastinate's own event table) and the lag p50/p99
(ms) of ``RATE`` jobs/s for ``SECONDS`` s deferred with ``schedule_at`` spread over the window,
from the scheduled instant to the ``started`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
from typing import Any

import procrastinate  # type: ignore[import-not-found, unused-ignore]
import psycopg


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def _drain(app: Any, conninfo: str, total: int, timeout: float) -> None:
    worker = asyncio.create_task(app.run_worker_async(queues=["bench"], concurrency=2))
    deadline = asyncio.get_running_loop().time() + timeout
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        while asyncio.get_running_loop().time() < deadline:
            cur = await conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= total:
                break
            await asyncio.sleep(0.2)
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await worker


async def _main(conninfo: str, jobs: int, rate: float, seconds: float) -> dict[str, Any]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop", queue="bench")  # type: ignore[untyped-decorator, unused-ignore]
    async def noop() -> None:
        return None

    out: dict[str, Any] = {"version": getattr(procrastinate, "__version__", "?")}
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for _ in range(jobs):
            await noop.defer_async()
        await _drain(app, conninfo, jobs, 600)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') "
                "- min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events"
            )
            row = await cur.fetchone()
            span = float(row[0]) if row and row[0] else float("nan")
            out["burn_down_per_s"] = jobs / span
            await conn.execute("TRUNCATE procrastinate_events, procrastinate_jobs CASCADE")
        count = int(rate * seconds)
        first = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        for i in range(count):
            at = first + dt.timedelta(seconds=i / rate)
            await noop.configure(schedule_at=at).defer_async()
        await _drain(app, conninfo, count, seconds + 120)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT extract(epoch FROM e.at - j.scheduled_at) * 1000 FROM procrastinate_jobs j "
                "JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'started'"
            )
            lags = [float(r[0]) for r in await cur.fetchall()]
    out["lag_p50_ms"] = _percentile(lags, 50)
    out["lag_p99_ms"] = _percentile(lags, 99)
    out["lag_runs"] = len(lags)
    return out


if __name__ == "__main__":
    conninfo, jobs, rate, seconds = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        float(sys.argv[4]),
    )
    print(json.dumps(asyncio.run(_main(conninfo, jobs, rate, seconds))))
