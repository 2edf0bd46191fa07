"""Policies with real processes (``celery beat`` and a prefork ``celery worker``): budgets,
quiet hours ``drop`` and the ``policy.quiet_hours`` tool, against a local HTTP tool server.

Tasks and due_work rows are written straight into the test's database (as the API or beat
would); dispatch, the broker, claims and execution are the real thing.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.store import queries
from ordinaut.store.engine import make_engine
from ordinaut.tools import catalog
from ordinaut.tools.spec import ToolSpec, Transport
from tests.acceptance.test_discipline import ToolServer, procs, rows, tool_server, wait_ready
from tests.integration.test_dispatch import agent_id, make_task
from tests.support import (
    Proc,
    free_port,
    settings_env,
    start_beat,
    start_worker,
    wait_for,
)

__all__ = ["procs", "tool_server"]  # fixtures


EN_DASH = "\u2013"


def utcnow() -> datetime:
    return datetime.now(UTC)


def echo(step_id: str) -> dict[str, Any]:
    return {"id": step_id, "uses": "builtin.echo", "with": {"step": step_id}}


def register_notify(engine: Engine, server: ToolServer) -> None:
    """``notify.send``: an HTTP tool on the local server, holding the ``notify`` scope (which
    the test agent is given)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE agent SET scopes = array_append(scopes, 'notify') WHERE id = :a"),
            {"a": agent_id(conn)},
        )
        catalog.save_tool(
            conn,
            ToolSpec(
                address="notify.send",
                transport=Transport.HTTP,
                endpoint=f"{server.url}/send",
                input_schema={"type": "object"},
                output_schema={"type": "object"},
                timeout_seconds=30,
                scopes=("notify",),
            ),
        )


def due_now(engine: Engine, payload: Mapping[str, Any], count: int = 1, **fields: Any) -> uuid.UUID:
    """A task with ``count`` occurrences due now (a second apart, so each is its own)."""
    now = utcnow()
    with engine.begin() as conn:
        task_id = make_task(conn, payload, **fields)
        queries.insert_due_work(
            conn,
            [
                {"task_id": task_id, "run_at": now - timedelta(seconds=i), "not_before": now}
                for i in range(count)
            ],
        )
    return task_id


def finished_runs(engine: Engine, task_id: uuid.UUID, count: int) -> list[Any]:
    def done() -> list[Any] | None:
        found = rows(
            engine,
            "SELECT id, status, reason, error, attempt, decisions FROM task_run "
            "WHERE task_id = :t AND status NOT IN ('queued', 'running') ORDER BY scheduled_for",
            t=task_id,
        )
        return found if len(found) >= count else None

    return wait_for(done, 60, interval=0.3, what=f"{count} finished runs of {task_id}")


def start(settings: Settings, log_dir: Path, procs: list[Proc]) -> Engine:
    procs.append(start_beat(settings, log_dir))
    worker = start_worker(settings, log_dir, "w0", concurrency=2)
    procs.append(worker)
    wait_ready(settings, worker)
    return make_engine(settings.database_url, pool_size=2)


def kick(settings: Settings) -> None:
    app = create_app(settings)
    try:
        app.send_task("ordinaut.dispatch", queue=settings.control_queue)
    finally:
        app.close()


def test_budgets_skip_the_run_past_runs_per_day_and_fail_the_step_past_a_call_cap(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = start(settings, log_dir, procs)
    try:
        # runs_per_day 2 on the task: of three occurrences due now, one is skipped
        capped = due_now(
            engine,
            {"pipeline": [echo("a")]},
            count=3,
            budgets=json.dumps({"tz": "UTC", "runs_per_day": 2}),
        )
        # tool_calls_per_day 2 on the agent: the third call of a run is not made
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE agent SET budgets = CAST(:b AS jsonb) WHERE id = :a"),
                {"b": json.dumps({"tz": "UTC", "tool_calls_per_day": 2}), "a": agent_id(conn)},
            )
        calls = due_now(engine, {"pipeline": [echo("one"), echo("two"), echo("three")]})
        kick(settings)
        runs = finished_runs(engine, capped, 3)
        statuses = sorted(r.status for r in runs)
        assert statuses == ["skipped", "succeeded", "succeeded"], runs
        (skipped,) = [r for r in runs if r.status == "skipped"]
        assert skipped.reason == (
            f"budget_exceeded: task budget runs_per_day 2 of 2 ({utcnow().date().isoformat()} UTC)"
        )
        assert skipped.decisions[0]["what"] == "skipped"
        assert skipped.decisions[0]["policy"] == "budget"
        (run,) = finished_runs(engine, calls, 1)
        # the agent's cap counts every call of its tasks: "capped" made two already
        assert run.status == "failed" and run.attempt == 1
        assert "budget_exceeded" in run.error and "tool_calls_per_day 2 of 2" in run.error
        steps = rows(
            engine, "SELECT step_path, status FROM step_result WHERE run_id = :r", r=run.id
        )
        assert [tuple(s) for s in steps] == [("one", "failed")]
        (refusal,) = run.decisions
        assert refusal["policy"] == "budget" and refusal["step"] == "one"
        assert refusal["metric"] == "tool_calls_per_day"
        # not retried: no further attempt is due
        assert rows(engine, "SELECT count(*) FROM due_work WHERE task_id = :t", t=calls)[0][0] == 0
        usage = dict(
            rows(
                engine,
                "SELECT counter, used FROM budget_usage WHERE subject_id = :t",
                t=capped,
            )
        )
        assert usage == {"runs": 2}
        events = rows(engine, "SELECT payload FROM outbox WHERE topic = 'task.run.policy'")
        assert any(e.payload.get("step") == "one" for e in events)
    finally:
        engine.dispose()


