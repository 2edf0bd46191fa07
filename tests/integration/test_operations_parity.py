"""The HTTP API and the MCP server expose the same operations with the same arguments, and
the CLI decides approvals like both.

Both are adapters over ``Service``; ``Service.OPERATIONS`` names what agents use. This reads
the operations from a running API itself (``operationId`` in ``/openapi.json``) and from its
``/mcp`` endpoint (``tools/list``, with the real MCP client), so adding an operation, a route
or a tool on one side only, or an argument on one side only, fails here; so does a tool
catalog that the two sides read differently.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy.engine import Engine

from ordinaut.cli import main as cli_main
from ordinaut.clock import utcnow
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import execute as executing
from ordinaut.service.facade import OPERATIONS, Service
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import task_body
from tests.integration.test_dispatch import NS, add_due
from tests.integration.test_mcp_http import admin_token, mcp_session

# arguments the MCP side leaves out on purpose: the API ignores created_by (the token decides)
MCP_OMITS = {"create_task": {"created_by"}}


def _properties(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """Property names of a request-body schema, through $ref and anyOf/allOf/oneOf."""
    if "$ref" in schema:
        return _properties(components[schema["$ref"].rsplit("/", 1)[1]], components)
    names = set(schema.get("properties", {}))
    for key in ("anyOf", "allOf", "oneOf"):
        for part in schema.get(key, []):
            names |= _properties(part, components)
    return names


def api_arguments(spec: dict[str, Any]) -> dict[str, set[str]]:
    """operationId → the names of its path and query parameters and body fields."""
    components = spec.get("components", {}).get("schemas", {})
    found: dict[str, set[str]] = {}
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            names = {p["name"] for p in op.get("parameters", []) if p["in"] in ("path", "query")}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            names |= _properties(body.get("schema", {}), components)
            found[op["operationId"]] = names
    return found


def test_api_and_mcp_expose_every_operation_with_the_same_arguments(api: Api) -> None:
    assert all(callable(getattr(Service, name, None)) for name in OPERATIONS)
    spec = httpx.get(f"{api.base_url}/openapi.json").json()
    api_ops = api_arguments(spec)

    async def listed() -> tuple[dict[str, set[str]], list[str]]:
        async with mcp_session(api.base_url, admin_token(api)) as session:
            tools = (await session.list_tools()).tools
            catalog = (await session.call_tool("list_tools", {})).structured_content or {}
        ops = {t.name: set(t.input_schema.get("properties", {})) for t in tools}
        return ops, sorted(t["address"] for t in catalog["tools"])

    mcp_ops, mcp_catalog = anyio.run(listed)

    assert sorted(mcp_ops) == sorted(OPERATIONS), "MCP tools ≠ Service.OPERATIONS"
    missing = sorted(set(OPERATIONS) - set(api_ops))
    assert not missing, f"no HTTP route has operation_id {missing}"
    for name in OPERATIONS:
        assert mcp_ops[name] | MCP_OMITS.get(name, set()) == api_ops[name], name

    # and the one read both sides answer from the same catalog
    api_catalog = sorted(t["address"] for t in api.admin.get("/tools").json())
    assert "builtin.echo" in api_catalog
    assert mcp_catalog == api_catalog


# --- approvals: the same list and the same decisions over API, MCP and the CLI --------------


def gated_runs(api: Api, engine: Engine, n: int) -> list[str]:
    """``n`` runs of a task created through the API, each stopped before its gated step."""
    payload = {
        "params": {"to": "team"},
        "pipeline": [
            {"id": "draft", "uses": "builtin.echo", "with": {"text": "hi"}, "save_as": "d"},
            {
                "id": "send",
                "uses": "builtin.echo",
                "with": {"to": "${params.to}", "text": "${steps.d.text}"},
                "approval": "required",
            },
        ],
    }
    made = api.admin.post("/tasks", json=task_body(payload=payload))
    assert made.status_code == 201, made.text
    task_id = uuid.UUID(made.json()["id"])
    start = datetime.now(UTC) - timedelta(hours=1)
    with engine.begin() as conn:
        for i in range(n):
            add_due(conn, task_id, start + timedelta(minutes=i))
    queued = dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 100).queued
    ids = []
    for q in queued:  # one after another: oldest first is the order they stopped in
        outcome = executing.execute_run(
            engine, api.settings, q.id, "parity:1", sleep=time.sleep, clock=utcnow
        )
        assert outcome.status == "waiting_approval"
        ids.append(str(q.id))
    return ids


def test_approvals_list_approve_and_reject_alike_over_api_mcp_and_cli(
    api: Api, engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = gated_runs(api, engine, 6)
    monkeypatch.setenv("ORDINAUT_URL", api.base_url)
    monkeypatch.setenv("ORDINAUT_TOKEN", admin_token(api))

    def cli(*argv: str) -> Any:
        assert cli_main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    async def mcp(name: str, args: dict[str, Any]) -> Any:
        async with mcp_session(api.base_url, admin_token(api)) as session:
            result = await session.call_tool(name, args)
            assert not result.is_error, result.content
            return result.structured_content

    def shown(items: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
        return [(a["run_id"], a["step"], a["input"]) for a in items]

    over_api = api.admin.get("/approvals").json()["items"]
    over_mcp = anyio.run(mcp, "list_approvals", {})["items"]
    over_cli = cli("approvals")
    expected = [(i, "send", {"to": "team", "text": "hi"}) for i in ids]
    assert shown(over_api) == shown(over_mcp) == shown(over_cli) == expected
    assert over_api == over_mcp == over_cli  # the same fields, the same values

    approved = [
        api.admin.post(f"/runs/{ids[0]}/approve", json={"comment": "by api"}).json(),
        anyio.run(mcp, "approve_run", {"run_id": ids[1], "comment": "by mcp"}),
        cli("approve", ids[2], "--comment", "by cli"),
    ]
    rejected = [
        api.admin.post(f"/runs/{ids[3]}/reject", json={"comment": "by api"}).json(),
        anyio.run(mcp, "reject_run", {"run_id": ids[4], "comment": "by mcp"}),
        cli("reject", ids[5], "--comment", "by cli"),
    ]
    for run in approved:
        assert (run["status"], run["resume_action"], run["suspended_step"]) == (
            "waiting_approval",
            "approve",
            "send",
        )
    for run, how in zip(rejected, ("api", "mcp", "cli"), strict=True):
        assert run["status"] == "canceled"
        assert run["reason"] == f"rejected by admin: by {how}"
    assert api.admin.get("/approvals").json()["items"] == []  # nothing left to decide
    for run_id, how in zip(ids, ["api", "mcp", "cli"] * 2, strict=True):
        (entry,) = [
            e
            for e in api.admin.get("/audit", params={"subject_id": run_id}).json()
            if e["action"] in ("run.approve", "run.reject")
        ]
        assert entry["details"]["comment"] == f"by {how}"
        assert entry["details"]["decided_by"] == "admin" and entry["details"]["step"] == "send"
