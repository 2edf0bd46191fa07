"""The tool catalog in Postgres: the ``tool`` and ``mcp_server`` tables, read and written.

Rows become frozen values here (:class:`~ordinaut.tools.spec.ToolSpec` with its
:class:`~ordinaut.tools.spec.McpServer` and :class:`~ordinaut.tools.spec.Auth`) and back.
Checking what may be registered is the service's job (:mod:`ordinaut.service.tools`); these
functions trust their input and run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection, Row

from ordinaut.store import queries
from ordinaut.tools.spec import Auth, McpServer, ToolSpec, Transport


def auth_from_json(value: Any) -> Auth | None:
    """The Auth stored as ``{"header", "secret", "prefix"?}`` (None stays None)."""
    if not value:
        return None
    return Auth(header=value["header"], secret=value["secret"], prefix=value.get("prefix", ""))


def auth_to_json(auth: Auth | None) -> dict[str, str] | None:
    """The stored form of ``auth``: names only, never a secret value."""
    if auth is None:
        return None
    out = {"header": auth.header, "secret": auth.secret}
    if auth.prefix:
        out["prefix"] = auth.prefix
    return out


def server_from_row(row: Row[Any]) -> McpServer:
    """An McpServer from an ``mcp_server`` row."""
    return McpServer(
        name=row.name,
        url=row.url,
        command=row.command,
        args=tuple(row.args or ()),
        env=dict(row.env or {}),
        auth=auth_from_json(row.auth),
    )


def spec_from_row(row: Row[Any], servers: Mapping[str, McpServer]) -> ToolSpec:
    """A ToolSpec from a ``tool`` row; ``servers`` resolves its MCP server by name."""
    return ToolSpec(
        address=row.address,
        transport=Transport(row.transport),
        input_schema=row.input_schema,
        output_schema=row.output_schema,
        timeout_seconds=float(row.timeout_seconds),
        scopes=tuple(row.scopes or ()),
        endpoint=row.endpoint,
        server=row.server,
        description=row.description,
        remote_name=row.remote_name,
        mcp=servers.get(row.server) if row.server else None,
        auth=auth_from_json(row.auth),
        cost_hints=row.cost_hints,
        requires_approval=bool(row.requires_approval),
        worker_pool=row.worker_pool,
    )


def tool_values(spec: ToolSpec) -> dict[str, Any]:
    """The ``tool`` row for ``spec`` (without timestamps and creator)."""
    return {
        "address": spec.address,
        "transport": spec.transport.value,
        "endpoint": spec.endpoint,
        "server": spec.server,
        "remote_name": spec.remote_name,
        "input_schema": dict(spec.input_schema),
        "output_schema": dict(spec.output_schema),
        "timeout_seconds": spec.timeout_seconds,
        "scopes": list(spec.scopes),
        "description": spec.description,
        "cost_hints": dict(spec.cost_hints) if spec.cost_hints is not None else None,
        "auth": auth_to_json(spec.auth),
        "requires_approval": spec.requires_approval,
        "worker_pool": spec.worker_pool,
    }


def list_servers(conn: Connection) -> dict[str, McpServer]:
    """Every configured MCP server, by name."""
    return {row.name: server_from_row(row) for row in queries.list_mcp_servers(conn)}


def get_server(conn: Connection, name: str) -> McpServer | None:
    """One MCP server, or None."""
    row = queries.get_mcp_server(conn, name)
    return server_from_row(row) if row is not None else None


def save_server(conn: Connection, server: McpServer) -> bool:
    """Insert or replace an MCP server; True when it is new."""
    values = {
        "name": server.name,
        "url": server.url,
        "command": server.command,
        "args": list(server.args),
        "env": dict(server.env),
        "auth": auth_to_json(server.auth),
    }
    return queries.upsert_mcp_server(conn, values)


def load_catalog(conn: Connection) -> dict[str, ToolSpec]:
    """Every registered tool, by address, with its MCP server resolved."""
    servers = list_servers(conn)
    return {row.address: spec_from_row(row, servers) for row in queries.list_tools(conn)}


def get_tool(conn: Connection, address: str) -> ToolSpec | None:
    """One registered tool, or None."""
    row = queries.get_tool(conn, address)
    if row is None:
        return None
    servers = {row.server: s} if row.server and (s := get_server(conn, row.server)) else {}
    return spec_from_row(row, servers)


def save_tool(conn: Connection, spec: ToolSpec, *, created_by: Any = None) -> bool:
    """Insert or replace a tool; True when it is new."""
    return queries.upsert_tool(conn, tool_values(spec), created_by=created_by)


def delete_tool(conn: Connection, address: str) -> bool:
    """Remove a tool; False when there was none."""
    return queries.delete_tool(conn, address)
