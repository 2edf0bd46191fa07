"""Revocation with real processes: a per-second task runs under ``celery beat`` and a worker;
its agent is revoked through the API; no run of it starts afterwards.

Proof that "afterwards" covered real work: a bystander task of another agent, on the same
schedule, keeps starting runs after the revocation, so beat and the worker were busy all
along. Times come from the database (``task_run.started_at`` against ``agent.revoked_at``,
both its clock), never from sleeps.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.store import queries
from ordinaut.store.tables import agent, task_run
from tests.acceptance.conftest import Stack
from tests.support import wait_for

EVERY_2S = {
    "title": "busy",
    "schedule_kind": "cron",
    "schedule_expr": "*/2 * * * * *",
    "timezone": "UTC",
    "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]},
}


def runs_of(engine: Engine, task_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(task_run.c.status, task_run.c.started_at, task_run.c.reason).where(
                    task_run.c.task_id == uuid.UUID(task_id)
                )
            ).all()
        )


def started_after(engine: Engine, task_id: str, moment: datetime) -> int:
    return sum(1 for r in runs_of(engine, task_id) if r.started_at and r.started_at > moment)


def test_no_run_starts_after_its_agent_is_revoked(stack: Stack, engine: Engine) -> None:
    made = stack.api.post("/agents", json={"name": "busy", "scopes": ["tasks:write"]})
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"Bearer {made.json()['token']}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as client:
        created = client.post("/tasks", json=EVERY_2S)
    assert created.status_code == 201, created.text
    doomed = created.json()["id"]
    bystander = stack.api.post("/tasks", json=EVERY_2S).json()["id"]

    def succeeded(task_id: str) -> int:
        return sum(1 for r in runs_of(engine, task_id) if r.status == "succeeded")

    worker = stack.procs["worker"]
    wait_for(lambda: succeeded(doomed) >= 2, 60, proc=worker, what="two runs of the task")

    assert stack.api.delete(f"/agents/{made.json()['id']}").status_code == 200
    with engine.connect() as conn:
        revoked_at: datetime = conn.execute(
            sa.select(agent.c.revoked_at).where(agent.c.id == uuid.UUID(made.json()["id"]))
        ).scalar_one()

    # three more occurrences of the same schedule ran for the bystander: the revoked task's
    # occurrences came due too, and beat and the worker were there to run them
    wait_for(
        lambda: started_after(engine, bystander, revoked_at) >= 3,
        60,
        proc=worker,
        what="three bystander runs after the revocation",
    )
    runs = runs_of(engine, doomed)
    assert [r for r in runs if r.started_at and r.started_at >= revoked_at] == []
    # a run that never started was ended by the revocation, with the reason
    for run in runs:
        if run.started_at is None:
            assert (run.status, run.reason) == ("canceled", queries.OWNER_REVOKED), run
    assert stack.api.get(f"/tasks/{doomed}").json()["status"] == "paused"
    assert stack.api.get(f"/tasks/{bystander}").json()["status"] == "active"
