"""The tool catalog through the API (GET/POST/DELETE /tools) and the admin CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ordinaut.cli import main
from tests.integration.conftest import Api
from tests.integration.test_mcp_http import mcp_session, new_agent, ok

SEND = {
    "address": "telegram-mcp.send_message",
    "transport": "http",
    "endpoint": "http://127.0.0.1:9/tools/send_message",
    "input_schema": {
        "type": "object",
        "required": ["chat_id", "text"],
        "properties": {"chat_id": {"type": "integer", "minimum": 1}, "text": {"type": "string"}},
    },
    "output_schema": {"type": "object", "required": ["ok"]},
    "timeout_seconds": 15,
    "scopes": ["notify"],
    "auth": {"header": "Authorization", "secret": "TELEGRAM_TOKEN", "prefix": "Bearer "},
}


def with_(**changes: Any) -> dict[str, Any]:
    return {**SEND, **changes}


def test_list_shows_builtins_to_any_reader(api: Api) -> None:
    reader = api.agent("reader", ["tasks:read"])
    listed = reader.get("/tools")
    assert listed.status_code == 200
    by_address = {t["address"]: t for t in listed.json()}
    for address in ("builtin.echo", "builtin.sleep", "pipeline.foreach", "llm.chat", "llm.plan"):
        assert by_address[address]["transport"] == "builtin"
    assert by_address["llm.rewrite"]["input_schema"]["required"] == ["instruction"]
    assert reader.post("/tools", json=SEND).status_code == 403


def test_endpoints_and_auth_are_shown_to_tools_admin_only(api: Api) -> None:
    """A tasks:read agent sees what a tool does, never where it lives or how it signs in."""
    secret_url = "http://10.0.0.9:8443/hook?token=abc123"
    assert api.admin.post("/tools", json=with_(endpoint=secret_url)).status_code == 201
    reader = new_agent(api, "reader", ["tasks:read"])
    keeper = new_agent(api, "keeper", ["tasks:read", "tools:admin"])

    def over_http(token: str) -> dict[str, Any]:
        listed = api.make_client(token).get("/tools").json()
        return next(t for t in listed if t["address"] == SEND["address"])

    def over_mcp(token: str) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            async with mcp_session(api.base_url, token) as session:
                return ok(await session.call_tool("list_tools", {}))

        listed = anyio.run(main)["tools"]
        found: dict[str, Any] = next(t for t in listed if t["address"] == SEND["address"])
        return found

    for seen in (over_http(reader["token"]), over_mcp(reader["token"])):
        assert seen["input_schema"] == SEND["input_schema"]  # what it does: yes
        assert seen["scopes"] == ["notify"]
        assert seen.get("endpoint") is None and seen.get("auth") is None
        assert "abc123" not in json.dumps(seen) and "10.0.0.9" not in json.dumps(seen)
        assert "TELEGRAM_TOKEN" not in json.dumps(seen)
    for seen in (over_http(keeper["token"]), over_mcp(keeper["token"])):
        assert seen["endpoint"] == secret_url
        assert seen["auth"] == SEND["auth"]


BAD_TOOLS = [
    (with_(input_schema={"type": "objekt"}), 422, "input_schema.type"),
    (with_(output_schema={"properties": {"ts": {"format": 3}}}), 422, "output_schema"),
    (with_(address="no-dot"), 422, "address"),
    (with_(address="llm.mine"), 422, "address"),
    (with_(address="builtin.echo"), 409, "address"),
    (with_(endpoint=None), 422, "endpoint"),
    (with_(endpoint="ftp://host/x"), 422, "endpoint"),
    (with_(auth={"header": "Authorization", "secret": "lower-case"}), 422, "auth.secret"),
    (with_(auth={"header": "Bad Header", "secret": "T"}), 422, "auth.header"),
    (with_(transport="mcp", endpoint=None, auth=None, server="nowhere"), 422, "server"),
    (with_(scopes=["Not A Scope"]), 422, "scopes[0]"),
    (with_(timeout_seconds=0), 422, "timeout_seconds"),
]


def test_register_refuses_bad_tools_naming_the_field(api: Api) -> None:
    for body, status, field in BAD_TOOLS:
        refused = api.admin.post("/tools", json=body)
        assert refused.status_code == status, (field, refused.text)
        assert refused.json()["error"]["field"].startswith(field), refused.json()
    assert {t["transport"] for t in api.admin.get("/tools").json()} == {"builtin"}


def test_register_replace_delete_and_use_in_task_validation(api: Api) -> None:
    made = api.admin.post("/tools", json=SEND)
    assert made.status_code == 201, made.text
    assert made.json()["auth"]["secret"] == "TELEGRAM_TOKEN"
    again = api.admin.post("/tools", json=SEND)
    assert again.status_code == 409
    replaced = api.admin.post("/tools?replace=true", json=with_(timeout_seconds=5))
    assert replaced.status_code == 201 and replaced.json()["timeout_seconds"] == 5

    task = {
        "title": "uses the catalog",
        "schedule_kind": "cron",
        "schedule_expr": "0 8 * * *",
        "payload": {
            "pipeline": [
                {"id": "ping", "uses": SEND["address"], "with": {"chat_id": 0, "text": "hi"}}
            ]
        },
    }
    refused = api.admin.post("/tasks", json=task)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "payload.pipeline[0].with.chat_id"

    assert api.admin.delete("/tools/builtin.echo").status_code == 409
    writer = api.agent("writer", ["tasks:read", "tasks:write"])
    assert writer.delete(f"/tools/{SEND['address']}").status_code == 403
    assert api.admin.delete(f"/tools/{SEND['address']}").status_code == 204
    assert api.admin.delete(f"/tools/{SEND['address']}").status_code == 404
    assert SEND["address"] not in {t["address"] for t in api.admin.get("/tools").json()}


def test_cli_add_list_remove(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", api.settings.database_url)
    path = tmp_path / "tools.json"
    second = with_(address="gcal.list_events", auth=None, scopes=["calendar.read"])
    path.write_text(json.dumps([SEND, second]))
    assert main(["tool", "add", "-f", str(path)]) == 0
    assert main(["tool", "list"]) == 0
    out = capsys.readouterr().out
    assert "registered telegram-mcp.send_message (http)" in out
    assert "gcal.list_events" in out and "builtin.echo" in out
    assert {"gcal.list_events", SEND["address"]} <= {
        t["address"] for t in api.admin.get("/tools").json()
    }

    path.write_text(json.dumps(with_(address="other.tool", input_schema={"type": 7})))
    assert main(["tool", "add", "-f", str(path)]) == 2
    assert "input_schema.type" in capsys.readouterr().err
    assert main(["tool", "add", "-f", str(path.with_name("missing.json"))]) == 2

    assert main(["tool", "remove", "gcal.list_events"]) == 0
    assert main(["tool", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "gcal.list_events" not in {t["address"] for t in listed}
