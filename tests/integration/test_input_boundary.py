"""No input gets a 500, and a refused input changes nothing (the HTTP API).

First every input issue 11 reported as a 500 (or as silently accepted), each a 4xx JSON error
naming the field, with the request id in body and header, and the database unchanged. Then
hypothesis over every endpoint in the OpenAPI document: a valid request with one to three
slots made hostile (NUL, lone surrogates, nesting past the limit, NaN/Infinity/1e999, huge
numbers, extreme dates, odd URLs, wrong types); never a 5xx, every 4xx in the error shape,
and after every 4xx a fingerprint of every table is what it was before.

``ORDINAUT_BOUNDARY_EXAMPLES`` sets the examples per endpoint (default 20).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ordinaut.limits import MAX_JSON_DEPTH
from tests.integration.conftest import Api
from tests.integration.hostile import Call, Fingerprint, Mutation, apply, mutations, nested
from tests.integration.test_api_runs_agents import add_run

EXAMPLES = int(os.environ.get("ORDINAUT_BOUNDARY_EXAMPLES", "20"))
JSON = {"content-type": "application/json"}
ECHO = {"pipeline": [{"id": "hi", "uses": "builtin.echo", "with": {"message": "hi"}}]}
PAYLOAD: dict[str, Any] = {
    "params": {"who": "Ana", "n": 1, "when": "2030-01-01T00:00:00Z"},
    "pipeline": [
        {"id": "hi", "uses": "builtin.echo", "with": {"message": "${params.who}", "l": [1, "a"]}}
    ],
}
TASK: dict[str, Any] = {
    "title": "fuzz",
    "description": "d",
    "schedule_kind": "cron",
    "schedule_expr": "0 9 * * *",
    "timezone": "Europe/Chisinau",
    "payload": PAYLOAD,
    "priority": 5,
    "max_retries": 2,
    "jitter_seconds": 0,
    "timeout_seconds": 60,
    "dedupe_key": "k",
    "dedupe_window_seconds": 60,
    "concurrency_key": "c",
    "concurrency_limit": 1,
    "backoff_strategy": "fixed",
    "overlap_policy": "allow",
    "misfire_policy": "skip",
}
TOOL: dict[str, Any] = {
    "address": "fuzz.tool",
    "transport": "http",
    "endpoint": "http://127.0.0.1:1/tool",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/a"}},
        "$defs": {"a": {"type": "string"}},
    },
    "output_schema": {},
    "timeout_seconds": 5,
    "scopes": ["notify"],
    "description": "d",
    "cost_hints": {"usd": 0.1},
    "auth": {"header": "Authorization", "secret": "FUZZ", "prefix": "Bearer "},
}


@dataclass(frozen=True)
class World:
    """Objects for the baseline requests to act on."""

    task: str
    spare_task: str
    run: str
    agent: str
    tool: str
    change: str


def make_world(api: Api, engine: Engine) -> World:
    task = api.admin.post("/tasks", json=TASK).json()["id"]
    spare = api.admin.post("/tasks", json={**TASK, "title": "spare"}).json()["id"]
    run = add_run(engine, task, "waiting_approval")
    agent = api.admin.post("/agents", json={"name": "fuzzed", "scopes": []}).json()["id"]
    made = api.admin.post("/tools", json=TOOL)
    assert made.status_code == 201, made.text
    return World(task, spare, run, agent, TOOL["address"], pending_change(api))


def pending_change(api: Api) -> str:
    """A change waiting for approval: an every-minute task past a 15-minute limit."""
    proposer = api.admin.post("/agents", json={"name": "proposer", "scopes": ["tasks:write"]})
    limits = {"min_interval_seconds": {"value": 900, "on_exceed": "approve"}}
    api.admin.put(f"/agents/{proposer.json()['id']}/limits", json=limits)
    every_minute = {**TASK, "schedule_kind": "cron", "schedule_expr": "* * * * *"}
    made = api.make_client(proposer.json()["token"]).post("/tasks", json=every_minute)
    assert made.status_code == 202, made.text
    return str(made.json()["id"])


Baselines = Callable[[World], list[Call]]
PREVIEW = {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Chisinau", "count": "5"}

CALLS: dict[tuple[str, str], Baselines] = {
    ("POST", "/tasks"): lambda w: [
        Call("POST", "/tasks", body=TASK),
        Call(
            "POST",
            "/tasks",
            body={
                **TASK,
                "schedule_kind": "once",
                "schedule_expr": "2030-01-01T09:00:00Z",
                "jitter_seconds": 86400,
            },
        ),
        Call(
            "POST", "/tasks", body={**TASK, "schedule_kind": "rrule", "schedule_expr": "FREQ=DAILY"}
        ),
    ],
    ("GET", "/tasks"): lambda w: [Call("GET", "/tasks", query={"status": "active", "limit": "5"})],
    ("GET", "/tasks/{task_id}"): lambda w: [Call("GET", "/tasks/{task_id}", {"task_id": w.task})],
    ("PATCH", "/tasks/{task_id}"): lambda w: [
        Call(
            "PATCH",
            "/tasks/{task_id}",
            {"task_id": w.task},
            body={
                "title": "t2",
                "schedule_kind": "once",
                "schedule_expr": "2031-01-01T09:00:00Z",
                "timezone": "UTC",
                "payload": PAYLOAD,
                "max_retries": 1,
                "timeout_seconds": None,
            },
        )
    ],
    ("POST", "/tasks/{task_id}/run_now"): lambda w: [
        Call("POST", "/tasks/{task_id}/run_now", {"task_id": w.task})
    ],
    ("POST", "/tasks/{task_id}/snooze"): lambda w: [
        Call("POST", "/tasks/{task_id}/snooze", {"task_id": w.task}, body={"seconds": 60}),
        Call(
            "POST",
            "/tasks/{task_id}/snooze",
            {"task_id": w.task},
            body={"until": "2031-01-01T00:00:00Z"},
        ),
    ],
    ("POST", "/tasks/{task_id}/skip_next"): lambda w: [
        Call("POST", "/tasks/{task_id}/skip_next", {"task_id": w.task}, body={"count": 1})
    ],
    ("POST", "/tasks/{task_id}/pause"): lambda w: [
        Call("POST", "/tasks/{task_id}/pause", {"task_id": w.task})
    ],
    ("POST", "/tasks/{task_id}/resume"): lambda w: [
        Call("POST", "/tasks/{task_id}/resume", {"task_id": w.task})
    ],
    ("POST", "/tasks/{task_id}/cancel"): lambda w: [
        Call("POST", "/tasks/{task_id}/cancel", {"task_id": w.spare_task})
    ],
    ("GET", "/runs"): lambda w: [
        Call("GET", "/runs", query={"task_id": w.task, "status": "queued", "limit": "5"})
    ],
    ("GET", "/runs/{run_id}"): lambda w: [Call("GET", "/runs/{run_id}", {"run_id": w.run})],
    ("GET", "/runs/{run_id}/steps/{step_path}/{part}"): lambda w: [
        Call(
            "GET",
            "/runs/{run_id}/steps/{step_path}/{part}",
            {"run_id": w.run, "step_path": "hi", "part": "output"},
        )
    ],
    ("POST", "/runs/{run_id}/cancel"): lambda w: [
        Call("POST", "/runs/{run_id}/cancel", {"run_id": w.run})
    ],
    ("POST", "/runs/{run_id}/approve"): lambda w: [
        Call("POST", "/runs/{run_id}/approve", {"run_id": w.run}),
        Call("POST", "/runs/{run_id}/approve", {"run_id": w.run}, body={"comment": "ok"}),
    ],
    ("POST", "/runs/{run_id}/reject"): lambda w: [
        Call("POST", "/runs/{run_id}/reject", {"run_id": w.run}, body={"comment": "no"})
    ],
    ("GET", "/approvals"): lambda w: [Call("GET", "/approvals", query={"limit": "5"})],
    ("GET", "/changes"): lambda w: [
        Call("GET", "/changes", query={"status": "pending", "limit": "5"})
    ],
    ("POST", "/changes/{change_id}/approve"): lambda w: [
        Call(
            "POST", "/changes/{change_id}/approve", {"change_id": w.change}, body={"comment": "ok"}
        )
    ],
    ("POST", "/changes/{change_id}/reject"): lambda w: [
        Call("POST", "/changes/{change_id}/reject", {"change_id": w.change}, body={"comment": "no"})
    ],
    ("GET", "/agents/{agent_id}/limits"): lambda w: [
        Call("GET", "/agents/{agent_id}/limits", {"agent_id": w.agent})
    ],
    ("PUT", "/agents/{agent_id}/limits"): lambda w: [
        Call(
            "PUT",
            "/agents/{agent_id}/limits",
            {"agent_id": w.agent},
            body={
                "max_active_tasks": {"value": 5, "on_exceed": "reject"},
                "min_interval_seconds": {"value": 900, "on_exceed": "approve"},
                "allowed_tools": {"value": ["builtin.*"], "on_exceed": "reject"},
            },
        )
    ],
    ("GET", "/tools"): lambda w: [Call("GET", "/tools")],
    ("POST", "/tools"): lambda w: [
        Call("POST", "/tools", query={"replace": "true"}, body=TOOL),
        Call("POST", "/tools", body={**TOOL, "address": "fuzz.other"}),
    ],
    ("DELETE", "/tools/{address}"): lambda w: [
        Call("DELETE", "/tools/{address}", {"address": w.tool})
    ],
    ("POST", "/events"): lambda w: [
        Call("POST", "/events", body={"topic": "fuzz.topic", "payload": {"a": [1, {"b": "c"}]}})
    ],
    ("GET", "/schedules/preview"): lambda w: [
        Call("GET", "/schedules/preview", query={**PREVIEW, "after": "2030-01-01T00:00:00Z"}),
        Call("GET", "/schedules/preview", query={**PREVIEW, "kind": "rrule", "expr": "FREQ=DAILY"}),
        Call(
            "GET",
            "/schedules/preview",
            query={**PREVIEW, "kind": "once", "expr": "2030-01-01T09:00:00Z"},
        ),
    ],
    ("GET", "/agenda"): lambda w: [
        Call(
            "GET", "/agenda", query={"from": "2030-01-01T00:00:00Z", "to": "2030-01-08T00:00:00Z"}
        ),
        Call("GET", "/agenda", query={"tz": "Asia/Tokyo", "limit": "3"}),
    ],
    ("GET", "/metrics"): lambda w: [Call("GET", "/metrics")],
    ("GET", "/agents"): lambda w: [Call("GET", "/agents")],
    ("POST", "/agents"): lambda w: [
        Call(
            "POST",
            "/agents",
            body={"name": "fuzz-agent", "scopes": ["tasks:read"], "webhook_url": "https://e.x/h"},
        )
    ],
    ("POST", "/agents/{agent_id}/rotate_token"): lambda w: [
        Call("POST", "/agents/{agent_id}/rotate_token", {"agent_id": w.agent})
    ],
    ("DELETE", "/agents/{agent_id}"): lambda w: [
        Call("DELETE", "/agents/{agent_id}", {"agent_id": w.agent})
    ],
    ("PUT", "/agents/{agent_id}/quiet_hours"): lambda w: [
        Call(
            "PUT",
            "/agents/{agent_id}/quiet_hours",
            {"agent_id": w.agent},
            body={"tz": "Europe/Chisinau", "windows": ["22:00-08:00", "SA 00:00-24:00"]},
        ),
        Call(
            "PUT",
            "/agents/{agent_id}/quiet_hours",
            {"agent_id": w.agent},
            body={"windows": ["MO,TU 12:00-13:00"], "on_quiet": "digest", "scopes": ["notify"]},
        ),
    ],
    ("PUT", "/agents/{agent_id}/budgets"): lambda w: [
        Call(
            "PUT",
            "/agents/{agent_id}/budgets",
            {"agent_id": w.agent},
            body={"tz": "UTC", "runs_per_day": 5, "llm_tokens_per_month": 1000},
        )
    ],
    ("GET", "/budgets"): lambda w: [Call("GET", "/budgets")],
    ("GET", "/me"): lambda w: [Call("GET", "/me")],
    ("GET", "/audit"): lambda w: [
        Call("GET", "/audit", query={"subject_id": w.task, "limit": "5"})
    ],
    ("GET", "/schemas/pipeline"): lambda w: [Call("GET", "/schemas/pipeline")],
    ("GET", "/events"): lambda w: [
        Call("GET", "/events", query={"topic": "task.#", "limit": "5"}),
        Call("GET", "/events", query={"after": "0-0"}),
    ],
    ("GET", "/tasks/{task_id}/checks"): lambda w: [
        Call("GET", "/tasks/{task_id}/checks", {"task_id": w.task}, query={"limit": "5"})
    ],
    ("PUT", "/agents/{agent_id}/webhook"): lambda w: [
        Call(
            "PUT", "/agents/{agent_id}/webhook", {"agent_id": w.agent}, body={"webhook_url": None}
        ),
        Call(
            "PUT",
            "/agents/{agent_id}/webhook",
            {"agent_id": w.agent},
            body={"webhook_url": "https://e.x/h"},
        ),
    ],
    ("GET", "/agents/{agent_id}/deliveries"): lambda w: [
        Call("GET", "/agents/{agent_id}/deliveries", {"agent_id": w.agent}, query={"limit": "5"})
    ],
}
EXTRA_QUERY = ("cursor", "after", "x")
NOT_FUZZED = {
    ("GET", "/health"),  # answers 503 by design while beat and workers are down
    ("GET", "/ready"),  # the same
    # a Server-Sent Events stream never ends; its inputs (topic, since, Last-Event-ID) are
    # checked by the same functions as GET /events' (tests/integration/test_event_feed.py)
    ("GET", "/events/stream"),
}


def check(
    resp: httpx.Response, fingerprint: Fingerprint, before: dict[str, str], label: str
) -> dict[str, str]:
    """Assert no 5xx, the error shape for 4xx and no change after a 4xx; the new fingerprint."""
    assert resp.status_code < 500, f"{label} -> {resp.status_code}: {resp.text[:500]}"
    rid = resp.headers.get("x-request-id")
    assert rid, label
    after = fingerprint.take()
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/json"), label
        error = resp.json()["error"]
        assert error["code"] and error["message"] and error["request_id"] == rid, label
        if resp.status_code == 422:
            assert error.get("field"), f"{label}: 422 without a field: {error}"
        changed = sorted(name for name in after if after[name] != before.get(name))
        assert not changed, f"{label} -> {resp.status_code} changed {changed}: {error}"
    return after


# --- the inputs the issue reported -----------------------------------------------------------

DEEP = nested(MAX_JSON_DEPTH + 1, array=False)
CASES: list[tuple[str, str, str, Any, int, str | None]] = [
    ("NUL in title", "POST", "/tasks", {**TASK, "title": "a\x00b"}, 422, "title"),
    ("NUL in description", "POST", "/tasks", {**TASK, "description": "\x00"}, 422, "description"),
    (
        "NUL in a payload key",
        "POST",
        "/tasks",
        {**TASK, "payload": {**PAYLOAD, "params": {"a\x00": 1}}},
        422,
        "payload.params.a\\u0000",
    ),
    (
        "NUL in a payload value",
        "POST",
        "/tasks",
        {**TASK, "payload": {**ECHO, "params": {"a": "x\x00"}}},
        422,
        "payload.params.a",
    ),
    (
        "lone surrogate in a payload",
        "POST",
        "/tasks",
        {**TASK, "payload": {**ECHO, "params": {"a": "\udfff"}}},
        422,
        "payload.params.a",
    ),
    (
        "NUL in an event payload",
        "POST",
        "/events",
        {"topic": "t", "payload": {"a": "\x00"}},
        422,
        "payload.a",
    ),
    (
        "deep nesting in an event payload",
        "POST",
        "/events",
        '{"topic": "t", "payload": ' + nested(300, array=True) + "}",
        422,
        "payload" + "[0]" * (MAX_JSON_DEPTH - 1),
    ),
    (
        "deep nesting in with",
        "POST",
        "/tasks",
        json.dumps(
            {**TASK, "payload": {"pipeline": [{"id": "a", "uses": "builtin.echo", "with": "@"}]}}
        ).replace('"@"', DEEP),
        422,
        "payload.pipeline[0].with" + ".a" * (MAX_JSON_DEPTH - 4),
    ),
    (
        "NaN in params",
        "POST",
        "/tasks",
        json.dumps({**TASK, "payload": {**ECHO, "params": {"x": "@"}}}).replace('"@"', "NaN"),
        422,
        "payload.params.x",
    ),
    (
        "Infinity in params",
        "POST",
        "/tasks",
        json.dumps({**TASK, "payload": {**ECHO, "params": {"x": "@"}}}).replace('"@"', "1e999"),
        422,
        "payload.params.x",
    ),
    (
        "NUL in a webhook URL",
        "POST",
        "/agents",
        {"name": "w", "webhook_url": "http://h/\x00"},
        422,
        "webhook_url",
    ),
    (
        "javascript: webhook",
        "POST",
        "/agents",
        {"name": "w", "webhook_url": "javascript:alert(1)"},
        422,
        "webhook_url",
    ),
    (
        "NUL in a tool description",
        "POST",
        "/tools",
        {**TOOL, "address": "t.a", "description": "\x00"},
        422,
        "description",
    ),
    (
        "CR/LF in a tool endpoint",
        "POST",
        "/tools",
        {**TOOL, "address": "t.b", "endpoint": "http://127.0.0.1:1/\r\nX: y"},
        422,
        "endpoint",
    ),
    (
        "userinfo in a tool endpoint",
        "POST",
        "/tools",
        {**TOOL, "address": "t.c", "endpoint": "http://u:pw@127.0.0.1:1/"},
        422,
        "endpoint",
    ),
    (
        "unresolvable $ref",
        "POST",
        "/tools",
        {**TOOL, "address": "t.d", "input_schema": {"$ref": "#/nope"}},
        422,
        "input_schema.$ref",
    ),
    ("empty timezone", "POST", "/tasks", {**TASK, "timezone": ""}, 422, "timezone"),
    (
        "a step's uses not a string (found by the fuzz)",
        "POST",
        "/tasks",
        {**TASK, "payload": {"pipeline": [{"id": "a", "uses": [], "with": {}}]}},
        422,
        "payload.pipeline[0].uses",
    ),
    ("max_retries true", "POST", "/tasks", {**TASK, "max_retries": True}, 422, "max_retries"),
    ("priority as text", "POST", "/tasks", {**TASK, "priority": "3"}, 422, "priority"),
    (
        "once at the end of time with jitter",
        "POST",
        "/tasks",
        {
            **TASK,
            "schedule_kind": "once",
            "schedule_expr": "9999-12-31T23:59:00Z",
            "jitter_seconds": 86400,
        },
        422,
        "schedule_expr",
    ),
    (
        "preview after the end of time",
        "GET",
        "/schedules/preview?kind=cron&expr=*%20*%20*%20*%20*&after=9999-12-31T23:59:00Z",
        None,
        422,
        "after",
    ),
    (
        "preview after year 1",
        "GET",
        "/schedules/preview?kind=cron&expr=*%20*%20*%20*%20*&after=0001-01-01T00:00:00Z",
        None,
        422,
        "after",
    ),
    (
        "preview with an empty tz",
        "GET",
        "/schedules/preview?kind=cron&expr=*%20*%20*%20*%20*&tz=",
        None,
        422,
        "tz",
    ),
    ("NUL in a path parameter", "DELETE", "/tools/x%00", None, 422, "address"),
    ("NUL in a query parameter", "GET", "/tasks?status=a%00", None, 422, "status"),
    ("body that is not JSON", "POST", "/tasks", "{'title': 1}", 400, None),
    ("body that is not UTF-8", "POST", "/events", b'{"topic": "\xff"}', 400, None),
]


def encoded(body: Any) -> bytes | None:
    """A case's body as sent: bytes as they are, text as UTF-8, anything else as JSON."""
    if body is None or isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_reported_input_is_a_json_4xx_naming_the_field(
    api: Api, method: str, url: str, body: Any, status: int, field: str | None
) -> None:
    fingerprint = Fingerprint(api.settings.database_url)
    try:
        before = fingerprint.take()
        raw = encoded(body)
        resp = api.admin.request(method, url, content=raw, headers=JSON if raw else None)
        check(resp, fingerprint, before, url)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"].get("field") == field, resp.text
    finally:
        fingerprint.close()


