"""The demo tools as an MCP server (low-level SDK server, so schemas are exactly the table's).

``tools/list`` lists every :data:`~ordinaut.demo.tools.DEMO_TOOLS` entry by its bare name
(``list_events``) with its input and output schema. ``tools/call`` checks the arguments
against the input schema and answers with ``structuredContent`` plus the same JSON as text;
bad arguments or a :class:`~ordinaut.demo.tools.DemoError` give ``isError: true``. The
caller's idempotency key is read from ``_meta["ordinaut/idempotency_key"]``.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext

from ordinaut import __version__
from ordinaut.demo.tools import DEMO_TOOLS, DemoError, DemoState
from ordinaut.tools.spec import first_violation

IDEMPOTENCY_META_KEY = "ordinaut/idempotency_key"
_BY_NAME = {tool.name: tool for tool in DEMO_TOOLS}


def build_server(state: DemoState) -> Server[Any]:
    """A fresh low-level MCP server over ``state`` (one per app or stdio process)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=dict(tool.input_schema),
                    output_schema=dict(tool.output_schema),
                )
                for tool in DEMO_TOOLS
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = _BY_NAME.get(params.name)
        if tool is None:
            return _error(f"unknown tool {params.name!r}")
        args = params.arguments or {}
        violation = first_violation(args, tool.input_schema)
        if violation is not None:
            return _error(f"invalid arguments: {violation}")
        meta: Any = ctx.meta or {}
        key = meta.get(IDEMPOTENCY_META_KEY)
        try:
            output = tool.fn(state, args, key if isinstance(key, str) else None)
        except DemoError as exc:
            return _error(str(exc))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(output))],
            structured_content=output,
        )

    return Server(
        "ordinaut-demo",
        version=__version__,
        instructions="Deterministic calendar, weather, inbox and notify tools for the tour.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


async def serve_stdio(state: DemoState) -> None:
    """Serve the demo tools over stdin/stdout until stdin closes."""
    from mcp.server.stdio import stdio_server

    server = build_server(state)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
