"""The whole path once: POST /tasks → beat → due_work → dispatch → worker → a succeeded run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.events.relay import stream_key
from ordinaut.store.tables import due_work, task
from tests.acceptance.conftest import Stack
from tests.support import stream_fields, wait_for


def test_once_task_runs_end_to_end(stack: Stack, engine: Engine) -> None:
    when = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    body = {
        "title": "say hello",
        "schedule_kind": "once",
        "schedule_expr": when.isoformat(),
        "timezone": "UTC",
        "payload": {
            "pipeline": [
                {
                    "id": "hello",
                    "uses": "builtin.echo",
                    "with": {"message": "hello, ünïcode", "n": 3},
                    "save_as": "greeting",
                }
            ]
        },
    }
    created = stack.api.post("/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert created.json()["next_run_at"] == when.isoformat().replace("+00:00", "Z")

    # beat writes the due_work row at the due time (it is consumed by dispatch right after)
    def finished_runs() -> list[dict[str, object]] | None:
        page = stack.api.get("/runs", params={"task_id": task_id}).json()
        done = [r for r in page["items"] if r["status"] in ("succeeded", "failed")]
        return done or None

    runs = wait_for(finished_runs, 30, proc=stack.procs["worker"], what="the run to finish")
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "succeeded", run
    assert run["attempt"] == 1
    assert str(run["scheduled_for"]).replace("Z", "+00:00") == when.isoformat()
    started = datetime.fromisoformat(str(run["started_at"]).replace("Z", "+00:00"))
    assert started >= when

    detail = stack.api.get(f"/runs/{run['id']}").json()
    assert [s["step_id"] for s in detail["steps"]] == ["hello"]
    assert detail["steps"][0]["status"] == "succeeded"
    assert detail["steps"][0]["output"] == {"message": "hello, ünïcode", "n": 3}

    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(due_work)).scalar_one()
        status, next_run = conn.execute(
            sa.select(task.c.status, task.c.next_run_at).where(task.c.id == task_id)
        ).one()
    assert left == 0
    assert (status, next_run) == ("completed", None)
    shown = stack.api.get(f"/tasks/{task_id}").json()
    assert shown["status"] == "completed" and shown["next_run_at"] is None

    # the beat's relay entry carries the outbox to the Redis stream
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)

    def relayed() -> list[str] | None:
        entries = stream_fields(client, stream_key(stack.settings.namespace))
        topics = [f["topic"] for f in entries if task_id in f["payload"]]
        return topics if "task.run.succeeded" in topics else None

    topics = wait_for(relayed, 15, what="the run's events on the Redis stream")
    client.close()
    assert topics[0] == "task.created"
    assert topics.index("task.run.started") < topics.index("task.run.succeeded")
