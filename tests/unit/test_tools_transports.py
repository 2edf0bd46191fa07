"""Pure parts of the tool transports: failure classification, MCP results, LLM messages,
secrets, the demo tools and the shipped examples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from ordinaut.demo import catalog as demo_catalog
from ordinaut.demo.tools import DemoError, DemoState, list_events, send_message
from ordinaut.errors import ToolError
from ordinaut.pipeline.validate import validate_payload
from ordinaut.tools import llm, secrets
from ordinaut.tools.http import auth_headers, retry_after_seconds, status_error
from ordinaut.tools.mcp_client import as_tool_error, output_of
from ordinaut.tools.registry import builtin_tools
from ordinaut.tools.spec import Auth, McpServer, ToolSpec, Transport

NOW = datetime(2015, 10, 21, 7, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1680.0),
        ("Wed, 21 Oct 2015 06:00:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (302, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_status_classification(status: int, retryable: bool) -> None:
    error = status_error(status, b'{"error": "nope"}', 3.0)
    assert (error.retryable, error.retry_after) == (retryable, 3.0)
    assert error.message.startswith(f"HTTP {status}: ") and "nope" in error.message


def _result(text: str, *, structured: Any = None, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=is_error,
    )


def test_mcp_output_prefers_structured_then_json_then_text() -> None:
    assert output_of(_result('{"a": 1}', structured={"b": 2})) == {"b": 2}
    assert output_of(_result('{"a": 1}')) == {"a": 1}
    assert output_of(_result("plain words")) == {"text": "plain words"}


@pytest.mark.parametrize(
    ("text", "retryable"),
    [
        ("invalid date: end is before start", False),
        ("upstream timed out, try again", True),
        ("rate limit exceeded", True),
        ("service temporarily unavailable", True),
    ],
)
def test_mcp_is_error_is_a_tool_error(text: str, retryable: bool) -> None:
    with pytest.raises(ToolError) as caught:
        output_of(_result(text, is_error=True))
    assert (caught.value.message, caught.value.retryable) == (text, retryable)


SERVER = McpServer("srv", command="srv-cmd")


@pytest.mark.parametrize(
    ("exc", "retryable", "field"),
    [
        (TimeoutError(), True, None),
        (MCPError(-32000, "Connection closed"), True, None),
        (MCPError(-32001, "timed out"), True, None),
        (MCPError(-32603, "internal"), True, None),
        (MCPError(-32602, "bad params"), False, None),
        (MCPError(-32601, "no such method"), False, None),
        (FileNotFoundError(2, "No such file"), False, None),
        (ExceptionGroup("g", [ExceptionGroup("h", [httpx2.ConnectError("refused")])]), True, None),
        (RuntimeError("Invalid structured content returned by tool t: x"), False, "output"),
    ],
)
def test_mcp_failures_carry_retry_intent(
    exc: BaseException, retryable: bool, field: str | None
) -> None:
    error = as_tool_error(exc, SERVER)
    assert (error.retryable, error.field) == (retryable, field)
    assert "'srv'" in error.message


def test_llm_request_and_answer() -> None:
    args = {"instruction": "Summarise", "input": {"n": 1}, "system": "Be brief.", "max_tokens": 9}
    body = llm.request_body(args, "m-1")
    assert body["model"] == "m-1" and body["max_tokens"] == 9
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == 'Summarise\n\nInput:\n{\n "n": 1\n}'
    answer = {"choices": [{"message": {"content": "ok"}}], "usage": {"total_tokens": 3}}
    assert llm.parse_answer(answer) == {"text": "ok", "usage": {"total_tokens": 3}}
    with pytest.raises(ToolError, match="choices"):
        llm.parse_answer({"choices": []})


def test_secrets_name_the_variable_never_a_value() -> None:
    assert secrets.resolve("TOKEN", {"ORDINAUT_SECRET_TOKEN": "v"}) == "v"
    with pytest.raises(ToolError) as caught:
        secrets.resolve("TOKEN", {"ORDINAUT_SECRET_OTHER": "v"})
    assert "ORDINAUT_SECRET_TOKEN" in caught.value.message and not caught.value.retryable
    auth = Auth("Authorization", "TOKEN", "Bearer ")
    assert auth_headers(auth, {"ORDINAUT_SECRET_TOKEN": "v"}) == {"Authorization": "Bearer v"}
    with pytest.raises(ToolError) as caught:
        auth_headers(auth, {"ORDINAUT_SECRET_TOKEN": "top\nsecret"})
    assert "secret" in caught.value.message and "top" not in caught.value.message


def test_demo_tools_are_deterministic_and_senders_dedupe() -> None:
    day = {"start": "2025-08-08T10:30:00+03:00", "end": "2025-08-08T15:00:00+03:00"}
    titles = [e["title"] for e in list_events(DemoState(), day, None)["items"]]
    assert titles == ["Design review: scheduling engine", "1:1 with Ana"]
    with pytest.raises(DemoError):
        list_events(DemoState(), {"start": day["end"], "end": day["start"]}, None)
    state = DemoState()
    first = send_message(state, {"chat_id": 1, "text": "a"}, "k1")
    assert send_message(state, {"chat_id": 1, "text": "a"}, "k1") == first
    assert send_message(state, {"chat_id": 1, "text": "b"}, "k2")["message_id"] == 2
    assert [s["text"] for s in state.sent] == ["a", "b"]


def _demo_specs() -> dict[str, ToolSpec]:
    entries = demo_catalog.http_tools("http://127.0.0.1:8765") + demo_catalog.mcp_tools()
    return {
        e["address"]: ToolSpec(
            e["address"], Transport(e["transport"]), e["input_schema"], e["output_schema"]
        )
        for e in entries
    }


@pytest.mark.parametrize("example", ["morning-briefing.json", "follow-up-manager.json"])
def test_examples_are_valid_against_the_demo_tools(example: str) -> None:
    body = json.loads((EXAMPLES / example).read_text())
    validate_payload(body["payload"], {**builtin_tools(), **_demo_specs()})


def test_examples_demo_tools_file_matches_the_demo_server() -> None:
    shipped = json.loads((EXAMPLES / "demo-tools.json").read_text())
    assert shipped == demo_catalog.http_tools("http://127.0.0.1:8765")
