"""Ordinaut as an MCP server: every ``Service`` operation as a tool, over streamable HTTP and stdio.

Modules, in the order a request meets them:

* ``http`` — ``/mcp`` in the API process (``attach`` + the lifespan hook);
  ``stdio`` — ``ordinaut mcp``: one agent's server on stdin/stdout.
* ``auth`` — who a request acts as: bearer token → agent; scopes are checked by the service.
* ``server`` — ``build_server()``: the SDK server, the ``tools/call`` contract, error mapping.
* ``toolset`` — every tool (names = ``Service.OPERATIONS``), from ``task_tools``,
  ``run_tools`` and ``misc_tools``: one ``McpTool`` each (``tool``), with text for a language
  model, argument and result models (``schemas``) and a one-line adapter to the service.
* ``resources`` — ``ordinaut://tasks/{id}`` and ``ordinaut://runs/{id}``;
  ``prompts`` — the ``schedule_task`` prompt.
"""
