"""Tools: what a tool is, where tools are registered, and how each transport calls one.

``spec`` (contracts), ``builtin`` and ``llm`` (tools in code), ``catalog`` (the Postgres
catalog), ``registry`` (``load_tools`` and ``ToolRunner``, the only place tool I/O happens),
``http``, ``mcp_client`` and ``mcp_pool`` (transports), ``secrets`` (named credentials).
"""
