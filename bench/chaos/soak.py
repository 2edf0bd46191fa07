"""One soak: servers, processes, workload, faults, drain, audit, teardown.

Everything runs on loopback on servers the soak starts itself (an embedded PostgreSQL and an
embedded Redis on spare ports, in a temporary folder); the machine's own servers are never
touched. The Ordinaut processes are the ones a deployment runs: the API (uvicorn), beat, the
control worker (``-c 1``) and three runs workers (``-c 2``), started by
:class:`bench.common.Bench`. Beside the faults, two threads run through the window: a
:class:`StreamReader` reading the event stream as a consumer would, and the
:class:`~bench.chaos.events.Publisher` feeding the event tasks through ``POST /events``.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from bench.chaos import audit, event_audit, events, faults, workload
from bench.chaos.toolserver import ToolServer
from bench.common import Bench, Proc, load_average
from ordinaut.embedded import EmbeddedPostgres, EmbeddedRedis
from ordinaut.embedded.process import free_port
from ordinaut.events.relay import relay, stream_key
from ordinaut.service.agents import ensure_admin

GRACE_SECONDS = 10  # misfire grace: a beat down longer than this makes real misfires
RUNS_WORKERS = 3


@dataclass(frozen=True)
class Options:
    """What to run: the window's length, the seed, the number of tasks, the drain limit, the
    number of event tasks and the events published per second."""

    minutes: float = 10.0
    seed: int = 1
    tasks: int = 2000
    drain_seconds: float = 120.0
    keep_logs: bool = False
    event_tasks: int = 24
    event_rate: float = 2.0


@dataclass
class Outcome:
    """The audit report plus what is needed to print it."""

    report: audit.Report
    options: Options
    faults: list[audit.FaultRecord]
    window: tuple[datetime, datetime]
    load: tuple[str, str]
    log_dir: Path
    notes: list[str] = field(default_factory=list)


class StreamReader:
    """Reads the event stream as a consumer would (XREAD from the last id), through outages."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.seen: set[int] = set()
        self.duplicates = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> StreamReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def catch_up(self, ids: set[int], timeout: float = 15.0) -> None:
        """Wait (bounded) until every id in ``ids`` has been read."""
        deadline = time.monotonic() + timeout
        while not ids <= self.seen and time.monotonic() < deadline:
            time.sleep(0.2)

    def _loop(self) -> None:
        last = "0-0"
        client: redis.Redis | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = redis.Redis.from_url(
                        self.url, socket_timeout=3, socket_connect_timeout=2
                    )
                answer: Any = client.xread({self.key: last}, count=2000, block=500)
                for _, entries in answer or []:
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        outbox_id = int(fields[b"outbox_id"])
                        if outbox_id in self.seen:
                            self.duplicates += 1
                        self.seen.add(outbox_id)
            except (redis.RedisError, OSError):
                if client is not None:
                    client.close()
                client = None
                self._stop.wait(0.5)


