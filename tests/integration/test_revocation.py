"""Revoking an agent stops its work, whatever tools its pipelines use.

The revocation pauses the agent's active tasks (audit entry and event each) and cancels its
queued, waiting and running runs, in one transaction; a run that a worker claims afterwards
for one of its tasks is refused before any step; and a claim racing the revocation is
ordered with it by the owner's row lock (it waits, then sees the revocation).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.clock import utcnow
from ordinaut.runs.dispatch import dispatch_batch
from ordinaut.runs.execute import Outcome, execute_run
from ordinaut.store import queries
from ordinaut.store.tables import audit_log, outbox, step_result, task, task_run
from tests.integration.conftest import Api
from tests.integration.test_egress import Counting
from tests.integration.test_tools_http import register
from tests.support import wait_for

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]}
LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()


def new_agent(api: Api, name: str) -> tuple[str, httpx.Client]:
    made = api.admin.post("/agents", json={"name": name, "scopes": ["tasks:read", "tasks:write"]})
    assert made.status_code == 201, made.text
    return made.json()["id"], api.make_client(made.json()["token"])


def new_task(client: httpx.Client, payload: dict[str, Any] = ECHO, **extra: Any) -> str:
    body = {
        "title": "work",
        "schedule_kind": "once",
        "schedule_expr": LATER,
        "timezone": "UTC",
        "payload": payload,
        **extra,
    }
    created = client.post("/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]
    return task_id


def queue_run(api: Api, engine: Engine, client: httpx.Client, task_id: str) -> uuid.UUID:
    """A queued run of ``task_id`` (run_now, then dispatch)."""
    assert client.post(f"/tasks/{task_id}/run_now").status_code == 202
    queued = dispatch_batch(engine, api.settings.namespace, datetime.now(UTC), 10).queued
    assert len(queued) == 1, queued
    return queued[0].id


def execute(api: Api, engine: Engine, run_id: uuid.UUID) -> Outcome:
    return execute_run(engine, api.settings, run_id, "test-worker", sleep=time.sleep, clock=utcnow)


def run_row(engine: Engine, run_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(task_run).where(task_run.c.id == run_id)).one()


def events(engine: Engine, topic: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        )
        return [r.payload for r in rows]


def test_revoking_pauses_the_agents_tasks_and_cancels_its_runs(api: Api, engine: Engine) -> None:
    agent_id, client = new_agent(api, "bot")
    first, second = new_task(client), new_task(client)
    _, other = new_agent(api, "other")
    bystander = new_task(other)
    queued = queue_run(api, engine, client, first)

    revoked = api.admin.delete(f"/agents/{agent_id}")
    assert revoked.status_code == 200, revoked.text

    status = {t: api.admin.get(f"/tasks/{t}").json()["status"] for t in (first, second, bystander)}
    assert status == {first: "paused", second: "paused", bystander: "active"}
    run = run_row(engine, queued)
    assert (run.status, run.reason) == ("canceled", queries.OWNER_REVOKED)
    # each paused task has its audit entry and event; the run its event; the agent its own
    for task_id in (first, second):
        audit = api.admin.get("/audit", params={"subject_id": task_id}).json()
        pause = next(a for a in audit if a["action"] == "task.pause")
        assert pause["details"]["reason"] == queries.OWNER_REVOKED
        assert pause["details"]["after"] == {"status": "paused"}
    assert sorted(e["task_id"] for e in events(engine, "task.paused")) == sorted([first, second])
    assert {e["reason"] for e in events(engine, "task.paused")} == {queries.OWNER_REVOKED}
    assert [e["run_id"] for e in events(engine, "task.run.canceled")] == [str(queued)]
    assert events(engine, "agent.revoked") == [
        {"agent_id": agent_id, "paused_tasks": 2, "canceled_runs": 1}
    ]
    # nothing sets them going again: not resume, not run_now, not the worker
    for attempt in (
        api.admin.post(f"/tasks/{first}/resume"),
        api.admin.post(f"/tasks/{first}/run_now"),
    ):
        assert attempt.status_code == 409, attempt.text
    resumed = api.admin.post(f"/tasks/{first}/resume").json()["error"]
    assert resumed["field"] == "created_by" and "revoked" in resumed["message"]
    assert execute(api, engine, queued).status == "ignored"
    assert client.get("/tasks").status_code == 401  # and its token is gone
    # cancel still works on a revoked agent's task
    assert api.admin.post(f"/tasks/{second}/cancel").status_code == 200


def test_a_run_claimed_for_a_revoked_owner_is_refused_before_any_tool_call(
    api: Api, engine: Engine
) -> None:
    server = Counting("127.0.0.1")
    try:
        register(
            api,
            address="count.hit",
            transport="http",
            endpoint=f"http://127.0.0.1:{server.port}/hit",
            input_schema={"type": "object"},
            output_schema={"type": "object"},
        )
        agent_id, client = new_agent(api, "bot")
        task_id = new_task(client, {"pipeline": [{"id": "hit", "uses": "count.hit", "with": {}}]})
        queued = queue_run(api, engine, client, task_id)
        # a run that escaped the revocation's cancel (its dispatch raced it): only the agent
        # row changes here, as if the run had been created just after
        with engine.begin() as conn:
            queries.revoke_agent(conn, uuid.UUID(agent_id))

        assert execute(api, engine, queued).status == "ignored"

        run = run_row(engine, queued)
        assert (run.status, run.reason, run.started_at) == ("canceled", queries.OWNER_REVOKED, None)
        assert server.accepted == 0  # the tool was never called
        with engine.connect() as conn:
            steps = conn.execute(sa.select(step_result).where(step_result.c.run_id == queued))
            assert steps.all() == []
        assert events(engine, "task.run.started") == []
        assert events(engine, "task.run.canceled") == [
            {"run_id": str(queued), "task_id": task_id, "reason": queries.OWNER_REVOKED}
        ]
    finally:
        server.close()


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(found)


def test_a_claim_racing_a_revocation_waits_for_it_and_is_refused(api: Api, engine: Engine) -> None:
    agent_id, client = new_agent(api, "bot")
    queued = queue_run(api, engine, client, new_task(client))
    outcome: list[Outcome] = []
    with engine.connect() as conn:
        tx = conn.begin()
        assert queries.get_agent(conn, uuid.UUID(agent_id), lock=True) is not None
        queries.revoke_agent(conn, uuid.UUID(agent_id))  # not committed yet
        worker = threading.Thread(target=lambda: outcome.append(execute(api, engine, queued)))
        worker.start()
        wait_for(lambda: _waiting_on_a_lock(engine), 10, what="the claim to wait")
        assert worker.is_alive() and not outcome
        tx.commit()
    worker.join(10)
    assert [o.status for o in outcome] == ["ignored"]
    assert run_row(engine, queued).status == "canceled"


def test_a_run_claimed_before_the_revocation_started_before_revoked_at(
    api: Api, engine: Engine
) -> None:
    agent_id, client = new_agent(api, "bot")
    done = queue_run(api, engine, client, new_task(client))
    assert execute(api, engine, done).status == "succeeded"
    assert api.admin.delete(f"/agents/{agent_id}").status_code == 200
    with engine.connect() as conn:
        revoked_at = conn.execute(
            sa.text("SELECT revoked_at FROM agent WHERE id = :id"), {"id": agent_id}
        ).scalar_one()
        owned = sa.select(task.c.id).where(task.c.created_by == uuid.UUID(agent_id))
        started = conn.execute(
            sa.select(task_run.c.started_at).where(task_run.c.task_id.in_(owned))
        ).scalars()
        assert all(s < revoked_at for s in started)
        actions = conn.execute(
            sa.select(audit_log.c.action).where(audit_log.c.subject_id == uuid.UUID(agent_id))
        ).scalars()
        assert "agent.revoke" in list(actions)
