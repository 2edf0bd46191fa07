"""The ``mcp`` transport: a real MCP client (the ``mcp`` SDK) over streamable HTTP or stdio.

A session starts with the ``initialize`` handshake (``mode="legacy"``: every MCP server
speaks it), then ``tools/call`` carries the step's arguments and, in
``_meta["ordinaut/idempotency_key"]``, its idempotency key. :func:`output_of` turns the
result into the step's output:

* ``structuredContent`` when present; else the text content parsed as JSON; else
  ``{"text": <text>}``;
* ``isError: true`` → ``ToolError`` with the server's text, non-retryable unless the text
  clearly says the failure is transient (timeout, rate limit, unavailable, try again).

:func:`as_tool_error` classifies everything else: timeouts, lost connections and JSON-RPC
``-32000``/``-32001``/``-32603`` are retryable; a missing stdio command, invalid requests or
params, and results that violate the server's own output schema are not.

The worker is synchronous, so calls go through :mod:`ordinaut.tools.mcp_pool` (sessions kept
open on one background event loop per process). :func:`list_tools` and :func:`call_once`
open a session for one operation with ``anyio.run``; measured on loopback a fresh session
costs ~47 ms over HTTP and ~0.8 s over stdio (a Python server process starting).
"""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, cast

import anyio
import httpx2
import pydantic
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, RequestParamsMeta, TextContent

from ordinaut.egress import EgressPolicy
from ordinaut.errors import ToolError
from ordinaut.tools import guarded, secrets
from ordinaut.tools.http import auth_headers
from ordinaut.tools.spec import McpServer

IDEMPOTENCY_META_KEY = "ordinaut/idempotency_key"
RETRYABLE_CODES = frozenset({-32000, -32001, -32603})  # connection closed, timeout, internal
_TRANSIENT = re.compile(
    r"tim(e|ed) ?out|temporar|try again|rate.?limit|unavailable|too many requests", re.I
)


@dataclass(frozen=True)
class RemoteTool:
    """A tool as an MCP server lists it; ``output_schema`` None when it declares none."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None


def stdio_env(server: McpServer, environ: Any) -> dict[str, str]:
    """The stdio server's extra environment, ``{"secret": NAME}`` values resolved."""
    env: dict[str, str] = {}
    for name, value in server.env.items():
        if isinstance(value, dict):
            env[name] = secrets.resolve(str(value.get("secret")), environ, field=f"env.{name}")
        else:
            env[name] = str(value)
    return env


async def open_client(
    stack: AsyncExitStack, server: McpServer, environ: Any, policy: EgressPolicy | None
) -> Client:
    """Connect to ``server`` and run the handshake; closed when ``stack`` closes.

    A ``url`` server is reached only where ``policy`` allows (None: unguarded, for the
    administrator's own ``ordinaut tool import``).
    """
    if server.url is not None:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=auth_headers(server.auth, environ),
                timeout=httpx2.Timeout(30.0, read=300.0),
                transport=guarded.async_transport(policy) if policy is not None else None,
            )
        )
        target: Any = streamable_http_client(server.url, http_client=http)
    elif server.command is not None:
        target = StdioServerParameters(
            command=server.command, args=list(server.args), env=stdio_env(server, environ)
        )
    else:
        raise ToolError(f"MCP server {server.name!r} has neither a url nor a command")
    client: Client = await stack.enter_async_context(Client(target, mode="legacy"))
    return client


async def call_tool(client: Client, name: str, args: dict[str, Any], key: str) -> CallToolResult:
    """One ``tools/call`` carrying the idempotency key in ``_meta``."""
    meta = cast(RequestParamsMeta, {IDEMPOTENCY_META_KEY: key})
    return await client.call_tool(name, args, meta=meta)


def output_of(result: CallToolResult) -> Any:
    """The step output of a ``tools/call`` result (``isError`` → ToolError)."""
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    if result.is_error:
        message = text.strip() or "the MCP tool reported an error"
        raise ToolError(message, retryable=bool(_TRANSIENT.search(message)))
    if result.structured_content is not None:
        return result.structured_content
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text}


def as_tool_error(exc: BaseException, server: McpServer) -> ToolError:
    """Classify a failure talking to ``server`` (exception groups are unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    where = f"MCP server {server.name!r}"
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, TimeoutError):
        return ToolError(f"{where} timed out", retryable=True)
    if isinstance(exc, MCPError):
        retryable = exc.code in RETRYABLE_CODES
        return ToolError(f"{where}: {exc.message} (code {exc.code})", retryable=retryable)
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return ToolError(f"{where}: cannot start {server.command!r}: {exc.strerror}")
    if isinstance(exc, (httpx2.TransportError, OSError, anyio.BrokenResourceError)):
        return ToolError(f"{where}: connection failed: {exc!r}", retryable=True)
    if isinstance(exc, (anyio.ClosedResourceError, anyio.EndOfStream)):
        return ToolError(f"{where}: connection closed", retryable=True)
    if isinstance(exc, RuntimeError) and "structured content" in str(exc):
        return ToolError(f"{where}: {exc}", field="output")
    if isinstance(exc, pydantic.ValidationError):
        return ToolError(f"{where} sent an invalid MCP message: {exc.errors()[0]['msg']}")
    return ToolError(f"{where}: {type(exc).__name__}: {exc}", retryable=True)


def call_once(
    server: McpServer,
    name: str,
    args: dict[str, Any],
    *,
    key: str,
    timeout: float,
    environ: Any,
    policy: EgressPolicy,
) -> Any:
    """Open a session, call one tool, close (``anyio.run``); returns the step output."""

    async def run() -> CallToolResult:
        with anyio.fail_after(timeout):
            async with AsyncExitStack() as stack:
                client = await open_client(stack, server, environ, policy)
                return await call_tool(client, name, args, key)

    try:
        result = anyio.run(run)
    except Exception as exc:
        raise as_tool_error(exc, server) from None
    return output_of(result)


def list_tools(
    server: McpServer, *, timeout: float, environ: Any, policy: EgressPolicy | None = None
) -> list[RemoteTool]:
    """Every tool ``server`` lists (all pages), with its schemas."""

    async def run() -> list[RemoteTool]:
        with anyio.fail_after(timeout):
            async with AsyncExitStack() as stack:
                client = await open_client(stack, server, environ, policy)
                found: list[RemoteTool] = []
                cursor: str | None = None
                for _ in range(100):
                    page = await client.list_tools(cursor=cursor)
                    found.extend(
                        RemoteTool(
                            t.name, t.description or "", dict(t.input_schema), t.output_schema
                        )
                        for t in page.tools
                    )
                    cursor = page.next_cursor
                    if not cursor:
                        break
                return found

    try:
        return anyio.run(run)
    except Exception as exc:
        raise as_tool_error(exc, server) from None