def _window_around(now: datetime) -> str:
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_quiet_hours_drop_skips_the_silenced_step_and_the_tool_answers(
    settings: Settings, log_dir: Path, procs: list[Proc], tool_server: ToolServer
) -> None:
    engine = start(settings, log_dir, procs)
    try:
        register_notify(engine, tool_server)
        rule = {
            "tz": "UTC",
            "windows": [_window_around(utcnow())],
            "on_quiet": "drop",
            "scopes": ["notify"],
        }
        pipeline = {
            "pipeline": [
                {"id": "q", "uses": "policy.quiet_hours", "with": {}, "save_as": "q"},
                {"id": "send", "uses": "notify.send", "with": {"text": "hello"}},
                echo("after"),
            ]
        }
        task_id = due_now(engine, pipeline, quiet_hours=json.dumps(rule))
        kick(settings)
        (run,) = finished_runs(engine, task_id, 1)
        assert run.status == "succeeded", run
        steps = {
            s.step_path: s
            for s in rows(
                engine,
                "SELECT step_path, status, output, error FROM step_result WHERE run_id = :r",
                r=run.id,
            )
        }
        assert steps["q"].output["quiet"] is True
        assert datetime.fromisoformat(steps["q"].output["next_allowed"]) > utcnow()
        assert steps["send"].status == "skipped"
        assert steps["send"].error.startswith("dropped by quiet hours")
        assert steps["after"].status == "succeeded"
        assert tool_server.requests == []  # the notify tool got no call
        (decision,) = run.decisions
        assert decision["what"] == "dropped" and decision["step"] == "send"
        assert "UTC" in decision["why"]
    finally:
        engine.dispose()


