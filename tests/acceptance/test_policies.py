"""Policies with real processes (``celery beat`` and a prefork ``celery worker``): budgets,
quiet hours ``drop`` and the ``policy.quiet_hours`` tool, against a local HTTP tool server.

Tasks and due_work rows are written straight into the test's database (as the API or beat
would); dispatch, the broker, claims and execution are the real thing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from tests.support import Proc, start_beat, start_worker, wait_for

__all__ = ["procs", "tool_server"]  # fixtures


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
