"""Catalog entries for the demo tools, for ``ordinaut demo-tools --register`` and examples/.

Over HTTP each tool keeps its demo address (``calendar.list_events`` →
``POST {base}/tools/calendar/list_events``); over MCP the server is named ``demo`` and its
tools become ``demo.<name>`` (``demo.today_forecast``), as ``ordinaut tool import-mcp demo``
would register them.
"""

from __future__ import annotations

from typing import Any

from ordinaut.demo.tools import DEMO_TOOLS

MCP_SERVER = "demo"


def http_tools(base_url: str) -> list[dict[str, Any]]:
    """``POST /tools`` bodies for every demo tool over HTTP."""
    base = base_url.rstrip("/")
    return [
        {
            "address": tool.address,
            "transport": "http",
            "endpoint": f"{base}/tools/{tool.toolset}/{tool.name}",
            "input_schema": dict(tool.input_schema),
            "output_schema": dict(tool.output_schema),
            "timeout_seconds": 15,
            "scopes": [tool.toolset],
            "description": tool.description,
        }
        for tool in DEMO_TOOLS
    ]


def mcp_server(base_url: str) -> dict[str, Any]:
    """The MCP server configuration of the demo (streamable HTTP at ``/mcp``)."""
    return {"name": MCP_SERVER, "url": base_url.rstrip("/") + "/mcp"}


def mcp_tools() -> list[dict[str, Any]]:
    """``POST /tools`` bodies for every demo tool through the ``demo`` MCP server."""
    return [
        {
            "address": f"{MCP_SERVER}.{tool.name}",
            "transport": "mcp",
            "server": MCP_SERVER,
            "remote_name": tool.name,
            "input_schema": dict(tool.input_schema),
            "output_schema": dict(tool.output_schema),
            "timeout_seconds": 15,
            "scopes": [tool.toolset],
            "description": tool.description,
        }
        for tool in DEMO_TOOLS
    ]
