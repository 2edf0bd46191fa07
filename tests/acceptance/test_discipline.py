"""Execution discipline with real processes: ``celery beat`` and ``celery worker`` (prefork).

Work is written straight into the test's database (tasks and due_work rows, as beat or the
API would) so that thousands of runs take seconds; everything after that — dispatch, the
broker, claims, leases, the reaper, the sweeper, retries — is the real thing. Workers are
killed with SIGKILL to the whole process group, which is a crash as far as Ordinaut can tell.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.runs.backoff import retry_delay
from ordinaut.store import queries
from ordinaut.store.engine import make_engine
from ordinaut.tools import catalog
from ordinaut.tools.spec import ToolSpec, Transport
from ordinaut.vocabulary import BackoffStrategy
from tests.integration.test_dispatch import add_due, make_task
from tests.support import Proc, processes, start_beat, start_worker, wait_for


def utcnow() -> datetime:
    return datetime.now(UTC)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def wait_ready(settings: Settings, *workers: Proc, timeout: float = 60) -> None:
    """Until each worker has sent its first heartbeat (it is consuming)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        for proc in workers:
            key = f"{settings.namespace}:heartbeat:worker:{proc.name}-{settings.namespace}@"
            key += socket.gethostname()
            wait_for(partial(client.exists, key), timeout, proc=proc, what=f"{proc.name} up")
    finally:
        client.close()


def owner_pid(lease_owner: str) -> int:
    return int(lease_owner.rsplit(":", 1)[1])


