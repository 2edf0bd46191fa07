"""Events: outbox → stream relay throughput, and POST /events → run started latency.

1. **Relay**: ``--outbox`` rows (default 20,000) written to the outbox in one statement,
   then relayed to the Redis stream by :func:`ordinaut.events.relay.relay` in this process
   (as the ``ordinaut.relay`` task does); prints events/s. Then one trigger consumer pass
   reads and acknowledges them all (none is external, so it only reads and acks).
2. **Latency**: a real API process (uvicorn), a control worker, a runs worker and beat; one
   event task (``bench.*``, a one-step echo pipeline); ``POST /events`` at ``--rate`` per
   second (default 20) for ``--seconds`` (default 20), each payload carrying the client's
   send time; latency is the run's ``started_at`` minus that send time. Prints p50/p95/p99.

Reproduce:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.events [--outbox 20000] \\
        [--rate 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from bench.common import Bench, Proc, load_average, wait_for
from ordinaut.clock import utcnow
from ordinaut.events import trigger
from ordinaut.events.relay import relay
from ordinaut.service.agents import ensure_admin


def relay_throughput(bench: Bench, count: int) -> None:
    with bench.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO outbox (topic, payload) SELECT 'bench.event', "
                "jsonb_build_object('n', i, 'task_id', gen_random_uuid()) "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": count},
        )
    client = bench.redis.__class__.from_url(
        bench.settings.redis_url, decode_responses=True, protocol=3
    )
    start = time.perf_counter()
    relayed = 0
    while relayed < count:
        relayed += relay(bench.engine, client, bench.settings.namespace)
    took = time.perf_counter() - start
    print(f"relay: {relayed} outbox rows → stream in {took:.2f} s = {relayed / took:,.0f} events/s")
    start = time.perf_counter()
    read = 0
    while True:
        got = trigger.consume(bench.engine, client, bench.settings.namespace, utcnow())
        if not got.entries:
            break
        read += got.entries
    took = time.perf_counter() - start
    print(f"trigger consumer: {read} entries read+acked in {took:.2f} s = {read / took:,.0f}/s")
    client.delete(f"{bench.settings.namespace}:events")
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def latency(bench: Bench, rate: float, seconds: float) -> None:
    with bench.engine.begin() as conn:
        created = ensure_admin(conn, None)
    assert created is not None
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "ordinaut.api.app:app_from_env",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    bench.procs.append(Proc("api", argv, bench.env(), bench.log_dir))
    bench.start_worker("control", "control", concurrency=1)
    bench.start_worker("runs", "runs", concurrency=2)
    bench.start_beat()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {created.token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:

        def up() -> bool:
            try:
                return http.get("/openapi.json").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 60, bench)
        bench.wait_workers(2)
        made = http.post(
            "/tasks",
            json={
                "title": "bench event",
                "schedule_kind": "event",
                "schedule_expr": "bench.*",
                "payload": {
                    "pipeline": [
                        {"id": "e", "uses": "builtin.echo", "with": {"n": "${event.payload.n}"}}
                    ]
                },
            },
        )
        assert made.status_code == 201, made.text
        for i in range(10):  # warm-up: every process has its connections
            http.post("/events", json={"topic": "bench.warm", "payload": {"n": -i}})
        time.sleep(2)
        with bench.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM task_run"))
        total = int(rate * seconds)
        start = time.monotonic()
        for i in range(total):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent = datetime.now(UTC).isoformat()
            got = http.post(
                "/events", json={"topic": "bench.tick", "payload": {"n": i, "sent": sent}}
            )
            assert got.status_code == 202, got.text

    def started() -> int:
        with bench.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM task_run WHERE started_at IS NOT NULL")
                ).scalar_one()
            )

    wait_for(lambda: started() >= total, 120, bench)
    with bench.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM started_at - CAST(event->'payload'->>'sent' "
                "AS timestamptz)) FROM task_run"
            )
        ).scalars()
        ms = sorted(float(x) * 1000 for x in rows)
    q = statistics.quantiles(ms, n=100)
    print(
        f"POST /events → run started, {total} events at {rate:g}/s: p50 {q[49]:.1f} ms, "
        f"p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"
    )
    # where the time goes: sent → recorded (API) → due_work written (relay + trigger pass)
    # → execute_run published (dispatch) → started (runs worker)
    stages = {
        "sent → recorded by the API": "CAST(event->>'at' AS timestamptz) - "
        "CAST(event->'payload'->>'sent' AS timestamptz)",
        "recorded → due_work written": "work_created_at - CAST(event->>'at' AS timestamptz)",
        "due_work → execute_run sent": "published_at - work_created_at",
        "sent → started (runs worker)": "started_at - published_at",
    }
    with bench.engine.connect() as conn:
        for label, expr in stages.items():
            values = sorted(
                float(x) * 1000
                for x in conn.execute(
                    sa.text(f"SELECT extract(epoch FROM {expr}) FROM task_run")
                ).scalars()
            )
            part = statistics.quantiles(values, n=100)
            print(f"  {label}: p50 {part[49]:.1f} ms, p99 {part[98]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    bench = Bench(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    try:
        print(f"load average before: {load_average()}")
        relay_throughput(bench, args.outbox)
        latency(bench, args.rate, args.seconds)
        print(f"load average after: {load_average()}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
