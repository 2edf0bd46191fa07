"""Condition tasks against real PostgreSQL: a check whose tool output flips fires the
pipeline once per false → true edge, never while it stays true, and honours the cooldown;
every check is recorded and visible over HTTP."""

from __future__ import annotations

from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.clock import utcnow
from ordinaut.config import Settings
from ordinaut.runs import conditions
from tests.integration.conftest import Api
from tests.integration.test_mcp_http import admin_token, mcp_session

CONDITION = {"uses": "builtin.echo", "with": {"v": "${params.v}"}, "when": "v == `true`"}
PIPELINE = [{"id": "act", "uses": "builtin.echo", "with": {"seen": "${event.output.v}"}}]


def condition_task(api: Api, **extra: Any) -> str:
    made = api.admin.post(
        "/tasks",
        json={
            "title": "watch v",
            "schedule_kind": "condition",
            "schedule_expr": "*/5 * * * *",
            "condition": CONDITION,
            "payload": {"params": {"v": False}, "pipeline": PIPELINE},
            **extra,
        },
    )
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["next_check_at"] is not None and task["next_run_at"] is None
    return str(task["id"])


def tick(api: Api, engine: Engine, settings: Settings, task_id: str, v: bool) -> None:
    """Set the value the check reads, make the check due now, and run the checker."""
    patched = api.admin.patch(
        f"/tasks/{task_id}", json={"payload": {"params": {"v": v}, "pipeline": PIPELINE}}
    )
    assert patched.status_code == 200, patched.text
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task SET next_check_at = now() WHERE id = :id"), {"id": task_id}
        )
    conditions.check_due(engine, settings, utcnow)


def fired(engine: Engine, task_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT trigger, event FROM due_work WHERE task_id = :id ORDER BY id"),
                {"id": task_id},
            ).all()
        )


def test_fires_once_per_false_to_true_edge(api: Api, engine: Engine, settings: Settings) -> None:
    task = condition_task(api)
    for v in (False, True, True, True, False, False, True, True):
        tick(api, engine, settings, task, v)
    work = fired(engine, task)
    assert len(work) == 2  # the two edges, nothing while it stayed true
    assert {w.trigger for w in work} == {"condition"}
    assert work[0].event["output"] == {"v": True}

    checks = api.admin.get(f"/tasks/{task}/checks", params={"limit": 100}).json()["items"]
    assert [c["result"] for c in reversed(checks)] == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    assert [c["fired"] for c in reversed(checks)] == [
        False, True, False, False, False, False, True, False,
    ]  # fmt: skip
    assert "still true" in checks[0]["reason"]
    assert checks[1]["reason"].startswith("turned true")
    page = api.admin.get(f"/tasks/{task}/checks", params={"limit": 3}).json()
    rest = api.admin.get(f"/tasks/{task}/checks", params={"cursor": page["next_cursor"]}).json()
    assert [c["id"] for c in page["items"] + rest["items"]] == [c["id"] for c in checks]


def test_cooldown_holds_back_a_second_edge(api: Api, engine: Engine, settings: Settings) -> None:
    task = condition_task(api, cooldown_seconds=3600)
    for v in (True, False, True):
        tick(api, engine, settings, task, v)
    assert len(fired(engine, task)) == 1
    last = api.admin.get(f"/tasks/{task}/checks").json()["items"][0]
    assert last["result"] is True and not last["fired"] and "cooldown" in last["reason"]


def test_a_failing_check_is_recorded_and_changes_nothing(
    api: Api, engine: Engine, settings: Settings
) -> None:
    task = condition_task(api)
    tick(api, engine, settings, task, True)
    with engine.begin() as conn:  # a value the tool's template cannot render
        conn.execute(
            sa.text(
                "UPDATE task SET payload = jsonb_set(payload, '{params}', '{}'), "
                "next_check_at = now() WHERE id = :id"
            ),
            {"id": task},
        )
    conditions.check_due(engine, settings, utcnow)
    last = api.admin.get(f"/tasks/{task}/checks").json()["items"][0]
    assert last["result"] is None and last["error"] and not last["fired"]
    tick(api, engine, settings, task, True)  # still true since before the failure
    assert len(fired(engine, task)) == 1


def test_condition_fields_are_validated_like_steps(api: Api) -> None:
    base = {
        "title": "c",
        "schedule_kind": "condition",
        "schedule_expr": "*/5 * * * *",
        "payload": {"pipeline": PIPELINE},
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "condition"),
        ({"condition": {**CONDITION, "uses": "nope.tool"}}, "condition.uses"),
        ({"condition": {**CONDITION, "when": "v =="}}, "condition.when"),
        ({"condition": {**CONDITION, "extra": 1}}, "condition.extra"),
        ({"condition": {**CONDITION, "with": {"v": "${steps.x}"}}}, "condition.with"),
        ({"condition": CONDITION, "schedule_expr": "when it rains"}, "schedule_expr"),
        ({"condition": CONDITION, "cooldown_seconds": 0}, "cooldown_seconds"),
    ]
    for extra, field in cases:
        got = api.admin.post("/tasks", json={**base, **extra})
        assert got.status_code == 422, (extra, got.text)
        assert got.json()["error"].get("field", "").startswith(field) or field in got.text, (
            extra,
            got.json(),
        )
    cron = {**base, "schedule_kind": "cron", "schedule_expr": "0 9 * * *", "condition": CONDITION}
    got = api.admin.post("/tasks", json=cron)
    assert got.status_code == 422 and "condition" in got.text
    assert api.admin.get("/tasks").json()["items"] == []


def test_over_mcp_create_task_makes_condition_tasks_with_the_same_validation(api: Api) -> None:
    body = {
        "title": "over mcp",
        "schedule_kind": "condition",
        "schedule_expr": "*/5 * * * *",
        "payload": {"pipeline": PIPELINE},
    }

    async def main() -> tuple[Any, Any, Any]:
        async with mcp_session(api.base_url, admin_token(api)) as session:
            bad = await session.call_tool(
                "create_task", {**body, "condition": {**CONDITION, "uses": "nope.tool"}}
            )
            made = await session.call_tool("create_task", {**body, "condition": CONDITION})
            task_id = (made.structured_content or {}).get("id")
            checks = await session.call_tool("list_checks", {"task_id": task_id})
            return bad, made, checks

    bad, made, checks = anyio.run(main)
    assert bad.is_error and "condition.uses" in str(bad.structured_content or bad.content)
    assert not made.is_error, made.content
    assert (made.structured_content or {})["condition"] == CONDITION
    assert not checks.is_error and (checks.structured_content or {})["items"] == []
