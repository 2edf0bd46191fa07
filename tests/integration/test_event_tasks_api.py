"""Creating and changing event tasks over HTTP: what is refused, with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Api

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"t": "${event.topic}"}}]}


def body(**fields: Any) -> dict[str, Any]:
    return {"title": "t", "schedule_kind": "event", "schedule_expr": "mail.*", "payload": ECHO} | (
        fields
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule_expr": "mail..x"}, "schedule_expr"),
        ({"schedule_expr": "mail.in*"}, "schedule_expr"),
        ({"schedule_expr": None}, "schedule_expr"),
        ({"event_filter": "priority =="}, "event_filter"),
        ({"event_filter": ""}, "event_filter"),
        ({"event_sources": ["not-a-uuid"]}, "event_sources"),
        (
            {"schedule_kind": "cron", "schedule_expr": "0 9 * * *", "event_filter": "a"},
            "event_filter",
        ),
        (
            {
                "schedule_kind": "cron",
                "schedule_expr": "0 9 * * *",
                "event_sources": ["5f0c7a8e-8d52-4b8f-9d0f-2a1a9d3b6c11"],
            },
            "event_sources",
        ),
    ],
)
def test_bad_event_tasks_are_422_naming_the_field(
    api: Api, fields: dict[str, Any], field: str
) -> None:
    got = api.admin.post("/tasks", json=body(**fields))
    assert got.status_code == 422, got.text
    assert field in str(got.json()), got.json()
    assert api.admin.get("/tasks").json()["items"] == []


def test_an_event_task_is_stored_with_its_filter_and_no_next_run(api: Api) -> None:
    made = api.admin.post("/tasks", json=body(event_filter="priority == 'high'"))
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["schedule_kind"] == "event"
    assert task["event_filter"] == "priority == 'high'"
    assert task["event_sources"] == []
    assert task["next_run_at"] is None
    bad = api.admin.patch(f"/tasks/{task['id']}", json={"event_filter": "a ||"})
    assert bad.status_code == 422 and "event_filter" in bad.text
    cleared = api.admin.patch(f"/tasks/{task['id']}", json={"event_filter": None})
    assert cleared.status_code == 200 and cleared.json()["event_filter"] is None


def test_publishing_needs_a_well_formed_topic(api: Api) -> None:
    for topic in ("a..b", ".a", "a.", "a*"):
        got = api.admin.post("/events", json={"topic": topic, "payload": {}})
        assert got.status_code == 422, (topic, got.text)
    assert api.admin.post("/events", json={"topic": "a.b", "payload": {}}).status_code == 202
