"""The MCP server on stdin/stdout, acting as one agent (``ordinaut mcp``, desktop MCP clients).

:func:`serve` checks the token first (an unknown or revoked one is an ``AuthError`` before
any protocol traffic), then serves until stdin closes. The token is looked up again on every
call, so revoking the agent stops the session's next call. stdout carries only protocol
messages; logs go to stderr.
"""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from ordinaut.mcp import auth
from ordinaut.mcp.server import build_server
from ordinaut.service.facade import Service


async def serve(service: Service, token: str) -> None:
    """Serve MCP over this process's stdin/stdout as the agent owning ``token``."""
    identify = auth.from_token(service, token)
    await identify()
    server = build_server(service, identify)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
