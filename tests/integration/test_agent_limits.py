"""Agent limits and the changes a person approves, through the real API (in process).

A task that would fire every minute under a 15-minute ``min_interval_seconds`` limit with
``on_exceed: "approve"`` becomes a pending change with the next-10 diff; approving creates
the task as its agent; rejecting leaves nothing; with ``"reject"`` it is a 422 naming the
limit. An update is gated the same way, and so are ``max_active_tasks`` and ``allowed_tools``.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.cli import main as cli_main
from ordinaut.mcp.server import ERROR_META_KEY
from ordinaut.store.tables import pending_change, task
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import count, task_body
from tests.integration.test_mcp_http import admin_token, mcp_session

EVERY_MINUTE = {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC"}
DAILY = {"schedule_kind": "cron", "schedule_expr": "0 9 * * *", "timezone": "UTC"}


def planner(api: Api, limits: dict[str, Any]) -> tuple[httpx.Client, str]:
    """An agent with these limits (set by the admin): its client and id."""
    made = api.admin.post(
        "/agents", json={"name": "planner", "scopes": ["tasks:read", "tasks:write", "runs:read"]}
    ).json()
    put = api.admin.put(f"/agents/{made['id']}/limits", json=limits)
    assert put.status_code == 200, put.text
    return api.make_client(made["token"]), made["id"]


def fire_times(side: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in side["next"]]


def test_every_minute_under_a_15_minute_limit_waits_for_approval_and_approving_creates_it(
    api: Api, engine: Engine
) -> None:
    agent, agent_id = planner(api, {"min_interval_seconds": {"value": 900, "on_exceed": "approve"}})
    assert agent.get(f"/agents/{agent_id}/limits").json()["limits"]["min_interval_seconds"] == {
        "value": 900,
        "on_exceed": "approve",
    }
    made = agent.post("/tasks", json=task_body(title="ping", **EVERY_MINUTE))
    assert made.status_code == 202, made.text
    change = made.json()
    assert (change["status"], change["kind"], change["agent_name"]) == (
        "pending",
        "create_task",
        "planner",
    )
    assert [e["limit"] for e in change["exceeded"]] == ["min_interval_seconds"]
    after = change["diff"]["schedule"]["after"]
    assert change["diff"]["schedule"]["before"] is None
    assert after["in_words"] == "every minute (UTC)"
    times = fire_times(after)
    assert len(times) == 10
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=1)}
    fields = {f["field"]: f for f in change["diff"]["fields"]}
    assert fields["schedule_expr"] == {"field": "schedule_expr", "old": None, "new": "* * * * *"}
    assert count(engine, task) == 0  # not applied

    # the agent sees its own change; it may not approve it
    assert [c["id"] for c in agent.get("/changes").json()["items"]] == [change["id"]]
    assert agent.post(f"/changes/{change['id']}/approve").status_code == 403
    listed = api.admin.get("/changes").json()["items"]
    assert [c["id"] for c in listed] == [change["id"]] and listed[0]["diff"] == change["diff"]

    approved = api.admin.post(f"/changes/{change['id']}/approve", json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["comment"] == "ok"
    created = agent.get(f"/tasks/{body['result_task_id']}").json()
    assert created["title"] == "ping" and created["created_by"] == agent_id
    assert api.admin.post(f"/changes/{change['id']}/approve").status_code == 409
    assert api.admin.get("/changes").json()["items"] == []
    audit = api.admin.get("/audit", params={"subject_id": body["result_task_id"]}).json()
    (creation,) = [e for e in audit if e["action"] == "task.create"]
    assert creation["actor_agent_id"] == agent_id
    assert creation["details"]["approved_by"] == "admin"
    audit = api.admin.get("/audit", params={"subject_id": change["id"]}).json()
    (decision,) = [e for e in audit if e["action"] == "change.approve"]
    assert decision["details"]["agent"] == "planner" and decision["details"]["comment"] == "ok"


def test_rejecting_a_pending_change_leaves_nothing(api: Api, engine: Engine) -> None:
    agent, _ = planner(api, {"min_interval_seconds": {"value": 900, "on_exceed": "approve"}})
    change = agent.post("/tasks", json=task_body(**EVERY_MINUTE)).json()
    rejected = api.admin.post(f"/changes/{change['id']}/reject", json={"comment": "too often"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert count(engine, task) == 0
    assert api.admin.get("/changes").json()["items"] == []
    assert api.admin.get("/changes", params={"status": "rejected"}).json()["items"][0][
        "comment"
    ] == ("too often")


def test_on_exceed_reject_is_a_422_naming_the_limit(api: Api, engine: Engine) -> None:
    agent, _ = planner(
        api,
        {
            "min_interval_seconds": {"value": 900, "on_exceed": "reject"},
            "allowed_tools": {"value": ["builtin.*"]},
            "max_active_tasks": {"value": 1, "on_exceed": "reject"},
        },
    )
    refused = agent.post("/tasks", json=task_body(**EVERY_MINUTE))
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "limits.min_interval_seconds"
    assert "900" in error["message"] and "every 60 s" in error["message"]
    assert count(engine, task) == 0 and count(engine, pending_change) == 0
    assert agent.post("/tasks", json=task_body(**DAILY)).status_code == 201
    second = agent.post("/tasks", json=task_body(**DAILY))
    assert second.json()["error"]["field"] == "limits.max_active_tasks"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(task)).scalar_one() == 1


def test_allowed_tools_are_address_patterns(api: Api) -> None:
    agent, agent_id = planner(api, {"allowed_tools": {"value": ["llm.*"], "on_exceed": "reject"}})
    refused = agent.post("/tasks", json=task_body(**DAILY))
    assert refused.json()["error"]["field"] == "limits.allowed_tools"
    assert "builtin.echo" in refused.json()["error"]["message"]
    api.admin.put(f"/agents/{agent_id}/limits", json={"allowed_tools": {"value": ["builtin.e*"]}})
    assert agent.post("/tasks", json=task_body(**DAILY)).status_code == 201


def test_a_schedule_change_past_the_limit_waits_with_a_before_and_after_diff(
    api: Api,
) -> None:
    agent, _ = planner(api, {"min_interval_seconds": {"value": 900, "on_exceed": "approve"}})
    task_id = agent.post("/tasks", json=task_body(**DAILY)).json()["id"]
    change = agent.patch(f"/tasks/{task_id}", json={"schedule_expr": "*/5 * * * *"})
    assert change.status_code == 202, change.text
    diff = change.json()["diff"]
    assert diff["fields"] == [{"field": "schedule_expr", "old": "0 9 * * *", "new": "*/5 * * * *"}]
    before, after = diff["schedule"]["before"], diff["schedule"]["after"]
    assert before["in_words"] == "every day at 09:00 (UTC)"
    assert after["in_words"] == "every 5 minutes (UTC)"
    assert len(before["next"]) == len(after["next"]) == 10
    assert agent.get(f"/tasks/{task_id}").json()["schedule_expr"] == "0 9 * * *"
    done = api.admin.post(f"/changes/{change.json()['id']}/approve").json()
    assert done["status"] == "approved" and done["result_task_id"] == task_id
    assert agent.get(f"/tasks/{task_id}").json()["schedule_expr"] == "*/5 * * * *"


def test_limits_are_validated_and_admin_only(api: Api) -> None:
    agent, agent_id = planner(api, {})
    bad = api.admin.put(f"/agents/{agent_id}/limits", json={"min_interval_seconds": {"value": 0}})
    assert bad.status_code == 422 and "min_interval_seconds" in bad.json()["error"]["field"]
    bad = api.admin.put(f"/agents/{agent_id}/limits", json={"max_tasks": {"value": 1}})
    assert bad.status_code == 422
    denied = agent.put(f"/agents/{agent_id}/limits", json={})
    assert denied.status_code == 403


def test_mcp_and_the_cli_show_and_decide_changes_like_the_api(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made = api.admin.post("/agents", json={"name": "planner", "scopes": ["tasks:write"]}).json()
    limits = {"min_interval_seconds": {"value": 900, "on_exceed": "approve"}}
    api.admin.put(f"/agents/{made['id']}/limits", json=limits)

    async def create_over_mcp() -> Any:
        async with mcp_session(api.base_url, made["token"]) as session:
            return await session.call_tool("create_task", task_body(**EVERY_MINUTE))

    result = anyio.run(create_over_mcp)
    assert result.is_error
    assert result.meta is not None and result.meta[ERROR_META_KEY]["code"] == "change_pending"
    (change,) = api.admin.get("/changes").json()["items"]
    assert change["id"] in result.content[0].text  # type: ignore[union-attr]

    monkeypatch.setenv("ORDINAUT_URL", api.base_url)
    monkeypatch.setenv("ORDINAUT_TOKEN", admin_token(api))
    assert cli_main(["changes"]) == 0
    out = capsys.readouterr().out
    assert change["id"] in out and "every minute (UTC)" in out and "min_interval_seconds" in out
    assert cli_main(["change", "approve", change["id"], "--comment", "fine", "--json"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["status"] == "approved" and decided["result_task_id"]


def test_a_retried_create_replays_whatever_the_limits_say_now(api: Api) -> None:
    agent, _ = planner(api, {"max_active_tasks": {"value": 1, "on_exceed": "approve"}})
    key = {"Idempotency-Key": "create-once"}
    first = agent.post("/tasks", json=task_body(**DAILY), headers=key)
    again = agent.post("/tasks", json=task_body(**DAILY), headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    key = {"Idempotency-Key": "second"}
    change = agent.post("/tasks", json=task_body(**DAILY), headers=key)
    assert change.status_code == 202
    assert (
        agent.post("/tasks", json=task_body(**DAILY), headers=key).json()["id"]
        == (change.json()["id"])
    )
    assert len(api.admin.get("/changes").json()["items"]) == 1
