"""Runs, events, agents, preview and audit endpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.store.tables import outbox, task_run
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import task_body


def add_run(engine: Engine, task_id: str, status: str, minutes_ago: int = 0) -> str:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.insert(task_run)
            .values(task_id=task_id, status=status, scheduled_for=at, created_at=at)
            .returning(task_run.c.id)
        ).scalar_one()
    return str(run_id)


def test_runs_listing_filters_pagination_and_ownership(api: Api, engine: Engine) -> None:
    alice = api.agent("alice", ["tasks:read", "tasks:write", "runs:read"])
    bob = api.agent("bob", ["tasks:read", "runs:read"])
    task_id = alice.post("/tasks", json=task_body()).json()["id"]
    ids = [
        add_run(engine, task_id, s, minutes_ago=10 - i)
        for i, s in enumerate(["succeeded", "failed", "succeeded", "queued"])
    ]
    page = alice.get("/runs", params={"task_id": task_id, "limit": 2}).json()
    assert [r["id"] for r in page["items"]] == [ids[3], ids[2]]
    rest = alice.get("/runs", params={"task_id": task_id, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == [ids[1], ids[0]]
    assert rest["next_cursor"] is None
    ok = alice.get("/runs", params={"status": "succeeded"}).json()["items"]
    assert {r["id"] for r in ok} == {ids[0], ids[2]}
    assert alice.get("/runs", params={"limit": 0}).status_code == 422
    assert alice.get("/runs", params={"limit": 1001}).status_code == 422
    assert alice.get("/runs", params={"status": "bogus"}).status_code == 422
    assert alice.get("/runs", params={"cursor": "!!"}).json()["error"]["field"] == "cursor"
    assert bob.get("/runs").json()["items"] == []
    assert bob.get(f"/runs/{ids[0]}").status_code == 404
    shown = alice.get(f"/runs/{ids[0]}").json()
    assert shown["status"] == "succeeded" and shown["steps"] == []


def test_cancel_approve_reject(api: Api, engine: Engine) -> None:
    task_id = api.admin.post("/tasks", json=task_body()).json()["id"]
    queued = add_run(engine, task_id, "queued")
    canceled = api.admin.post(f"/runs/{queued}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert api.admin.post(f"/runs/{queued}/cancel").status_code == 409
    assert api.admin.post(f"/runs/{queued}/approve").status_code == 409
    assert api.admin.post(f"/runs/{queued}/reject").status_code == 409
    waiting = add_run(engine, task_id, "waiting_approval")
    approved = api.admin.post(f"/runs/{waiting}/approve").json()
    # its resume is due now: the next dispatch pass queues it (when its slot is free)
    assert approved["status"] == "waiting_approval" and approved["resume_action"] == "approve"
    assert api.admin.post(f"/runs/{waiting}/approve").status_code == 409  # decided once
    assert api.admin.post(f"/runs/{waiting}/reject").status_code == 409
    waiting2 = add_run(engine, task_id, "waiting_approval")
    assert api.admin.post(f"/runs/{waiting2}/reject").json()["status"] == "canceled"


def test_publish_event(api: Api, engine: Engine) -> None:
    resp = api.admin.post("/events", json={"topic": "inbox.new", "payload": {"from": "ø"}})
    assert resp.status_code == 202
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(outbox).where(outbox.c.topic == "event.external.inbox.new")
        ).one()
    assert row.payload["payload"] == {"from": "ø"}
    writer = api.agent("writer", ["tasks:write"])
    assert writer.post("/events", json={"topic": "x", "payload": {}}).status_code == 403
    bad = api.admin.post("/events", json={"topic": "no spaces", "payload": {}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "topic"
    big = api.admin.post("/events", json={"topic": "big", "payload": {"x": "y" * 70_000}})
    assert big.status_code == 413


def test_agents_tokens_rotate_and_revoke(api: Api) -> None:
    made = api.admin.post("/agents", json={"name": "helper", "scopes": ["tasks:read", "notify"]})
    assert made.status_code == 201
    agent = made.json()
    assert agent["token"].startswith("ord_")
    helper = api.make_client(agent["token"])
    assert helper.get("/me").json()["name"] == "helper"
    assert helper.get("/me").json()["token"] is None
    assert helper.post("/agents", json={"name": "x"}).status_code == 403
    assert api.admin.post("/agents", json={"name": "helper"}).status_code == 409
    assert api.admin.post("/agents", json={"name": "bad name"}).status_code == 422
    assert api.admin.post("/agents", json={"name": "y", "scopes": ["BAD SCOPE"]}).status_code == 422
    assert {a["name"] for a in api.admin.get("/agents").json()} == {"admin", "helper"}

    rotated = helper.post(f"/agents/{agent['id']}/rotate_token").json()
    assert helper.get("/me").status_code == 401
    fresh = api.make_client(rotated["token"])
    assert fresh.get("/me").status_code == 200
    revoked = api.admin.delete(f"/agents/{agent['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert fresh.get("/me").status_code == 401
    admin_id = api.admin.get("/me").json()["id"]
    assert api.admin.delete(f"/agents/{admin_id}").status_code == 409
    assert api.admin.delete(f"/agents/{uuid.uuid4()}").status_code == 404


def test_preview_schedule(api: Api) -> None:
    resp = api.admin.get(
        "/schedules/preview",
        params={
            "kind": "cron",
            "expr": "30 2 * * *",
            "tz": "Europe/Chisinau",
            "count": 3,
            "after": "2026-03-27T12:00:00Z",
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [o["utc"] for o in body["occurrences"]] == [
        "2026-03-28T00:30:00Z",
        "2026-03-29T00:30:00Z",
        "2026-03-29T23:30:00Z",  # 02:30 EEST, the day after the change
    ]
    assert body["occurrences"][1]["local"] == "2026-03-29T03:30:00+03:00"
    assert any("DST" in note for note in body["notes"])
    bad = api.admin.get("/schedules/preview", params={"kind": "rrule", "expr": "FREQ=NEVER"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "schedule_expr"
    assert (
        api.make_client(None)
        .get("/schedules/preview", params={"kind": "cron", "expr": "* * * * *"})
        .status_code
        == 401
    )


@pytest.mark.parametrize("path", ["/audit", "/agents"])
def test_admin_only_endpoints(api: Api, path: str) -> None:
    user = api.agent("user", ["tasks:read", "tasks:write", "runs:read"])
    assert user.get(path).status_code == 403
