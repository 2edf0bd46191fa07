"""``python -m ordinaut.demo``: the demo tools as an MCP server over stdin/stdout."""

import anyio

from ordinaut.demo.mcp_server import serve_stdio
from ordinaut.demo.tools import DemoState

if __name__ == "__main__":
    anyio.run(serve_stdio, DemoState())
