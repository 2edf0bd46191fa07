"""Create-task latency over HTTP: 1,000 POST /tasks from 4 concurrent clients.

Starts its own database (on the server in DATABASE_URL), a real API process (uvicorn, one
worker process) on a free loopback port, creates the admin agent, then fires the requests
and prints p50/p95/p99/max. Reproduce:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/api_latency.py [--requests 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from sqlalchemy.engine import make_url

from ordinaut.service.agents import ensure_admin
from ordinaut.store import migrate
from ordinaut.store.engine import make_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_url = make_url(server).set(drivername="postgresql", database="postgres")
    name = f"ordinaut_bench_{uuid.uuid4().hex[:8]}"
    admin = admin_url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = make_url(server).set(drivername="postgresql+psycopg", database=name)
    db = db_url.render_as_string(hide_password=False)
    api = None
    try:
        engine = make_engine(db, pool_size=1)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            created = ensure_admin(conn, None)
        engine.dispose()
        assert created is not None
        port = _free_port()
        env = dict(os.environ, DATABASE_URL=db, ORDINAUT_NAMESPACE=f"b{uuid.uuid4().hex[:8]}")
        env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "ordinaut.api.app:app_from_env",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        _wait(base)
        latencies = _run(base, created.token, args.requests, args.clients)
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(f"POST /tasks x{len(ms)} with {args.clients} concurrent clients (1 uvicorn process)")
    print(f"  p50 {q[49]:.1f} ms   p95 {q[94]:.1f} ms   p99 {q[98]:.1f} ms   max {ms[-1]:.1f} ms")
    print("reproduce: DATABASE_URL=… REDIS_URL=… python bench/api_latency.py")


def _run(base: str, token: str, total: int, clients: int) -> list[float]:
    when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {
        "title": "bench",
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
        "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"at": when}}]},
    }
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            for _ in range(5):  # warm-up, not counted
                http.post("/tasks", json=body).raise_for_status()
            for _ in range(per_client):
                start = time.perf_counter()
                http.post("/tasks", json=body).raise_for_status()
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/openapi.json", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("API did not start")


if __name__ == "__main__":
    main()
