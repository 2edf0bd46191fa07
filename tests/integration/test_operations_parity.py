"""The HTTP API and the MCP server expose the same operations with the same arguments.

Both are adapters over ``Service``; ``Service.OPERATIONS`` names what agents use. This reads
the operations from a running API itself (``operationId`` in ``/openapi.json``) and from its
``/mcp`` endpoint (``tools/list``, with the real MCP client), so adding an operation, a route
or a tool on one side only, or an argument on one side only, fails here; so does a tool
catalog that the two sides read differently.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from ordinaut.service.facade import OPERATIONS, Service
from tests.integration.conftest import Api
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
    # event tasks are made through the same create_task on both sides, and the feed is read
    # with the same arguments
    assert {"event_filter", "event_sources"} <= mcp_ops["create_task"]
    assert mcp_ops["list_events"] == api_ops["list_events"] == {"after", "topic", "limit"}

    # and the one read both sides answer from the same catalog
    api_catalog = sorted(t["address"] for t in api.admin.get("/tools").json())
    assert "builtin.echo" in api_catalog
    assert mcp_catalog == api_catalog