def worker_of(lease_owner: str, workers: list[Proc]) -> Proc:
    """The worker whose process group holds the pool process named in a lease."""
    group = os.getpgid(owner_pid(lease_owner))
    (proc,) = [w for w in workers if w.pid == group]
    return proc


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """The test's settings with a 5 s lease (the minimum): crashes are noticed in seconds."""
    return settings.model_copy(update={"lease_seconds": 5})


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test starts; at teardown all are told to stop at once, then awaited."""
    with processes() as started:
        try:
            yield started
        finally:
            for proc in started:
                proc.signal(signal.SIGTERM)


def task_with_due(engine: Engine, payload: Mapping[str, Any], **fields: Any) -> uuid.UUID:
    with engine.begin() as conn:
        task_id = make_task(conn, payload, **fields)
        add_due(conn, task_id, utcnow())
    return task_id


def sleep_step(step_id: str, seconds: Any, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "builtin.sleep", "with": {"seconds": seconds}, **extra}


# --- 1. no duplicates, none lost ------------------------------------------------------------


def test_two_workers_run_2000_due_runs_exactly_once(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    app = create_app(settings)
    try:
        procs.append(start_beat(settings, log_dir))
        workers = [start_worker(settings, log_dir, f"w{i}", concurrency=2) for i in range(2)]
        procs.extend(workers)
        wait_ready(settings, *workers)
        now = utcnow()
        with engine.begin() as conn:
            echo = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"n": 1}}]}
            tasks = [make_task(conn, echo) for _ in range(20)]
            due = [
                {"task_id": t, "run_at": now - timedelta(milliseconds=i), "not_before": now}
                for t in tasks
                for i in range(100)
            ]
            assert queries.insert_due_work(conn, due) == 2000
        for _ in range(12):  # dispatchers in both workers at once, racing for the same rows
            app.send_task("ordinaut.dispatch", queue=settings.control_queue)

        def finished() -> bool:
            (n,) = rows(engine, "SELECT count(*) FROM task_run WHERE status <> 'queued'")[0]
            return n >= 2000 and not rows(engine, "SELECT 1 FROM task_run WHERE status = 'running'")

        wait_for(finished, 120, interval=0.5, what="2000 runs to finish")
        runs = rows(
            engine, "SELECT task_id, scheduled_for, status, attempt, lease_owner FROM task_run"
        )
        occurrences = {(r.task_id, r.scheduled_for) for r in runs}
        assert len(runs) == 2000 and len(occurrences) == 2000  # one run per due row
        assert occurrences == {(d["task_id"], d["run_at"]) for d in due}  # none lost
        assert {(r.status, r.attempt) for r in runs} == {("succeeded", 1)}
        assert rows(engine, "SELECT count(*) FROM due_work")[0][0] == 0
        (steps, per_run) = rows(engine, "SELECT count(*), count(DISTINCT run_id) FROM step_result")[
            0
        ]
        assert steps == per_run == 2000  # every pipeline ran once
        assert {worker_of(r.lease_owner, workers).name for r in runs} == {"w0", "w1"}
    finally:
        app.close()
        engine.dispose()


# --- 2. a crash mid-run -----------------------------------------------------------------------


class ToolServer:
    """A local HTTP tool server: records every request (path, Idempotency-Key, body).

    ``POST /send`` answers at once. ``POST /slow`` answers at once unless the body says
    ``"attempt": 1``; then it holds the request until the test ends (the worker dies first).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, self.headers["Idempotency-Key"], body))
                if self.path == "/slow" and body.get("attempt") == 1:
                    outer.release.wait(60)
                answer = json.dumps({"ok": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def calls(self, path: str) -> Counter[str]:
        """How many requests ``path`` got, per Idempotency-Key."""
        return Counter(key for p, key, _ in self.requests if p == path)


@pytest.fixture
def tool_server() -> Iterator[ToolServer]:
    server = ToolServer()
    yield server
    server.close()


def register_http_tools(engine: Engine, server: ToolServer) -> None:
    schema = {"type": "object"}
    with engine.begin() as conn:
        for name in ("send", "slow"):
            catalog.save_tool(
                conn,
                ToolSpec(
                    address=f"demo.{name}",
                    transport=Transport.HTTP,
                    endpoint=f"{server.url}/{name}",
                    input_schema=schema,
                    output_schema=schema,
                    timeout_seconds=60,
                ),
            )


def test_a_killed_worker_run_is_retried_elsewhere_without_repeating_side_effects(
    fast: Settings, log_dir: Path, procs: list[Proc], tool_server: ToolServer
) -> None:
    engine = make_engine(fast.database_url, pool_size=2)
    try:
        register_http_tools(engine, tool_server)
        procs.append(start_beat(fast, log_dir))
        first = start_worker(fast, log_dir, "first", concurrency=2)
        procs.append(first)
        wait_ready(fast, first)
        # step 1 has the side effect; the worker dies inside step 2 (a call that hangs)
        resilient = task_with_due(
            engine,
            {
                "pipeline": [
                    {"id": "send", "uses": "demo.send", "with": {"text": "hello"}},
                    {"id": "wait", "uses": "demo.slow", "with": {"attempt": "${run.attempt}"}},
                ]
            },
            max_retries=2,
        )
        fragile = task_with_due(engine, {"pipeline": [sleep_step("wait", 30)]}, max_retries=0)

        def both_in_flight() -> bool:
            running = rows(engine, "SELECT 1 FROM task_run WHERE status = 'running'")
            return bool(tool_server.calls("/slow")) and len(running) == 2

        wait_for(both_in_flight, 30, proc=first, what="both runs in flight")
        second = start_worker(fast, log_dir, "second", concurrency=2)
        procs.append(second)
        wait_ready(fast, second)
        owners = {r.task_id: r.lease_owner for r in rows(engine, "SELECT * FROM task_run")}
        assert {worker_of(o, [first, second]).name for o in owners.values()} == {"first"}
        owner = owners[resilient]
        first.kill9()
        killed_at = utcnow()

        def attempts(task_id: uuid.UUID) -> list[Any]:
            return rows(
                engine, "SELECT * FROM task_run WHERE task_id = :t ORDER BY attempt", t=task_id
            )

        wait_for(
            lambda: (
                [r.status for r in attempts(resilient)] == ["failed", "succeeded"]
                and [r.status for r in attempts(fragile)] == ["failed"]
            ),
            40,
            proc=second,
            what="the retry on the second worker and the final failure",
        )
        crashed, retried = attempts(resilient)
        assert crashed.error == f"lease expired: worker {owner} stopped responding"
        assert worker_of(retried.lease_owner, [second]) is second
        assert retried.attempt == 2 and retried.started_at > killed_at
        assert (retried.started_at - killed_at).total_seconds() < 20  # ≈ lease + reap + backoff
        # the completed step's side effect happened once; the interrupted one was repeated
        # with the same Idempotency-Key, so the tool itself can tell it is the same call
        ((send_key, sends),) = tool_server.calls("/send").items()
        ((slow_key, slows),) = tool_server.calls("/slow").items()
        assert (sends, slows) == (1, 2)
        steps = rows(
            engine,
            "SELECT s.*, r.attempt AS run_attempt FROM step_result s "
            "JOIN task_run r ON r.id = s.run_id WHERE r.task_id = :t ORDER BY s.id",
            t=resilient,
        )
        assert [(s.run_attempt, s.step_id, s.status, s.cached) for s in steps] == [
            (1, "send", "succeeded", False),  # the side effect, once
            (2, "send", "succeeded", True),  # served from its receipt by idempotency key
            (2, "wait", "succeeded", False),
        ]
        assert steps[0].idempotency_key == steps[1].idempotency_key == send_key
        assert steps[2].idempotency_key == slow_key
        (final,) = attempts(fragile)  # retries exhausted: the reaper's failure is final
        assert final.error.startswith("lease expired") and final.attempt == 1
        assert rows(engine, "SELECT count(*) FROM due_work")[0][0] == 0
    finally:
        engine.dispose()


# --- 3. a concurrency key across workers ------------------------------------------------------


def overlaps(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at one instant."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    open_now = peak = 0
    for _, delta in edges:  # at equal instants the end (-1) sorts first: touching is fine
        open_now += delta
        peak = max(peak, open_now)
    return peak


def test_a_concurrency_key_holds_across_four_workers(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        body = {
            "pipeline": [
                {"id": "a", "uses": "builtin.echo", "with": {}},
                sleep_step("b", 0.15),
                {"id": "c", "uses": "builtin.echo", "with": {}},
            ]
        }
        procs.append(start_beat(settings, log_dir))
        workers = [start_worker(settings, log_dir, f"w{i}", concurrency=1) for i in range(4)]
        procs.extend(workers)
        wait_ready(settings, *workers)  # all four idle when the work arrives
        for _ in range(20):
            task_with_due(engine, body, concurrency_key="serial", concurrency_limit=1)
        for _ in range(8):
            task_with_due(
                engine,
                {"pipeline": [sleep_step("b", 0.4)]},
                concurrency_key="pair",
                concurrency_limit=2,
            )
        wait_for(
            lambda: (
                rows(engine, "SELECT count(*) FROM task_run WHERE status = 'succeeded'")[0][0] == 28
            ),
            90,
            interval=0.25,
            what="28 runs to succeed",
        )
        for key, limit in (("serial", 1), ("pair", 2)):
            runs = rows(
                engine,
                "SELECT r.started_at, r.finished_at, r.lease_owner, "
                "min(s.started_at) AS first_step, max(s.finished_at) AS last_step "
                "FROM task_run r JOIN step_result s ON s.run_id = r.id "
                "WHERE r.concurrency_key = :k GROUP BY r.id",
                k=key,
            )
            assert overlaps([(r.started_at, r.finished_at) for r in runs]) == limit
            assert overlaps([(r.first_step, r.last_step) for r in runs]) <= limit
            assert len({worker_of(r.lease_owner, workers).name for r in runs}) >= 2
    finally:
        engine.dispose()


# --- 4. retry timing -------------------------------------------------------------------------


def test_retries_follow_the_backoff_and_non_retryable_errors_fail_at_once(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        flaky = {"pipeline": [sleep_step("call", 1.0, timeout_seconds=0.05)]}  # times out
        strategies = {
            task_with_due(engine, flaky, max_retries=2, backoff_strategy=s.value): s
            for s in BackoffStrategy
        }
        broken = task_with_due(
            engine,
            {"pipeline": [sleep_step("call", "${params.when}")], "params": {"when": "soon"}},
            max_retries=3,
        )
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, "w", concurrency=2))
        wait_for(
            lambda: (
                rows(engine, "SELECT count(*) FROM task_run WHERE status = 'failed'")[0][0]
                == 3 * len(strategies) + 1
            ),
            60,
            interval=0.25,
            what="every attempt to fail",
        )
        for task_id, strategy in strategies.items():
            attempts = rows(
                engine, "SELECT * FROM task_run WHERE task_id = :t ORDER BY attempt", t=task_id
            )
            assert [a.attempt for a in attempts] == [1, 2, 3]  # max_retries=2
            for before, after in itertools.pairwise(attempts):
                expected = retry_delay(
                    strategy,
                    before.attempt,
                    base=settings.backoff_base_seconds,
                    cap=settings.backoff_cap_seconds,
                    seed=str(before.id),
                )
                planned = (after.not_before - before.finished_at).total_seconds()
                waited = (after.started_at - before.finished_at).total_seconds()
                assert abs(planned - expected) < 0.25, (strategy, before.attempt, planned)
                assert after.started_at >= after.not_before  # never early
                assert waited <= expected + 1.5, (strategy, waited)  # and promptly after
        exp = [
            a
            for t, s in strategies.items()
            if s is BackoffStrategy.EXPONENTIAL
            for a in rows(engine, "SELECT * FROM task_run WHERE task_id = :t ORDER BY attempt", t=t)
        ]
        gaps = [(b.not_before - a.finished_at).total_seconds() for a, b in itertools.pairwise(exp)]
        assert [round(g) for g in gaps] == [1, 2]  # base 1 s, doubling
        (only,) = rows(engine, "SELECT * FROM task_run WHERE task_id = :t", t=broken)
        assert only.status == "failed" and "with.seconds" in only.error
        assert rows(engine, "SELECT count(*) FROM due_work")[0][0] == 0
    finally:
        engine.dispose()


# --- 5. priority, sweeper ---------------------------------------------------------------------


def test_priority_one_runs_first_end_to_end(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        now = utcnow()
        priorities = [7, 3, 9, 1, 5, 2, 8, 4, 6, 1, 9, 5]
        with engine.begin() as conn:
            for i, priority in enumerate(priorities):
                task_id = make_task(
                    conn, {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"i": i}}]}
                )
                add_due(conn, task_id, now, priority=priority)
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, "solo", concurrency=1))
        wait_for(
            lambda: (
                rows(engine, "SELECT count(*) FROM task_run WHERE status = 'succeeded'")[0][0]
                == len(priorities)
            ),
            60,
            what="every run",
        )
        order = [
            r.priority for r in rows(engine, "SELECT priority FROM task_run ORDER BY started_at")
        ]
        assert order == sorted(priorities)
    finally:
        engine.dispose()


def test_the_sweeper_sends_a_queued_run_that_never_got_a_message(
    fast: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = make_engine(fast.database_url, pool_size=2)
    try:
        with engine.begin() as conn:
            task_id = make_task(
                conn, {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {}}]}
            )
            # what a dispatcher leaves behind when it dies between its commit and the publish
            conn.execute(
                sa.text(
                    "INSERT INTO task_run (task_id, status, scheduled_for, created_at) "
                    "VALUES (:t, 'queued', now() - interval '1 minute', "
                    "now() - interval '1 minute')"
                ),
                {"t": task_id},
            )
        procs.append(start_beat(fast, log_dir))
        worker = start_worker(fast, log_dir, "w", concurrency=1)
        procs.append(worker)
        wait_for(
            lambda: rows(engine, "SELECT 1 FROM task_run WHERE status = 'succeeded'"),
            30,
            proc=worker,
            what="the swept run to succeed",
        )
        (run,) = rows(engine, "SELECT * FROM task_run")
        assert run.published_at is not None and run.published_at > run.created_at
        assert "re-sent 1 queued runs without a message" in worker.log()
    finally:
        engine.dispose()
