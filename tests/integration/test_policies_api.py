"""Quiet hours and budgets through the API, MCP and CLI: same names, same validation, a
refused request changes nothing, usage shown against the caps."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from ordinaut.cli import main
from ordinaut.runs import dispatch as dispatching
from ordinaut.store.engine import make_engine
from ordinaut.store.tables import agent, audit_log
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import task_body
from tests.integration.test_mcp_http import admin_token, error_text, mcp_session, new_agent, ok

QUIET = {"tz": "Europe/Chisinau", "windows": ["22:00-08:00", "SA 00:00-24:00"]}


def _rows(api: Api) -> tuple[list[Any], int]:
    engine = make_engine(api.settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            agents = conn.execute(
                sa.select(agent.c.id, agent.c.quiet_hours, agent.c.budgets).order_by(agent.c.id)
            ).all()
            audits = conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one()
        return [tuple(a) for a in agents], int(audits)
    finally:
        engine.dispose()


def _me(api: Api, client: Any = None) -> str:
    return str((client or api.admin).get("/me").json()["id"])


def test_quiet_hours_put_validates_and_stores_normalised(api: Api) -> None:
    me = _me(api)
    done = api.admin.put(f"/agents/{me}/quiet_hours", json=QUIET)
    assert done.status_code == 200, done.text
    assert done.json()["quiet_hours"] == {**QUIET, "on_quiet": "defer", "scopes": ["notify"]}
    before = _rows(api)
    for body, field in [
        ({"tz": "Europe/Chisinau", "windows": ["22-08"]}, "windows[0]"),
        ({"windows": ["XX 10:00-11:00"]}, "windows[0]"),
        ({"windows": ["00:00-24:00"]}, "windows"),
        ({"windows": ["10:00-11:00"], "tz": "Nowhere/Else"}, "tz"),
        ({"windows": ["10:00-11:00"], "on_quiet": "later"}, "on_quiet"),
        ({"windows": ["10:00-11:00"], "scopes": ["Bad Scope"]}, "scopes[0]"),
        ({"windows": ["10:00-11:00"], "mode": "x"}, "mode"),
        ({"windows": []}, "windows"),
    ]:
        refused = api.admin.put(f"/agents/{me}/quiet_hours", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["field"] == field, (body, refused.json())
    assert _rows(api) == before
    missing = api.admin.put(f"/agents/{uuid.uuid4()}/quiet_hours", json=QUIET)
    assert missing.status_code == 404


def test_budgets_need_admin_and_show_usage(api: Api) -> None:
    bob = api.agent("bob", ["tasks:read", "tasks:write"])
    bob_id = _me(api, bob)
    before = _rows(api)
    assert bob.put(f"/agents/{bob_id}/budgets", json={"runs_per_day": 5}).status_code == 403
    refused = api.admin.put(f"/agents/{bob_id}/budgets", json={"runs_per_day": -1})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "runs_per_day"
    refused = api.admin.put(f"/agents/{bob_id}/budgets", json={"runs_per_week": 1})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "runs_per_week"
    assert _rows(api) == before
    done = api.admin.put(
        f"/agents/{bob_id}/budgets", json={"tz": "Europe/Chisinau", "runs_per_day": 5}
    )
    assert done.status_code == 200, done.text
    assert done.json()["budgets"] == {"tz": "Europe/Chisinau", "runs_per_day": 5}
    # a task's own budget, and a task-level validation error naming the nested field
    bad = bob.post("/tasks", json=task_body(budgets={"tool_calls_per_day": "many"}))
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith(
        "budgets.tool_calls_per_day"
    )
    task = bob.post("/tasks", json=task_body(budgets={"tool_calls_per_day": 3}))
    assert task.status_code == 201, task.text
    assert task.json()["budgets"] == {"tz": "Europe/Chisinau", "tool_calls_per_day": 3}
    report = bob.get("/budgets").json()
    views = {v["subject"]: v for v in report["budgets"]}
    assert views["agent"]["caps"] == [
        {
            "metric": "runs_per_day",
            "cap": 5,
            "used": 0,
            "period": views["agent"]["caps"][0]["period"],
        }
    ]
    assert views["task"]["id"] == task.json()["id"]
    assert views["task"]["caps"][0]["metric"] == "tool_calls_per_day"


def test_task_quiet_hours_override_validates(api: Api) -> None:
    bad = api.admin.post(
        "/tasks", json=task_body(quiet_hours={"windows": ["22:00-08:00", "25:00-26:00"]})
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "quiet_hours.windows[1]"
    made = api.admin.post("/tasks", json=task_body(quiet_hours={"windows": ["22:00-08:00"]}))
    assert made.status_code == 201, made.text
    task = made.json()
    # the task's zone is the default zone of its quiet hours
    assert task["quiet_hours"]["tz"] == "Europe/Chisinau"
    cleared = api.admin.patch(f"/tasks/{task['id']}", json={"quiet_hours": None})
    assert cleared.status_code == 200 and cleared.json()["quiet_hours"] is None
    bad = api.admin.patch(f"/tasks/{task['id']}", json={"worker_pool": "Home Net"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "worker_pool"


def test_mcp_and_cli_use_the_same_names_and_checks(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    carol = new_agent(api, "carol", ["tasks:read", "tasks:write"])

    async def over_mcp() -> None:
        async with mcp_session(api.base_url, admin_token(api)) as s:
            refused = await s.call_tool(
                "set_quiet_hours", {"agent_id": carol["id"], "windows": ["22:00-08:00", "8-9"]}
            )
            assert "windows[1]" in error_text(refused)
            done = ok(
                await s.call_tool(
                    "set_quiet_hours", {"agent_id": carol["id"], **QUIET, "on_quiet": "drop"}
                )
            )
            assert done["quiet_hours"]["on_quiet"] == "drop"
            done = ok(
                await s.call_tool("set_budgets", {"agent_id": carol["id"], "runs_per_day": 7})
            )
            assert done["budgets"]["runs_per_day"] == 7
        async with mcp_session(api.base_url, carol["token"]) as s:
            report = ok(await s.call_tool("get_budgets", {}))
            assert report["budgets"][0]["caps"][0]["cap"] == 7
            refused = await s.call_tool("set_budgets", {"agent_id": carol["id"], "runs_per_day": 9})
            assert "agents:admin" in error_text(refused)

    anyio.run(over_mcp)

    monkeypatch.setenv("ORDINAUT_URL", api.base_url)
    monkeypatch.setenv("ORDINAUT_TOKEN", admin_token(api))
    capsys.readouterr()
    assert main(["budgets", "set", carol["id"], "--runs_per_day", "11", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budgets"]["runs_per_day"] == 11
    assert main(["budgets", "set", carol["id"], "--runs-per-day", "-3"]) == 2
    assert "runs_per_day" in capsys.readouterr().err
    argv = ["quiet-hours", "set", carol["id"], "--window", "23:00-07:00", "--on_quiet", "digest"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quiet_hours"]["on_quiet"] == "digest"
    monkeypatch.setenv("ORDINAUT_TOKEN", carol["token"])
    assert main(["budgets"]) == 0
    shown = capsys.readouterr().out
    assert "runs_per_day" in shown and "11" in shown


def test_a_budget_decision_is_on_the_run_and_is_an_event(api: Api) -> None:
    made = api.admin.post("/tasks", json=task_body(budgets={"runs_per_day": 0}, worker_pool="home"))
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["worker_pool"] == "home"
    assert api.admin.post(f"/tasks/{task['id']}/run_now").status_code in (200, 202)
    engine = make_engine(api.settings.database_url, pool_size=1)
    try:
        dispatching.dispatch_batch(engine, api.settings.namespace, datetime.now(UTC), 10)
        with engine.connect() as conn:
            events = conn.execute(
                sa.text("SELECT payload FROM outbox WHERE topic = 'task.run.policy'")
            ).scalars()
            policy_events = list(events)
    finally:
        engine.dispose()
    (run,) = api.admin.get("/runs", params={"task_id": task["id"]}).json()["items"]
    shown = api.admin.get(f"/runs/{run['id']}").json()
    assert shown["status"] == "skipped"
    assert shown["reason"].startswith("budget_exceeded: task budget runs_per_day 0 of 0")
    (decision,) = shown["decisions"]
    assert decision["what"] == "skipped" and decision["policy"] == "budget"
    assert decision["metric"] == "runs_per_day" and decision["at"]
    assert [e["run_id"] for e in policy_events] == [run["id"]]
