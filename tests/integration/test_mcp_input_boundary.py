"""No input gets a 5xx through MCP either, and a refused tool call changes nothing.

Hypothesis over every MCP tool: ``tools/call`` JSON-RPC requests sent raw to a real API's
``/mcp`` (so NaN, lone surrogates and deep nesting reach the server as a hostile client would
send them), arguments being a valid set with one to three slots made hostile. Never an HTTP
5xx nor an ``internal_error``; every refusal (a tool error, a JSON-RPC error or an HTTP 4xx)
leaves every table as it was. ``ORDINAUT_BOUNDARY_EXAMPLES`` sets the examples per tool.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.limits import MAX_JSON_DEPTH
from ordinaut.mcp.auth import from_token
from ordinaut.mcp.server import ERROR_META_KEY, run_tool
from ordinaut.mcp.toolset import BY_NAME
from ordinaut.runtime import Runtime
from ordinaut.service.facade import OPERATIONS, Service
from tests.integration.conftest import Api
from tests.integration.hostile import Call, Fingerprint, Mutation, apply, mutations
from tests.integration.test_input_boundary import EXAMPLES, PAYLOAD, TASK, World, make_world
from tests.support import bootstrap_admin

MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}
CREATE = dict(TASK)
PREVIEW = {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Chisinau", "count": 5}


def baselines(w: World) -> dict[str, list[dict[str, Any]]]:
    """Valid arguments for every tool (some tools get several)."""
    once = {**CREATE, "schedule_kind": "once", "schedule_expr": "2030-01-01T09:00:00Z"}
    return {
        "create_task": [CREATE, {**once, "jitter_seconds": 86400}],
        "list_tasks": [{"status": "active", "limit": 5}],
        "get_task": [{"task_id": w.task}],
        "update_task": [
            {
                "task_id": w.task,
                "title": "t2",
                "schedule_kind": "once",
                "schedule_expr": "2031-01-01T09:00:00Z",
                "timezone": "UTC",
                "payload": PAYLOAD,
                "max_retries": 1,
            }
        ],
        "run_now": [{"task_id": w.task}],
        "snooze_task": [
            {"task_id": w.task, "seconds": 60},
            {"task_id": w.task, "until": "2031-01-01T00:00:00Z"},
        ],
        "skip_next": [{"task_id": w.task, "count": 1}],
        "pause_task": [{"task_id": w.task}],
        "resume_task": [{"task_id": w.task}],
        "cancel_task": [{"task_id": w.spare_task}],
        "list_runs": [{"task_id": w.task, "status": "queued", "limit": 5}],
        "list_checks": [{"task_id": w.task, "limit": 5}],
        "get_run": [{"run_id": w.run}],
        "get_step_data": [{"run_id": w.run, "step_path": "hi", "part": "output"}],
        "cancel_run": [{"run_id": w.run}],
        "approve_run": [{"run_id": w.run}, {"run_id": w.run, "comment": "ok"}],
        "reject_run": [{"run_id": w.run, "comment": "no"}],
        "list_approvals": [{"limit": 5}],
        "list_changes": [{"status": "pending", "limit": 5}],
        "approve_change": [{"change_id": w.change, "comment": "ok"}],
        "reject_change": [{"change_id": w.change, "comment": "no"}],
        "publish_event": [{"topic": "fuzz.topic", "payload": {"a": [1, {"b": "c"}]}}],
        "list_events": [{"topic": "task.#", "limit": 5}, {"after": "0-0"}],
        "preview_schedule": [
            {**PREVIEW, "after": "2030-01-01T00:00:00Z"},
            {**PREVIEW, "kind": "once", "expr": "2030-01-01T09:00:00Z"},
        ],
        "list_tools": [{}],
        "agenda": [
            {"from": "2030-01-01T00:00:00Z", "to": "2030-01-08T00:00:00Z"},
            {"tz": "Asia/Tokyo", "limit": 3},
        ],
        "set_quiet_hours": [
            {"agent_id": w.agent, "tz": "Europe/Chisinau", "windows": ["22:00-08:00"]},
            {"agent_id": w.agent, "windows": ["SA 00:00-24:00"], "on_quiet": "drop"},
        ],
        "set_budgets": [{"agent_id": w.agent, "tz": "UTC", "runs_per_day": 5}],
        "get_budgets": [{}],
    }


def envelope(name: str, raw_arguments: bytes) -> bytes:
    """A ``tools/call`` JSON-RPC request around arguments given as raw JSON text."""
    head = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call"})[:-1]
    return f'{head}, "params": {{"name": {json.dumps(name)}, "arguments": '.encode() + (
        raw_arguments + b"}}"
    )


def outcome(resp: httpx.Response, label: str) -> str:
    """``ok``, or how the call was refused; asserts it was not a server error of any kind."""
    assert resp.status_code < 500, f"{label} -> HTTP {resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400:
        return f"http {resp.status_code}"
    message = resp.json()
    if "error" in message:  # a JSON-RPC error (the SDK refused the request itself)
        assert message["error"]["code"] != -32603, f"{label}: {message}"  # internal error
        return "json-rpc error"
    result = message["result"]
    if result.get("isError"):
        detail = result["_meta"][ERROR_META_KEY]
        assert detail["code"] != "internal_error", f"{label}: {detail}"
        return f"tool error {detail['code']}"
    return "ok"


def test_the_fuzz_covers_every_mcp_tool(api: Api, engine: Engine) -> None:
    assert set(baselines(make_world(api, engine))) == set(BY_NAME) == set(OPERATIONS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_no_tool_argument_gets_a_server_error_or_changes_anything_when_refused(
    api: Api, engine: Engine, name: str
) -> None:
    world = make_world(api, engine)
    calls = [Call("POST", "/mcp", body=args) for args in baselines(world)[name]]
    fingerprint = Fingerprint(api.settings.database_url)
    state = {"before": fingerprint.take()}
    headers = {**MCP_HEADERS, "authorization": api.admin.headers["authorization"]}
    http = httpx.Client(base_url=api.base_url, headers=headers, timeout=30)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.sampled_from(calls).flatmap(
            lambda call: st.tuples(st.just(call), st.lists(mutations(call), min_size=1, max_size=3))
        )
    )
    def hostile(case: tuple[Call, list[Mutation]]) -> None:
        call, changes = case
        _, arguments = apply(call, changes)
        assert arguments is not None
        resp = http.post("/mcp", content=envelope(name, arguments))
        label = f"{name} {arguments[:400]!r}"
        after = fingerprint.take()
        seen = outcome(resp, label)
        outcomes[seen] = outcomes.get(seen, 0) + 1
        if seen != "ok":
            changed = sorted(t for t in after if after[t] != state["before"][t])
            assert not changed, f"{label} was refused but changed {changed}: {resp.text[:300]}"
        state["before"] = after

    outcomes: dict[str, int] = {}
    try:
        hostile()
        print(f"{name}: {sum(outcomes.values())} calls, {outcomes}")
    finally:
        http.close()
        fingerprint.close()


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


SOME_TASK = str(uuid.uuid4())
DIRECT: list[tuple[str, dict[str, Any], str]] = [
    ("create_task", {**CREATE, "title": "a\x00b"}, "title"),
    (
        "create_task",
        {**CREATE, "payload": {"params": {"k\udfff": 1}, "pipeline": []}},
        "payload.params.k\\udfff",
    ),
    ("create_task", {**CREATE, "max_retries": True}, "max_retries"),
    ("create_task", {**CREATE, "timezone": ""}, "timezone"),
    (
        "publish_event",
        {"topic": "t", "payload": {"a": deep(MAX_JSON_DEPTH)}},
        "payload.a" + "[0]" * (MAX_JSON_DEPTH - 2),
    ),
    ("publish_event", {"topic": "t", "payload": {"x": float("inf")}}, "payload.x"),
    ("preview_schedule", {**PREVIEW, "count": float("nan")}, "count"),
    ("preview_schedule", {**PREVIEW, "after": "9999-12-31T23:59:00Z"}, "after"),
    ("preview_schedule", {**PREVIEW, "tz": ""}, "tz"),
    ("snooze_task", {"task_id": SOME_TASK, "until": "0001-01-01T00:00:00+14:00"}, "until"),
    ("get_task", {"task_id": "\x00"}, "task_id"),
]


@pytest.mark.parametrize(
    ("name", "arguments", "field"), DIRECT, ids=[f"{d[0]}:{d[2]}" for d in DIRECT]
)
def test_tool_arguments_pass_the_same_input_boundary(
    settings: Settings, name: str, arguments: dict[str, Any], field: str
) -> None:
    """Values no MCP transport delivers (the SDK's JSON parser refuses lone surrogates) are
    still checked when a tool is run: the boundary is in the tool call, not the transport."""
    token = bootstrap_admin(settings)
    runtime = Runtime(settings)
    service = Service(runtime, kick_dispatch=lambda: None)
    fingerprint = Fingerprint(settings.database_url)
    try:
        before = fingerprint.take()
        result = anyio.run(run_tool, service, from_token(service, token), name, arguments)
        assert result.is_error, result.structured_content
        detail = (result.meta or {})[ERROR_META_KEY]
        assert detail["code"] == "validation_error" and detail["field"] == field, detail
        assert fingerprint.take() == before
    finally:
        fingerprint.close()
        runtime.close()
