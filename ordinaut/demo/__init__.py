"""A loopback demo tool server: calendar, weather, inbox and notify tools over HTTP and MCP.

``ordinaut demo-tools`` serves :mod:`ordinaut.demo.app`; ``ordinaut demo-tools --stdio`` (or
``python -m ordinaut.demo``) serves the same tools as an MCP server over stdin/stdout.
"""
