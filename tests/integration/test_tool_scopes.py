"""Tool scopes gate pipelines at creation (403) and again at call time (the run fails)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from ordinaut.demo import app as demo_app
from tests.integration.conftest import Api
from tests.integration.test_tools_http import ANY_OBJECT, drive, register
from tests.support import free_port


@pytest.fixture(scope="module")
def demo() -> Iterator[demo_app.DemoApp]:
    with demo_app.running(free_port()) as served:
        yield served


def test_tool_scopes_at_creation_and_at_call_time(
    api: Api, engine: Engine, demo: demo_app.DemoApp
) -> None:
    register(
        api,
        address="scoped.echo",
        transport="http",
        endpoint=f"{demo.base_url}/tools/faults/respond",
        input_schema=ANY_OBJECT,
        output_schema=ANY_OBJECT,
        scopes=["notify"],
    )
    body = {
        "title": "needs notify",
        "schedule_kind": "once",
        "schedule_expr": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "payload": {"pipeline": [{"id": "ping", "uses": "scoped.echo", "with": {}}]},
    }
    without = api.agent("plain", ["tasks:read", "tasks:write"])
    denied = without.post("/tasks", json=body)
    assert denied.status_code == 403
    assert denied.json()["error"]["field"] == "payload.pipeline[0].uses"
    assert "notify" in denied.json()["error"]["message"]

    made = api.admin.post("/agents", json={"name": "notifier", "scopes": ["tasks:write", "notify"]})
    notifier = api.make_client(made.json()["token"])
    created = notifier.post("/tasks", json=body)
    assert created.status_code == 201, created.text
    # the tool needs more after the task was created: the next run must not call it
    replaced = api.admin.post(
        "/tools",
        params={"replace": "true"},
        json={
            "address": "scoped.echo",
            "transport": "http",
            "endpoint": f"{demo.base_url}/tools/faults/respond",
            "input_schema": ANY_OBJECT,
            "output_schema": ANY_OBJECT,
            "scopes": ["notify", "pager"],
        },
    )
    assert replaced.status_code == 201, replaced.text
    assert api.admin.post(f"/tasks/{created.json()['id']}/run_now").status_code == 202
    outcome = drive(engine, api)
    assert outcome.status == "failed"
    run = api.admin.get("/runs", params={"task_id": created.json()["id"]}).json()["items"][0]
    assert "no longer holds the scope pager" in run["error"]
    assert api.admin.get(f"/runs/{run['id']}").json()["steps"] == []  # no call was made