class Recorder:
    """A local HTTP tool server that records each call (when, path, body) and, per path, how
    many calls were in flight at once; ``/hold`` answers after half a second."""

    def __init__(self) -> None:
        self.calls: list[tuple[datetime, str, Any]] = []
        self.in_flight: Counter[str] = Counter()  # per path
        self.most_in_flight: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.calls.append((utcnow(), self.path, body))
                    outer.in_flight[self.path] += 1
                    outer.most_in_flight[self.path] = max(
                        outer.most_in_flight[self.path], outer.in_flight[self.path]
                    )
                try:
                    if self.path == "/hold":
                        time.sleep(0.5)
                    answer = json.dumps({"ok": True}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                finally:
                    with outer.lock:
                        outer.in_flight[self.path] -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, path: str) -> list[tuple[datetime, str, Any]]:
        with self.lock:
            return [c for c in self.calls if c[1] == path]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def register(engine: Engine, server: Recorder, address: str, path: str) -> None:
    """An HTTP tool ``address`` on the recorder holding the ``notify`` scope."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE agent SET scopes = array_append(scopes, 'notify') "
                "WHERE id = :a AND NOT 'notify' = ANY(scopes)"
            ),
            {"a": agent_id(conn)},
        )
        catalog.save_tool(
            conn,
            ToolSpec(
                address=address,
                transport=Transport.HTTP,
                endpoint=f"{server.url}{path}",
                input_schema={"type": "object"},
                output_schema={"type": "object"},
                timeout_seconds=30,
                scopes=("notify",),
            ),
        )


def runs_of(engine: Engine, task_id: uuid.UUID) -> list[Any]:
    return rows(
        engine,
        "SELECT id, status, resume_at, decisions, started_at, lease_owner FROM task_run "
        "WHERE task_id = :t ORDER BY scheduled_for",
        t=task_id,
    )


def test_quiet_hours_defer_and_digest_wait_for_the_window_end_across_restarts_then_call_once(
    settings: Settings, log_dir: Path, procs: list[Proc], recorder: Recorder
) -> None:
    engine = start(settings, log_dir, procs)
    try:
        register(engine, recorder, "notify.send", "/send")
        now = utcnow()
        # 40-100 s away: room for the restart below before the window ends
        end = (now + timedelta(seconds=100)).replace(second=0, microsecond=0)
        window = f"{now - timedelta(hours=1):%H:%M}-{end:%H:%M}"
        rule = {"tz": "UTC", "windows": [window], "scopes": ["notify"]}
        send = {"id": "send", "uses": "notify.send", "with": {"text": "${run.scheduled_for}"}}
        deferred = due_now(
            engine,
            {"pipeline": [send, echo("after")]},
            quiet_hours=json.dumps({**rule, "on_quiet": "defer"}),
        )
        digest = due_now(
            engine,
            {"pipeline": [send]},
            count=3,
            quiet_hours=json.dumps({**rule, "on_quiet": "digest"}),
        )
        kick(settings)

        def settled() -> bool:
            d = [r.status for r in runs_of(engine, deferred)]
            g = sorted(r.status for r in runs_of(engine, digest))
            return d == ["deferred"] and g == ["deferred", "succeeded", "succeeded"]

        wait_for(settled, 30, interval=0.3, what="the runs to be deferred or merged")
        (run,) = runs_of(engine, deferred)
        assert run.resume_at == end
        (why,) = run.decisions
        assert why["what"] == "deferred" and why["policy"] == "quiet_hours"
        assert (
            why["why"]
            == f"deferred by quiet hours {window.replace('-', EN_DASH)} UTC until {end:%H:%M}"
        )
        leader = next(r for r in runs_of(engine, digest) if r.status == "deferred")
        merged = [r for r in runs_of(engine, digest) if r.status == "succeeded"]
        for other in merged:
            assert other.decisions[0]["what"] == "digested"
            assert other.decisions[0]["into"] == str(leader.id)
        # the waits are rows in PostgreSQL: every process is stopped and new ones started
        for proc in reversed(procs):
            proc.stop()
        procs.clear()
        procs.append(start_beat(settings, log_dir, "beat2"))
        worker = start_worker(settings, log_dir, "w1", concurrency=2)
        procs.append(worker)
        wait_ready(settings, worker)
        # nothing reaches the tool inside the window
        wait_for(lambda: utcnow() >= end - timedelta(seconds=1), 90, interval=0.5)
        assert recorder.calls == []
        wait_for(
            lambda: (
                [r.status for r in runs_of(engine, deferred)] == ["succeeded"]
                and all(r.status == "succeeded" for r in runs_of(engine, digest))
            ),
            40,
            interval=0.3,
            what="the deferred runs to resume at the window's end",
        )
        calls = recorder.paths("/send")
        assert len(calls) == 2  # the deferred call, and one digest call for three runs
        assert all(at >= end for at, _, _ in calls)
        (digest_call,) = [body for _, _, body in calls if "items" in body]
        assert len(digest_call["items"]) == 3
        texts = sorted(item["text"] for item in digest_call["items"])
        assert len(set(texts)) == 3  # each merged run's own arguments
        steps = rows(
            engine,
            "SELECT s.step_path, s.status FROM step_result s JOIN task_run r ON r.id = s.run_id "
            "WHERE r.task_id = :t ORDER BY s.id",
            t=deferred,
        )
        assert [tuple(s) for s in steps] == [("send", "succeeded"), ("after", "succeeded")]
        events = rows(engine, "SELECT topic FROM outbox WHERE topic = 'task.run.deferred'")
        assert len(events) == 2
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
def test_a_rate_limit_shared_by_two_workers_is_never_exceeded(
    settings: Settings, log_dir: Path, procs: list[Proc], recorder: Recorder
) -> None:
    limits = [
        {"tools": "notify.*", "per_minute": 3},
        {"tools": "slow.*", "concurrent": 1},
    ]
    env = {"ORDINAUT_RATE_LIMITS": json.dumps(limits)}
    procs.append(start_beat(settings, log_dir))
    workers = [start_worker(settings, log_dir, f"w{i}", concurrency=2, env=env) for i in range(2)]
    procs.extend(workers)
    wait_ready(settings, *workers)
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        register(engine, recorder, "notify.send", "/send")
        register(engine, recorder, "slow.hold", "/hold")
        notify = due_now(
            engine, {"pipeline": [{"id": "n", "uses": "notify.send", "with": {}}]}, count=6
        )
        slow = due_now(
            engine, {"pipeline": [{"id": "h", "uses": "slow.hold", "with": {}}]}, count=6
        )
        kick(settings)

        # the per-minute rule first: its three deferred runs resume a minute after the first
        # call (and a fourth call is then allowed), so they are looked at well before that
        def notify_settled() -> list[Any] | None:
            found = runs_of(engine, notify)
            done = sorted(r.status for r in found)
            return found if done == ["deferred"] * 3 + ["succeeded"] * 3 else None

        # within the minute: six short runs through two workers, even on a loaded machine
        try:
            found = wait_for(notify_settled, 50, interval=0.3, what="3 calls made and 3 deferred")
        except AssertionError as exc:  # say what the runs did instead
            seen = [(r.status, r.decisions) for r in runs_of(engine, notify)]
            raise AssertionError(f"{exc}; runs: {seen}; calls: {recorder.paths('/send')}") from None
        calls = recorder.paths("/send")
        assert len(calls) == 3
        first = min(at for at, _, _ in calls)
        for run in found:
            if run.status == "deferred":
                assert run.resume_at >= first + timedelta(seconds=59)
                assert run.decisions[-1]["policy"] == "rate_limit"
        time.sleep(2)
        assert len(recorder.paths("/send")) == 3  # still 3 within the minute
        wait_for(  # generous: a loaded machine (embedded servers too)
            lambda: [r.status for r in runs_of(engine, slow)] == ["succeeded"] * 6,
            90,
            interval=0.3,
            what="six calls of a tool limited to one at a time",
        )
        assert len(recorder.paths("/hold")) == 6
        assert recorder.most_in_flight["/hold"] == 1  # never two at once, across both workers
        owners = {r.lease_owner.rsplit(":", 1)[0] for r in runs_of(engine, slow)}
        assert owners  # ran on the workers (which of the two does not matter)
    finally:
        engine.dispose()


def test_a_pool_run_waits_for_its_pool_worker_then_runs_there(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    engine = start(settings, log_dir, procs)  # beat and a worker of the common queues only
    try:
        task_id = due_now(engine, {"pipeline": [echo("a")]}, worker_pool="home")
        kick(settings)
        queued = wait_for(
            lambda: [r for r in runs_of(engine, task_id) if r.status == "queued"],
            30,
            interval=0.3,
            what="the pool's run to be queued",
        )
        (decision,) = queued[0].decisions
        assert decision["policy"] == "worker_pool"
        assert decision["queue"] == f"{settings.namespace}.runs.home"
        time.sleep(3)
        assert [r.status for r in runs_of(engine, task_id)] == ["queued"]  # waits, not failed
        home = start_worker(settings, log_dir, "home", queues="runs.home")
        procs.append(home)
        wait_for(
            lambda: [r.status for r in runs_of(engine, task_id)] == ["succeeded"],
            60,
            interval=0.3,
            proc=home,
            what="the pool's worker to run it",
        )
        (run,) = runs_of(engine, task_id)
        assert os.getpgid(int(run.lease_owner.rsplit(":", 1)[1])) == home.pid
    finally:
        engine.dispose()


def test_an_llm_token_cap_fails_the_step_after_the_call_that_reached_it(
    settings: Settings, log_dir: Path, procs: list[Proc]
) -> None:
    port = free_port()
    demo_url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "ordinaut.cli", "demo-tools", "--port", str(port)]
    demo = Proc("demo", argv, settings_env(settings), log_dir)
    procs.append(demo)
    wait_for(lambda: _up(f"{demo_url}/health"), 30, proc=demo, what="the demo LLM server")
    llm = {"ORDINAUT_LLM_BASE_URL": f"{demo_url}/v1", "ORDINAUT_LLM_MODEL": "demo"}
    procs.append(start_beat(settings, log_dir))
    worker = start_worker(settings, log_dir, "w0", env=llm)
    procs.append(worker)
    wait_ready(settings, worker)
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        ask = {"instruction": "say hello in three words"}
        pipeline = {
            "pipeline": [
                {"id": "first", "uses": "llm.chat", "with": ask},
                {"id": "second", "uses": "llm.chat", "with": ask},
            ]
        }
        budget = {"tz": "UTC", "llm_tokens_per_day": 5, "llm_tokens_per_month": 100000}
        task_id = due_now(engine, pipeline, budgets=json.dumps(budget))
        kick(settings)
        (run,) = finished_runs(engine, task_id, 1)
        assert run.status == "failed" and run.attempt == 1
        assert "budget_exceeded" in run.error and "llm_tokens_per_day" in run.error
        steps = rows(
            engine, "SELECT step_path, status, output FROM step_result WHERE run_id = :r", r=run.id
        )
        statuses = {s.step_path: s.status for s in steps}
        assert statuses == {"first": "succeeded", "second": "failed"}
        reported = next(s.output for s in steps if s.step_path == "first")["usage"]["total_tokens"]
        usage = dict(
            rows(
                engine,
                "SELECT period, used FROM budget_usage WHERE subject_id = :t "
                "AND counter = 'llm_tokens'",
                t=task_id,
            )
        )
        today = utcnow()
        assert usage == {f"{today:%Y-%m-%d}": reported, f"{today:%Y-%m}": reported}
        assert reported >= 5
    finally:
        engine.dispose()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
