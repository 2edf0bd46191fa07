"""The task endpoints: happy paths, validation, ownership, lifecycle, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.store.tables import audit_log, due_work, outbox, task, task_run
from tests.integration.conftest import Api, serve

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}, "save_as": "e"}]}


def task_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "weekday briefing",
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
        "timezone": "Europe/Chisinau",
        "payload": ECHO,
    }
    body.update(over)
    return body


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_create_get_list_task(api: Api) -> None:
    made = api.admin.post("/tasks", json=task_body())
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "active"
    local = datetime.fromisoformat(body["next_run"]["local"])
    assert (local.hour, local.minute, local.second) == (8, 30, 0)
    assert local.weekday() < 5
    assert api.admin.get(f"/tasks/{body['id']}").json() == body
    listed = api.admin.get("/tasks").json()
    assert [t["id"] for t in listed["items"]] == [body["id"]]


@pytest.mark.parametrize(
    ("over", "field", "fragment"),
    [
        ({"schedule_expr": "FREQ=WEEKLY;INTERVAL=0"}, "schedule_expr", "INTERVAL"),
        ({"schedule_kind": "cron", "schedule_expr": "61 * * * *"}, "schedule_expr", "minute"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        (
            {"schedule_kind": "once", "schedule_expr": "2001-01-01T00:00:00Z"},
            "schedule_expr",
            "not in the future",
        ),
        ({"schedule_kind": "once", "schedule_expr": "tomorrow"}, "schedule_expr", ""),
        (
            {"schedule_expr": "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=2"},
            "schedule_expr",
            "no occurrence after now",
        ),
        (
            {"schedule_kind": "condition", "schedule_expr": "0 9 * * *"},
            "condition",
            "a condition task needs condition",
        ),
        # issue 12: these were a 500 or were accepted; each is a 422 naming what is wrong
        ({"schedule_expr": "FREQ=DAILY;INTERVAL=\u00b2"}, "schedule_expr", "ASCII digits"),
        (
            {"schedule_kind": "cron", "schedule_expr": "\u0665 \u0669 * * *"},
            "schedule_expr",
            "ASCII digits",
        ),
        (
            {
                "schedule_kind": "once",
                "schedule_expr": "9999-12-31T23:00:00",
                "timezone": "America/New_York",
            },
            "schedule_expr",
            "outside the supported range",
        ),
        ({"schedule_kind": "cron", "schedule_expr": "0 9 * * 7/2"}, "schedule_expr", "at 7"),
        ({"timezone": "right/Europe/Chisinau"}, "timezone", "not an IANA time zone"),
        ({"timezone": "localtime"}, "timezone", "not an IANA time zone"),
        (
            {
                "schedule_expr": "DTSTART:20260105T000000\nRRULE:FREQ=MINUTELY;INTERVAL=1439;"
                "BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0"
            },
            "schedule_expr",
            "expansion budget",
        ),
        ({"priority": 0}, "priority", ""),
        ({"priority": 10}, "priority", ""),
        ({"max_retries": -1}, "max_retries", ""),
        ({"title": ""}, "title", ""),
        ({"title": "x" * 201}, "title", ""),
        ({"unknown_field": 1}, "unknown_field", ""),
        (
            {"payload": {"pipeline": [{"id": "a", "uses": "nope.tool", "with": {}}]}},
            "payload.pipeline[0].uses",
            "nope.tool",
        ),
        (
            {
                "payload": {
                    "pipeline": [
                        {"id": "a", "uses": "builtin.echo", "with": {"t": "${steps.later.x}"}},
                        {"id": "b", "uses": "builtin.echo", "with": {}, "save_as": "later"},
                    ]
                }
            },
            "payload.pipeline[0].with.t",
            "later",
        ),
        ({"payload": {"pipeline": []}}, "payload.pipeline", ""),
    ],
)
def test_bad_task_is_422_naming_the_field_and_stores_nothing(
    api: Api, engine: Engine, over: dict[str, Any], field: str, fragment: str
) -> None:
    before = (count(engine, task), count(engine, audit_log))
    resp = api.admin.post("/tasks", json=task_body(**over))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == field
    assert fragment in error["message"]
    assert (count(engine, task), count(engine, audit_log)) == before


def test_strings_are_stored_verbatim(api: Api) -> None:
    title = "Robert'); DROP TABLE task;-- ☃ 日本語 \u200b"
    made = api.admin.post("/tasks", json=task_body(title=title, description="<b>é</b>"))
    assert made.status_code == 201
    shown = api.admin.get(f"/tasks/{made.json()['id']}").json()
    assert shown["title"] == title and shown["description"] == "<b>é</b>"


def test_auth_scope_and_ownership(api: Api) -> None:
    anonymous = api.make_client(None)
    assert anonymous.get("/tasks").status_code == 401
    assert anonymous.get("/tasks").json()["error"]["code"] == "unauthorized"
    assert api.make_client("ord_wrong").get("/tasks").status_code == 401

    reader = api.agent("reader", ["tasks:read"])
    denied = reader.post("/tasks", json=task_body())
    assert denied.status_code == 403
    assert "tasks:write" in denied.json()["error"]["message"]

    alice = api.agent("alice", ["tasks:read", "tasks:write", "runs:read"])
    bob = api.agent("bob", ["tasks:read", "tasks:write", "runs:read"])
    mine = alice.post("/tasks", json=task_body()).json()["id"]
    assert bob.get(f"/tasks/{mine}").status_code == 404
    assert bob.post(f"/tasks/{mine}/pause").status_code == 404
    assert bob.get("/tasks").json()["items"] == []
    assert [t["id"] for t in api.admin.get("/tasks").json()["items"]] == [mine]


def test_lifecycle_pause_resume_cancel_with_audit(api: Api, engine: Engine) -> None:
    task_id = api.admin.post("/tasks", json=task_body()).json()["id"]
    assert api.admin.post(f"/tasks/{task_id}/pause").json()["status"] == "paused"
    held = api.admin.post(f"/tasks/{task_id}/run_now")
    assert held.status_code == 409 and "resume" in held.json()["error"]["message"]
    again = api.admin.post(f"/tasks/{task_id}/pause")
    assert again.status_code == 409 and again.json()["error"]["field"] == "status"
    assert api.admin.post(f"/tasks/{task_id}/resume").json()["status"] == "active"
    canceled = api.admin.post(f"/tasks/{task_id}/cancel").json()
    assert canceled["status"] == "canceled" and canceled["next_run_at"] is None
    assert api.admin.post(f"/tasks/{task_id}/resume").status_code == 409
    audit = api.admin.get("/audit", params={"subject_id": task_id}).json()
    assert [a["action"] for a in audit] == [
        "task.cancel",
        "task.resume",
        "task.pause",
        "task.create",
    ]
    assert audit[2]["details"]["before"]["status"] == "active"
    assert audit[2]["details"]["after"]["status"] == "paused"


def test_patch_recomputes_next_run(api: Api) -> None:
    made = api.admin.post("/tasks", json=task_body()).json()
    patched = api.admin.patch(
        f"/tasks/{made['id']}",
        json={"schedule_kind": "cron", "schedule_expr": "15 6 * * *", "timezone": "UTC"},
    )
    assert patched.status_code == 200, patched.text
    nxt = datetime.fromisoformat(patched.json()["next_run_at"])
    assert (nxt.hour, nxt.minute) == (6, 15)
    assert patched.json()["timezone"] == "UTC"
    bad = api.admin.patch(f"/tasks/{made['id']}", json={"schedule_expr": "bogus"})
    assert bad.status_code == 422
    assert api.admin.get(f"/tasks/{made['id']}").json()["schedule_expr"] == "15 6 * * *"
    assert api.admin.patch(f"/tasks/{made['id']}", json={"title": None}).status_code == 422


def test_run_now_creates_due_work(api: Api, engine: Engine) -> None:
    task_id = api.admin.post("/tasks", json=task_body()).json()["id"]
    resp = api.admin.post(f"/tasks/{task_id}/run_now")
    assert resp.status_code == 202
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(due_work.c.trigger).where(due_work.c.task_id == task_id)
        ).all()
    assert [r.trigger for r in rows] == ["manual"]


def test_snooze_and_skip_next(api: Api, engine: Engine) -> None:
    made = api.admin.post(
        "/tasks",
        json=task_body(schedule_kind="cron", schedule_expr="0 * * * *", timezone="UTC"),
    ).json()
    first = datetime.fromisoformat(made["next_run_at"])
    snoozed = api.admin.post(f"/tasks/{made['id']}/snooze", json={"seconds": 600}).json()
    assert datetime.fromisoformat(snoozed["next_run_at"]) == first + timedelta(seconds=600)
    skipped = api.admin.post(f"/tasks/{made['id']}/skip_next", json={"count": 2}).json()
    assert datetime.fromisoformat(skipped["next_run_at"]) == first + timedelta(hours=2)
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.select(task_run.c.status, task_run.c.reason).where(task_run.c.task_id == made["id"])
        ).all()
    assert sorted(r.reason for r in reasons) == ["skipped on request", "skipped on request"]
    assert {r.status for r in reasons} == {"skipped"}
    with engine.connect() as conn:
        skipped_events = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.topic == "task.run.skipped")
        ).scalar_one()
    assert skipped_events == 2
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    moved = api.admin.post(f"/tasks/{made['id']}/snooze", json={"until": until.isoformat()})
    assert datetime.fromisoformat(moved.json()["next_run_at"]) == until
    both = api.admin.post(
        f"/tasks/{made['id']}/snooze", json={"seconds": 5, "until": until.isoformat()}
    )
    assert both.status_code == 422


def test_errors_have_one_shape(api: Api) -> None:
    malformed = api.admin.post(
        "/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "bad_request"
    assert api.admin.get("/tasks/not-a-uuid").status_code == 422
    missing = api.admin.get("/tasks/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "task_id"
    huge = api.admin.post("/tasks", json=task_body(description="x" * 300_000))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"


def test_idempotency_key_returns_the_first_task(api: Api, engine: Engine) -> None:
    headers = {"Idempotency-Key": "create-briefing-1"}
    first = api.admin.post("/tasks", json=task_body(), headers=headers)
    again = api.admin.post("/tasks", json=task_body(), headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json()
    assert count(engine, task) == 1
    other = api.admin.post("/tasks", json=task_body(title="different"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["field"] == "Idempotency-Key"
    # a rejected request does not burn the key
    bad = api.admin.post("/tasks", json=task_body(priority=0), headers={"Idempotency-Key": "k2"})
    assert bad.status_code == 422
    good = api.admin.post("/tasks", json=task_body(), headers={"Idempotency-Key": "k2"})
    assert good.status_code == 201
    assert count(engine, task) == 2
    # keys are per agent
    other_agent = api.agent("other", ["tasks:read", "tasks:write"])
    theirs = other_agent.post("/tasks", json=task_body(), headers=headers)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    limited = api.settings.model_copy(update={"rate_limit_per_minute": 5})
    with serve(limited) as base:
        client = api.make_client(api.admin.headers["Authorization"].split()[1])
        client.base_url = httpx.URL(base)
        codes = [client.get("/me").status_code for _ in range(8)]
        assert codes.count(200) <= 5 and codes[-1] == 429
        blocked = client.get("/me")
        assert blocked.json()["error"]["code"] == "rate_limited"
        assert 0 < int(blocked.headers["Retry-After"]) <= 60
