"""Peers' ceilings on the same servers, for the side-by-side report (:mod:`bench.run_all`).

- :func:`skip_locked`: a bare ``DELETE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)``
  loop in ``workers`` processes over ``jobs`` rows — the dispatch ceiling of a PostgreSQL
  queue that does nothing else (no run record, no events, no broker).
- :func:`xadd`: ``count`` XADDs of a small event, pipelined in batches of 500 — the event
  ceiling of the Redis stream the outbox relay writes to.

Run: ``DATABASE_URL=… REDIS_URL=… python -m bench.peers``. Prints figures only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import uuid
from typing import Any

import psycopg
import redis

from bench.common import _admin_conninfo, load_average


def _drain(conninfo: str, go: Any, out: Any) -> None:
    done = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        go.wait()  # connected and imported: the clock starts for everyone at once
        first = time.time()
        while True:
            row = conn.execute(
                "DELETE FROM job WHERE id = (SELECT id FROM job ORDER BY id "
                "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
            ).fetchone()
            if row is None:
                break
            done += 1
    out.put((done, first, time.time()))


def skip_locked(database_url: str, jobs: int, workers: int = 2) -> dict[str, Any]:
    """Jobs/s of ``workers`` processes draining ``jobs`` rows one SKIP LOCKED claim each."""
    admin = _admin_conninfo(database_url)
    name = f"ordinaut_peer_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    conninfo = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE job (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)")
            conn.execute("INSERT INTO job SELECT FROM generate_series(1, %s)", (jobs,))
        spawn = multiprocessing.get_context("spawn")
        out: Any = spawn.Queue()
        go: Any = spawn.Event()
        procs = [spawn.Process(target=_drain, args=(conninfo, go, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        time.sleep(3)  # let them start and connect
        go.set()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(10)
        start = min(t for _, t, _ in results)
        end = max(t for _, _, t in results)
        done = sum(n for n, _, _ in results)
        return {"jobs": done, "seconds": end - start, "jobs_per_s": done / (end - start)}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def xadd(redis_url: str, count: int) -> dict[str, Any]:
    """Entries/s of ``count`` pipelined XADDs (batches of 500) to a private stream."""
    client = redis.Redis.from_url(redis_url)
    key = f"peer{uuid.uuid4().hex[:10]}:events"
    fields = {"outbox_id": 1, "topic": "task.run.succeeded", "payload": '{"run_id":"x"}'}
    try:
        start = time.perf_counter()
        for first in range(0, count, 500):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(500, count - first)):
                pipe.xadd(key, fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
            pipe.execute()
        seconds = time.perf_counter() - start
        return {"entries": count, "seconds": seconds, "entries_per_s": count / seconds}
    finally:
        client.delete(key)
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args(argv)
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        print("set DATABASE_URL and REDIS_URL (servers to create a bench database on)")
        return 2
    s = skip_locked(database_url, args.jobs)
    print(
        f"bare SKIP LOCKED loop, 2 processes: {s['jobs']} jobs in {s['seconds']:.2f} s = "
        f"{s['jobs_per_s']:.0f} jobs/s  [{load_average()}]"
    )
    x = xadd(redis_url, args.entries)
    print(
        f"raw XADD (pipelined by 500): {x['entries']} in {x['seconds']:.2f} s = "
        f"{x['entries_per_s']:.0f} entries/s  [{load_average()}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