class Soak:
    """The stack under test and the fault actions on it."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.root = Path(tempfile.mkdtemp(prefix="ordinaut-chaos-"))
        self.postgres = EmbeddedPostgres(self.root / "pg", log_file=self.root / "postgres.log")
        self.redis = EmbeddedRedis(self.root / "redis", log_file=self.root / "redis.log")
        self.tools = ToolServer(options.seed)
        self.bench: Bench | None = None
        self.api_port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.runs_workers: list[Proc] = []
        self.started = 0
        self.beat: Proc | None = None
        self.beat2: Proc | None = None
        self.control: Proc | None = None
        self.rng = random.Random(options.seed)
        self.keep = True  # logs and server folders stay unless the soak ended clean

    # --- the stack ------------------------------------------------------------------

    def start(self) -> Bench:
        self.tools.start()
        pg_url = self.postgres.start()
        redis_url = self.redis.start()
        bench = self.bench = Bench(
            pg_url,
            redis_url,
            lease_seconds=20,
            misfire_grace_seconds=GRACE_SECONDS,
        )
        bench.extra_env.update(
            ORDINAUT_MISFIRE_GRACE_SECONDS=str(GRACE_SECONDS),
            ORDINAUT_BACKOFF_BASE_SECONDS="1",
            ORDINAUT_BACKOFF_CAP_SECONDS="8",
            ORDINAUT_RATE_LIMIT_PER_MINUTE="0",
            ORDINAUT_API_ADDRESS=f"127.0.0.1:{self.api_port}",
        )
        with bench.engine.begin() as conn:
            ensure_admin(conn, self.token)
        bench.start_api(self.api_port)
        self.beat = bench.start_beat()
        self.control = bench.start_worker("control", "control", concurrency=1)
        for _ in range(RUNS_WORKERS):
            self._new_runs_worker()
        bench.wait_workers(1 + RUNS_WORKERS, timeout=120)
        return bench

    def _new_runs_worker(self) -> None:
        assert self.bench is not None
        self.started += 1
        self.runs_workers.append(
            self.bench.start_worker(f"runs-{self.started}", "runs", concurrency=2)
        )

    def close(self) -> None:
        if self.bench is not None:
            with contextlib.suppress(Exception):
                self.bench.stop_processes()
            self.bench.engine.dispose()
            self.bench.redis.close()
        self.tools.stop()
        for server in (self.redis, self.postgres):
            with contextlib.suppress(Exception):
                if server.pid is not None:
                    os.kill(server.pid, signal.SIGCONT)
                server.stop(timeout=10)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
            if self.bench is not None:
                shutil.rmtree(self.bench.log_dir, ignore_errors=True)

    # --- faults: begin returns the action that ends the fault ------------------------

    def begin(self, kind: str) -> tuple[str, Any]:
        bench = self.bench
        assert bench is not None
        if kind == "kill_runs_worker":
            victim = self.rng.choice(self.runs_workers)
            victim.kill9()
            self.runs_workers.remove(victim)
            bench.procs.remove(victim)
            return victim.name, self._new_runs_worker
        if kind == "kill_control":
            return "control", self._restart("control")
        if kind == "kill_beat":
            return "beat", self._restart("beat")
        if kind == "second_beat":
            self.beat2 = bench.start_beat("beat-2")

            def stop_second() -> None:
                assert self.beat2 is not None
                self.beat2.stop()
                bench.procs.remove(self.beat2)

            return "beat-2", stop_second
        if kind == "restart_redis":
            self.redis.stop(timeout=10)
            return "redis", self.redis.start
        if kind == "pause_redis":
            pid = self.redis.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            return f"redis pid {pid}", lambda: os.kill(pid, signal.SIGCONT)
        if kind == "restart_postgres":
            pid = self.postgres.pid
            assert pid is not None
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown: crash recovery at next start
            self.postgres.stop(timeout=10)
            return f"postgres pid {pid}", self.postgres.start
        raise ValueError(kind)

    def _restart(self, which: str) -> Any:
        bench = self.bench
        assert bench is not None
        proc = self.control if which == "control" else self.beat
        assert proc is not None
        proc.kill9()
        bench.procs.remove(proc)

        def again() -> None:
            if which == "control":
                self.control = bench.start_worker("control", "control", concurrency=1)
            else:
                self.beat = bench.start_beat()

        return again


def _create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    for attempt in range(5):
        made = client.post("/tasks", json=body)
        if made.status_code == 201:
            answer: dict[str, Any] = made.json()
            return answer
        if made.status_code < 500 or attempt == 4:
            raise RuntimeError(f"POST /tasks {made.status_code}: {made.text[:300]}")
        time.sleep(0.5)
    raise AssertionError("unreachable")


def _make_tasks(
    client: httpx.Client, specs: list[workload.TaskSpec], offset: int
) -> list[audit.Created]:
    def one(item: tuple[int, workload.TaskSpec]) -> audit.Created:
        i, spec = item
        made = _create(client, spec.body(offset + i))
        return audit.Created(made["id"], spec, datetime.fromisoformat(made["created_at"]))

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(one, enumerate(specs)))


def _make_event_tasks(
    client: httpx.Client, specs: list[events.EventTaskSpec]
) -> list[event_audit.CreatedEventTask]:
    made = [_create(client, spec.body(i)) for i, spec in enumerate(specs)]
    return [
        event_audit.CreatedEventTask(m["id"], spec, datetime.fromisoformat(m["created_at"]))
        for m, spec in zip(made, specs, strict=True)
    ]


def _publisher(soak: Soak, rate: float) -> events.Publisher:
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{soak.api_port}",
        headers={"Authorization": f"Bearer {soak.token}"},
        timeout=5,
    )
    return events.Publisher(client, rate, soak.options.seed)


def _settled(
    soak: Soak,
    tasks: list[audit.Created],
    event_tasks: list[event_audit.CreatedEventTask],
    published: list[events.Published],
    end: datetime,
) -> bool:
    assert soak.bench is not None
    engine = soak.bench.engine
    report = audit.classify(engine, tasks, end, timedelta(seconds=GRACE_SECONDS))
    with engine.connect() as conn:
        unpublished = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        ).scalar_one()
    return (
        report.buckets["unfinished"] == 0
        and report.buckets["lost"] == 0
        and not unpublished
        and event_audit.settled(engine, event_tasks, published)
    )


def run(options: Options, print_: Callable[[str], None] = print) -> Outcome:
    """Run one soak and audit it; the stack is gone when this returns."""
    clock0 = time.monotonic()

    def say(line: str) -> None:
        print_(f"[{time.monotonic() - clock0:6.1f}s] {line}")

    soak = Soak(options)
    records: list[audit.FaultRecord] = []
    publisher: events.Publisher | None = None
    load_start = load_average()
    try:
        bench = soak.start()
        reader = StreamReader(bench.settings.redis_url, stream_key(bench.settings.namespace))
        reader.start()
        say(f"stack up (logs in {bench.log_dir}, servers in {soak.root})")
        mix = workload.Mix.of(options.tasks)
        rng = random.Random(options.seed)
        length = options.minutes * 60
        with httpx.Client(
            base_url=f"http://127.0.0.1:{soak.api_port}",
            headers={"Authorization": f"Bearer {soak.token}"},
            timeout=30,
        ) as client:
            made = client.post("/tools", json=workload.tool_body(soak.tools.url))
            if made.status_code != 201:
                raise RuntimeError(f"POST /tools {made.status_code}: {made.text[:300]}")
            recurring = workload.plan(
                workload.Mix(mix.cron, mix.secondly, 0), rng, datetime.now(UTC), datetime.now(UTC)
            )
            tasks = _make_tasks(client, recurring, 0)
            event_tasks = _make_event_tasks(client, events.plan(options.event_tasks, rng))
            t0 = datetime.now(UTC)
            end = t0 + timedelta(seconds=length)
            once = workload.plan(
                workload.Mix(0, 0, mix.once),
                rng,
                t0 + timedelta(seconds=min(15, length / 4)),
                end - timedelta(seconds=3),
            )
            tasks += _make_tasks(client, once, len(recurring))
        publisher = _publisher(soak, options.event_rate).start()
        say(
            f"{len(tasks)} tasks ({mix}), {len(event_tasks)} event tasks fed "
            f"{options.event_rate:g} events/s; window {t0:%H:%M:%S} → {end:%H:%M:%S} UTC"
        )
        disagree = sum(
            1
            for m in tasks
            if not workload.agrees_with_ordinaut(m.spec.kind, m.spec.expr, m.created_at, end)
        )
        plan = faults.schedule(options.seed, min(5.0, length / 10), length - 10)
        actions: list[tuple[float, int, str, Any]] = []
        for i, fault in enumerate(plan):
            actions.append((fault.at, i, fault.kind, None))
        pending: dict[int, tuple[datetime, str, Any]] = {}
        while actions:
            actions.sort(key=lambda a: a[0])
            at, i, kind, finish = actions.pop(0)
            delay = at - (datetime.now(UTC) - t0).total_seconds()
            if delay > 0:
                time.sleep(delay)
            if finish is None:
                began = datetime.now(UTC)
                detail, finish = soak.begin(kind)
                pending[i] = (began, detail, finish)
                actions.append((at + plan[i].length, i, kind, finish))
                say(f"  +{(began - t0).total_seconds():6.1f}s {kind} ({detail})")
            else:
                finish()
                began, detail, _ = pending.pop(i)
                records.append(audit.FaultRecord(kind, began, datetime.now(UTC), detail))
        remaining = (end - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            time.sleep(remaining)
        publisher.stop()
        published = list(publisher.accepted)
        load_end = load_average()
        say(
            f"window over [{load_end}]; {len(published)} events accepted; "
            f"draining (at most {options.drain_seconds:.0f} s)"
        )
        deadline = time.monotonic() + options.drain_seconds
        while (
            not _settled(soak, tasks, event_tasks, published, end) and time.monotonic() < deadline
        ):
            time.sleep(2)
        bench.stop_processes()
        # events written while the processes shut down (runs finishing) are relayed by the
        # same code the control worker runs, as a restarted control worker would
        relay(bench.engine, bench.redis, bench.settings.namespace)
        with bench.engine.connect() as conn:
            ids = set(conn.execute(sa.text("SELECT id FROM outbox")).scalars())
        reader.catch_up(ids)
        reader.stop()
        engine = bench.engine
        report = audit.classify(engine, tasks, end, timedelta(seconds=GRACE_SECONDS))
        report.must_be_zero["schedule disagreements (arithmetic vs ordinaut)"] = disagree
        audit.concurrency(report, tasks, dict(soak.tools.max_active))
        audit.side_effects(report, engine, list(soak.tools.calls), end)
        audit.outbox(report, engine, reader.seen, reader.duplicates)
        event_audit.classify(report, engine, event_tasks, published)
        report.info["events given up (never answered 202: not expected)"] = publisher.given_up
        report.info["event publish retries (same Idempotency-Key)"] = publisher.retried
        if publisher.refused:
            report.info["event publishes refused (4xx)"] = publisher.refused
        audit.recovery(report, records)
        report.info.pop("_runs")
        soak.keep = options.keep_logs or not report.clean
        say("audited")
        return Outcome(report, options, records, (t0, end), (load_start, load_end), bench.log_dir)
    finally:
        if publisher is not None:
            publisher.stop()
            publisher.client.close()
        soak.close()
