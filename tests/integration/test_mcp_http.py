"""The MCP server at /mcp of a real API on loopback, driven by the mcp SDK's ClientSession.

Covers the protocol surface (initialize, tools/list with schemas, resources, the prompt,
both protocol eras), identity (bearer token → agent, 401 without one or with a revoked one),
the API's idempotency keys and rate limit, and the error contract: bad arguments, invalid
schedules, unknown ids and missing scopes are tool errors (isError) with the API's message,
and the session keeps working after each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, RequestParamsMeta

from ordinaut.service.facade import OPERATIONS
from tests.integration.conftest import Api, serve
from tests.support import text_of

WEEKDAYS_0830 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"
ECHO = {"pipeline": [{"id": "hi", "uses": "builtin.echo", "with": {"message": "hi"}}]}
NO_TASK = "00000000-0000-4000-8000-000000000000"


@asynccontextmanager
async def mcp_session(base_url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession to ``base_url``/mcp acting as ``token``'s agent."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def new_agent(api: Api, name: str, scopes: list[str]) -> dict[str, Any]:
    made = api.admin.post("/agents", json={"name": name, "scopes": scopes})
    assert made.status_code == 201, made.text
    agent: dict[str, Any] = made.json()
    return agent


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    text = text_of(result.content[0])
    assert isinstance(text, str)
    return text


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    assert json.loads(text_of(result.content[0])) == result.structured_content
    return result.structured_content


def admin_token(api: Api) -> str:
    return str(api.admin.headers["authorization"]).removeprefix("Bearer ")


def test_initialize_and_list_every_tool_with_schemas(api: Api) -> None:
    async def main() -> None:
        async with mcp_session(api.base_url, admin_token(api)) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert sorted(tools) == sorted(OPERATIONS)
            for tool in tools.values():
                assert tool.description and len(tool.description) > 80, tool.name
                assert tool.input_schema["type"] == "object", tool.name
                assert tool.input_schema.get("additionalProperties") is False, tool.name
                assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
            create = tools["create_task"]
            assert WEEKDAYS_0830 in str(create.description)
            assert set(create.input_schema["required"]) == {"title", "schedule_kind", "payload"}
            assert "created_by" not in create.input_schema["properties"]
            assert create.input_schema["examples"][0]["schedule_expr"] == WEEKDAYS_0830
            props = {n: set(t.input_schema["properties"]) for n, t in tools.items()}
            assert props["snooze_task"] == {"task_id", "seconds", "until"}
            assert props["skip_next"] == {"task_id", "count"}
            assert props["preview_schedule"] == {"kind", "expr", "tz", "count", "after"}
            assert props["publish_event"] == {"topic", "payload"}
            assert props["get_run"] == {"run_id"}
            assert tools["get_task"].annotations and tools["get_task"].annotations.read_only_hint
            assert (
                tools["cancel_task"].annotations
                and tools["cancel_task"].annotations.destructive_hint
            )
            preview_out = tools["preview_schedule"].output_schema or {}
            assert set(preview_out["properties"]) == {"occurrences", "notes"}

            templates = (await s.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} == {
                "ordinaut://tasks/{task_id}",
                "ordinaut://runs/{run_id}",
            }
            prompt = await s.get_prompt("schedule_task", {"request": "weekdays at 8:30, news"})
            text = text_of(prompt.messages[0].content)
            assert "weekdays at 8:30, news" in text and "preview_schedule" in text

    anyio.run(main)


def test_bad_arguments_are_tool_errors_with_clear_messages(api: Api) -> None:
    reader = new_agent(api, "reader", ["tasks:read", "runs:read"])

    async def main() -> None:
        async with mcp_session(api.base_url, admin_token(api)) as s:
            base = {"title": "t", "schedule_kind": "rrule", "payload": ECHO}
            wrong_type = await s.call_tool(
                "create_task", {**base, "schedule_expr": WEEKDAYS_0830, "priority": "high"}
            )
            assert error_text(wrong_type).startswith("invalid arguments for create_task: priority:")
            assert wrong_type.meta == {
                "ordinaut/error": {
                    "code": "validation_error",
                    "message": error_text(wrong_type),
                    "field": "priority",
                }
            }
            bad_rrule = await s.call_tool(
                "create_task", {**base, "schedule_expr": "FREQ=SOMETIMES;BYHOUR=8"}
            )
            assert error_text(bad_rrule).startswith("schedule_expr: ")
            assert "FREQ" in error_text(bad_rrule)
            assert bad_rrule.meta and bad_rrule.meta["ordinaut/error"]["field"] == "schedule_expr"
            unknown = await s.call_tool("get_task", {"task_id": NO_TASK})
            assert error_text(unknown) == f"task_id: no task {NO_TASK}"
            assert unknown.meta and unknown.meta["ordinaut/error"]["code"] == "not_found"
            not_uuid = await s.call_tool("pause_task", {"task_id": "tomorrow"})
            assert "task_id: Input should be a valid UUID" in error_text(not_uuid)
            missing = await s.call_tool("snooze_task", {"task_id": NO_TASK})
            assert "give exactly one of seconds or until" in error_text(missing)
            extra = await s.call_tool("list_tasks", {"colour": "red"})
            assert "colour: Extra inputs are not permitted" in error_text(extra)
            no_such = await s.call_tool("delete_everything", {})
            assert "unknown tool 'delete_everything'" in error_text(no_such)
            preview = await s.call_tool("preview_schedule", {"kind": "cron", "expr": "61 * * * *"})
            assert error_text(preview).startswith("schedule_expr: ")
            # the session survived every error
            assert ok(await s.call_tool("list_tasks", {}))["items"] == []

        async with mcp_session(api.base_url, reader["token"]) as s:
            denied = await s.call_tool("create_task", {**base, "schedule_expr": WEEKDAYS_0830})
            assert error_text(denied) == "scope: this token lacks the scope 'tasks:write'"
            assert denied.meta and denied.meta["ordinaut/error"]["code"] == "forbidden"
            assert ok(await s.call_tool("list_tasks", {}))["items"] == []

    anyio.run(main)


def test_http_needs_a_live_token_and_leaves_the_api_alone(api: Api) -> None:
    doomed = new_agent(api, "doomed", ["tasks:read"])
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    url = f"{api.base_url}/mcp"
    anonymous = httpx.post(url, json=init, headers=headers)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.post(url, json=init, headers={**headers, "Authorization": "Bearer ord_nope"})
    assert bad.status_code == 401
    good = {**headers, "Authorization": f"Bearer {doomed['token']}"}
    assert httpx.post(url, json=init, headers=good).status_code == 200
    assert api.admin.delete(f"/agents/{doomed['id']}").status_code == 200
    assert httpx.post(url, json=init, headers=good).status_code == 401

    # the REST app around /mcp is unchanged
    assert httpx.get(f"{api.base_url}/docs").status_code == 200
    spec = httpx.get(f"{api.base_url}/openapi.json").json()
    assert "/tasks" in spec["paths"] and "/mcp" not in spec["paths"]
    assert httpx.get(f"{api.base_url}/health").status_code in (200, 503)
    missing = httpx.get(f"{api.base_url}/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_session_acts_as_its_agent(api: Api) -> None:
    alice = new_agent(api, "alice", ["tasks:read", "tasks:write", "runs:read"])
    bob = new_agent(api, "bob", ["tasks:read", "tasks:write", "runs:read"])
    body = {
        "title": "alice's",
        "schedule_kind": "rrule",
        "schedule_expr": WEEKDAYS_0830,
        "timezone": "Europe/Chisinau",
        "payload": ECHO,
    }

    async def main() -> None:
        async with mcp_session(api.base_url, alice["token"]) as s:
            task = ok(await s.call_tool("create_task", body))
            assert task["created_by"] == alice["id"]
            read = await s.read_resource(f"ordinaut://tasks/{task['id']}")
            shown = json.loads(text_of(read.contents[0]))
            assert shown == ok(await s.call_tool("get_task", {"task_id": task["id"]}))
            listed = (await s.list_resources()).resources
            assert [r.uri for r in listed] == [
                "ordinaut://schemas/pipeline",
                f"ordinaut://tasks/{task['id']}",
            ]
        async with mcp_session(api.base_url, bob["token"]) as s:
            stranger = await s.call_tool("get_task", {"task_id": task["id"]})
            assert error_text(stranger) == f"task_id: no task {task['id']}"
            assert ok(await s.call_tool("list_tasks", {}))["items"] == []

    anyio.run(main)


def test_idempotency_key_in_meta_and_the_rate_limit_apply_to_mcp(api: Api) -> None:
    body: dict[str, Any] = {
        "title": "once",
        "schedule_kind": "cron",
        "schedule_expr": "0 9 * * *",
        "payload": ECHO,
    }
    key = cast(RequestParamsMeta, {"ordinaut/idempotency_key": "create-1"})

    async def replayed() -> None:
        async with mcp_session(api.base_url, admin_token(api)) as s:
            first = ok(await s.call_tool("create_task", body, meta=key))
            again = ok(await s.call_tool("create_task", body, meta=key))
            assert again == first
            other = ok(await s.call_tool("create_task", body))
            assert other["id"] != first["id"]
            assert len(ok(await s.call_tool("list_tasks", {}))["items"]) == 2

    anyio.run(replayed)

    busy = new_agent(api, "busy", ["tasks:read"])
    limited = api.settings.model_copy(update={"rate_limit_per_minute": 2})
    with serve(limited) as base_url:

        async def throttled() -> None:
            async with mcp_session(base_url, busy["token"]) as s:
                results = [await s.call_tool("list_tasks", {"limit": 1}) for _ in range(5)]
            assert not results[0].is_error
            refused = [r for r in results if r.is_error]
            assert refused, "5 calls within a minute passed a limit of 2"
            assert "requests this minute" in error_text(refused[0])
            assert refused[0].meta
            detail = refused[0].meta["ordinaut/error"]
            assert detail["code"] == "rate_limited" and 0 < detail["retry_after"] <= 60

        anyio.run(throttled)


def test_the_2026_07_28_protocol_era_is_served_too(api: Api) -> None:
    async def main() -> None:
        headers = {"Authorization": f"Bearer {admin_token(api)}"}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        transport = streamable_http_client(f"{api.base_url}/mcp", http_client=http)
        async with http, Client(transport) as client:
            assert client.protocol_version == "2026-07-28"
            assert len((await client.list_tools()).tools) == len(OPERATIONS)
            unknown = await client.call_tool("get_task", {"task_id": NO_TASK})
            assert error_text(unknown) == f"task_id: no task {NO_TASK}"
            with pytest.raises(MCPError) as raised:
                await client.read_resource(f"ordinaut://runs/{NO_TASK}")
            assert (raised.value.error.code, raised.value.error.message) == (
                -32602,
                f"no run {NO_TASK}",
            )

    anyio.run(main)
