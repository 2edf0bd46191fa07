"""Every Ordinaut operation as an MCP tool, in one tuple (the server lists them in this order).

The names are ``Service.OPERATIONS``; ``tests/integration/test_operations_parity.py`` checks
that this set, the HTTP API's ``operation_id`` set and ``OPERATIONS`` stay the same.
"""

from __future__ import annotations

from ordinaut.mcp.agenda_tool import AGENDA_TOOL
from ordinaut.mcp.change_tools import CHANGE_TOOLS
from ordinaut.mcp.misc_tools import MISC_TOOLS
from ordinaut.mcp.policy_tools import POLICY_TOOLS
from ordinaut.mcp.run_tools import RUN_TOOLS
from ordinaut.mcp.task_tools import TASK_TOOLS
from ordinaut.mcp.tool import McpTool

TOOLS: tuple[McpTool, ...] = (
    *TASK_TOOLS,
    *RUN_TOOLS,
    *CHANGE_TOOLS,
    *MISC_TOOLS,
    *POLICY_TOOLS,
    AGENDA_TOOL,
)
BY_NAME: dict[str, McpTool] = {tool.name: tool for tool in TOOLS}