def test_a_chunked_body_over_the_limit_is_a_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 10_000  # no Content-Length: sent chunked

    resp = api.admin.post("/tasks", content=chunks(), headers=JSON)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == "payload_too_large"


# --- every endpoint, fuzzed -------------------------------------------------------------------


def test_the_fuzz_covers_every_endpoint(api: Api) -> None:
    spec = api.admin.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert operations - NOT_FUZZED == set(CALLS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("operation", sorted(CALLS), ids=lambda op: f"{op[0]} {op[1]}")
def test_no_input_to_any_endpoint_gets_a_5xx_or_changes_anything_when_refused(
    api: Api, engine: Engine, operation: tuple[str, str]
) -> None:
    world = make_world(api, engine)
    calls = CALLS[operation](world)
    fingerprint = Fingerprint(api.settings.database_url)
    state = {"before": fingerprint.take()}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.sampled_from(calls).flatmap(
            lambda call: st.tuples(
                st.just(call), st.lists(mutations(call, EXTRA_QUERY), min_size=1, max_size=3)
            )
        )
    )
    def hostile(case: tuple[Call, list[Mutation]]) -> None:
        call, changes = case
        url, body = apply(call, changes)
        resp = api.admin.request(call.method, url, content=body, headers=JSON if body else None)
        label = f"{call.method} {url[:300]} {(body or b'')[:300]!r}"
        state["before"] = check(resp, fingerprint, state["before"], label)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    statuses: dict[int, int] = {}
    try:
        hostile()
        print(f"{operation}: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}")
    finally:
        fingerprint.close()
