"""A step's cached outcome (by idempotency key) serves only retries of the same task:
another task, or another agent, using the same key gets its own call and output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from tests.integration.conftest import Api
from tests.integration.test_tools_http import drive


def keyed_task(client: Any, who: str) -> str:
    body = {
        "title": f"task of {who}",
        "schedule_kind": "once",
        "schedule_expr": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "payload": {
            "pipeline": [
                {
                    "id": "say",
                    "uses": "builtin.echo",
                    "with": {"who": who},
                    "idempotency_key": "shared-key",
                    "save_as": "said",
                }
            ]
        },
    }
    made = client.post("/tasks", json=body)
    assert made.status_code == 201, made.text
    task_id: str = made.json()["id"]
    assert client.post(f"/tasks/{task_id}/run_now").status_code == 202
    return task_id


def outputs(api: Api, task_id: str) -> list[Any]:
    runs = api.admin.get("/runs", params={"task_id": task_id}).json()["items"]
    return [api.admin.get(f"/runs/{r['id']}").json()["steps"][0]["output"] for r in runs]


def test_custom_idempotency_keys_do_not_cross_tasks_or_agents(api: Api, engine: Engine) -> None:
    alice = api.agent("alice", ["tasks:read", "tasks:write", "runs:read"])
    bob = api.agent("bob", ["tasks:read", "tasks:write", "runs:read"])
    a = keyed_task(alice, "alice")
    assert drive(engine, api).status == "succeeded"
    b = keyed_task(bob, "bob")
    assert drive(engine, api).status == "succeeded"
    assert outputs(api, a) == [{"who": "alice"}]
    assert outputs(api, b) == [{"who": "bob"}]  # not alice's cached output
    # the same task's next run does reuse its own outcome for that key
    assert alice.post(f"/tasks/{a}/run_now").status_code == 202
    assert drive(engine, api).status == "succeeded"
    assert outputs(api, a) == [{"who": "alice"}, {"who": "alice"}]
