"""The Ordinaut MCP server: every ``Service`` operation as a tool, plus resources and a prompt.

:func:`build_server` returns a fresh low-level SDK ``Server`` (one per HTTP app or stdio
process; the SDK lets a server's HTTP session manager run once). It is transport-free: the
caller's identity comes from an :data:`~ordinaut.mcp.auth.Identify`.

Contract of ``tools/call``:

* The caller is identified first, then the arguments pass the API's input boundary
  (:mod:`ordinaut.service.inputs`: no NUL or lone surrogate in any string or key, finite
  numbers, bounded nesting) and are validated against the tool's argument model (the same
  pydantic models as the HTTP API's bodies); a failure is a tool error listing each bad
  field: ``field: reason``.
* The call counts against the agent's rate limit, as an API request does, then runs in a
  worker thread (the service is synchronous). The result is ``structuredContent`` matching
  the tool's output schema, plus the same JSON as text. For create_task, run_now and
  publish_event, ``_meta["ordinaut/idempotency_key"]`` is the API's ``Idempotency-Key``.
* Every ``OrdinautError`` (validation, not found, forbidden, conflict, unauthorized) becomes
  ``isError: true`` whose text is the API's message, prefixed by the field when there is one
  (``schedule_expr: ...``); ``_meta["ordinaut/error"]`` carries ``code``, ``message``,
  ``field`` and, when rate limited or unavailable, ``retry_after`` (seconds). Anything else
  is logged with its traceback and a request id, and reported as ``internal_error`` carrying
  that ``request_id`` (the API's ``X-Request-ID`` when the call came over HTTP). A tool call
  never becomes a JSON-RPC error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import mcp.types as types
import pydantic
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from ordinaut import __version__
from ordinaut.errors import OrdinautError, error_detail
from ordinaut.mcp import prompts, resources
from ordinaut.mcp.auth import Identify
from ordinaut.mcp.tool import McpTool
from ordinaut.mcp.toolset import BY_NAME, TOOLS
from ordinaut.service import context, inputs
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.tools.spec import format_path

log = logging.getLogger("ordinaut.mcp")
ERROR_META_KEY = "ordinaut/error"
IDEMPOTENCY_META_KEY = "ordinaut/idempotency_key"  # as Ordinaut's own MCP client sends it

INSTRUCTIONS = """Ordinaut runs your scheduled work exactly on time: tasks are a schedule
(RRULE, cron, once, or an event topic) plus a pipeline of tool calls, run by Ordinaut's
workers as you, with a receipt for every run. Typical flow: preview_schedule to confirm the
times with the user, list_tools to find step tools, create_task, then run_now / list_runs /
get_run to check it. Times are stored in UTC; each task has an IANA time zone. The pipeline
language (a task's payload) is the JSON Schema at the resource ordinaut://schemas/pipeline."""


def build_server(service: Service, identify: Identify) -> Server[Any]:
    """A new MCP server over ``service``, acting as whoever ``identify`` returns."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.listing() for tool in TOOLS])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await run_tool(service, identify, params.name, params.arguments or {}, params.meta)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        principal = await _agent(identify)
        found = await anyio.to_thread.run_sync(resources.listed, service, principal)
        return types.ListResourcesResult(resources=found)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=resources.TEMPLATES)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        principal = await _agent(identify)
        return await anyio.to_thread.run_sync(resources.read, service, principal, params.uri)

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[prompts.PROMPT])

    async def get_prompt(
        ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return prompts.render(params.name, params.arguments)

    return Server(
        "ordinaut",
        version=__version__,
        title="Ordinaut",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: BY_NAME[name].input_schema if name in BY_NAME else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


async def run_tool(
    service: Service,
    identify: Identify,
    name: str,
    arguments: dict[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> types.CallToolResult:
    """One ``tools/call``: identify, validate, call the service, shape the result or error."""
    tool = BY_NAME.get(name)
    if tool is None:
        return _error(f"unknown tool {name!r}; tools/list shows the tools", code="not_found")
    key = (meta or {}).get(IDEMPOTENCY_META_KEY)
    request_id = context.current_request_id()
    try:
        principal = await identify()
        inputs.check_json(arguments)
        if isinstance(key, str):
            inputs.check_text(key, IDEMPOTENCY_META_KEY)
        try:
            args = tool.args.model_validate(arguments)
        except pydantic.ValidationError as exc:
            reasons, field = _reasons(exc)
            text = f"invalid arguments for {name}: {reasons}"
            return _error(text, code="validation_error", field=field)
        data = await anyio.to_thread.run_sync(
            _serve, service, tool, principal, args, key if isinstance(key, str) else None
        )
    except OrdinautError as exc:
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        retry_after = getattr(exc, "retry_after", None)
        return _error(
            text, code=exc.code, message=exc.message, field=exc.field, retry_after=retry_after
        )
    except Exception:
        log.exception("MCP tool %s failed (request %s)", name, request_id, extra={"tool": name})
        return _error(
            f"{name} failed with an unexpected error; it is logged with request id {request_id}",
            code="internal_error",
            request_id=request_id,
        )
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=data
    )


def _serve(
    service: Service, tool: McpTool, principal: Principal, args: BaseModel, key: str | None
) -> dict[str, Any]:
    service.check_rate(principal)  # the API's per-agent limit counts MCP calls too
    return tool.run(service, principal, args, key)


async def _agent(identify: Identify) -> Principal:
    """The caller, or a JSON-RPC error for requests that are not tool calls."""
    try:
        return await identify()
    except OrdinautError as exc:
        raise MCPError(types.INVALID_REQUEST, exc.message) from None


def _reasons(exc: pydantic.ValidationError) -> tuple[str, str | None]:
    """Every failure as ``field: reason`` (paths as ``a.b[0]``), and the field if only one."""
    parts, fields = [], set()
    for err in exc.errors(include_url=False):
        where = format_path(err["loc"])
        reason = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {reason}" if where else reason)
        fields.add(where)
    only = fields.pop() if len(fields) == 1 else None
    return "; ".join(parts), only or None


def _error(
    text: str,
    *,
    code: str,
    message: str | None = None,
    field: str | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> types.CallToolResult:
    detail: dict[str, Any] = error_detail(code, message or text, field)
    if retry_after is not None:
        detail["retry_after"] = retry_after
    if request_id is not None:
        detail["request_id"] = request_id
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        is_error=True,
        _meta={ERROR_META_KEY: detail},
    )
