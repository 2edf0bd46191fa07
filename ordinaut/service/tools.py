"""Tool catalog operations: list, register, delete tools; configure and import MCP servers.

Every check happens here, before anything is stored; problems are ``ValidationError``s
naming the field (``address``, ``endpoint``, ``input_schema.properties.x``, ``auth.secret``).
Listing needs ``tasks:read``; changes need ``tools:admin``. ``principal=None`` is the local
administrator (the CLI, which has direct database access). Built-in tools are listed but
cannot be registered over or deleted (409). Secrets appear by name only, never by value, and
where a tool lives (its endpoint, its auth header) only to ``tools:admin``: an endpoint may
carry a token in its query, and the map of local services is nobody else's business.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ordinaut.errors import Conflict, NotFound, ValidationError
from ordinaut.service.agents import check_scopes
from ordinaut.service.auth import Principal
from ordinaut.service.inputs import check_http_url, check_json
from ordinaut.store import queries
from ordinaut.tools import catalog, secrets
from ordinaut.tools.mcp_client import RemoteTool
from ordinaut.tools.registry import RESERVED_SERVERS, builtin_tools
from ordinaut.tools.spec import Auth, McpServer, ToolSpec, Transport, check_schema
from ordinaut.vocabulary import Scope, holds

ADDRESS = re.compile(
    r"^(?P<server>[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(?P<tool>[A-Za-z0-9_.-]{1,128})$"
)
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
M = TypeVar("M", bound=BaseModel)


class AuthIn(BaseModel):
    """An auth header from a secret: ``{header}: {prefix}{value of ORDINAUT_SECRET_<secret>}``."""

    model_config = ConfigDict(extra="forbid")
    header: str = Field(examples=["Authorization"])
    secret: str = Field(examples=["TELEGRAM_TOKEN"], description="a secret name, not a value")
    prefix: str = Field(default="", max_length=64, examples=["Bearer "])


class ToolCreate(BaseModel):
    """The body of ``POST /tools`` (and of each entry of ``ordinaut tool add -f``)."""

    model_config = ConfigDict(extra="forbid")
    address: str = Field(max_length=200, examples=["telegram-mcp.send_message"])
    transport: Literal["http", "mcp"]
    endpoint: str | None = Field(default=None, max_length=2000, description="http: the URL")
    server: str | None = Field(default=None, description="mcp: a configured MCP server")
    remote_name: str | None = Field(default=None, description="mcp: the tool's name there")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    scopes: list[str] = Field(default_factory=list, max_length=32)
    description: str = Field(default="", max_length=4000)
    cost_hints: dict[str, Any] | None = None
    auth: AuthIn | None = None
    requires_approval: bool = Field(
        default=False,
        description="every call of this tool waits for a person's approval (the run stops "
        "before the step in waiting_approval)",
    )
    worker_pool: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="runs of tasks that use this tool go to the Celery queue "
        "<namespace>.runs.<worker_pool> (unless the task names its own pool)",
    )


class ToolPublic(BaseModel):
    """A tool as ``GET /tools`` shows it (secrets by name only; endpoint and auth only to
    ``tools:admin``)."""

    address: str
    transport: Literal["http", "mcp", "builtin"]
    endpoint: str | None = None
    server: str | None = None
    remote_name: str | None = None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    timeout_seconds: float
    scopes: list[str]
    description: str
    cost_hints: dict[str, Any] | None = None
    auth: AuthIn | None = None
    requires_approval: bool = False
    worker_pool: str | None = None


class McpServerCreate(BaseModel):
    """An MCP server: a streamable HTTP ``url`` or a stdio ``command`` with ``args``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    url: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    auth: AuthIn | None = None


def parse(model: type[M], raw: Any, *, field: str = "") -> M:
    """``model`` from raw JSON, or a ValidationError naming the first bad field."""
    check_json(raw, field)
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]]
        where = ".".join([field, *parts] if field else parts).replace(".[", "[") or "body"
        raise ValidationError(f"{where}: {err['msg']}", field=where) from None


def public(spec: ToolSpec) -> ToolPublic:
    """The public view of a tool."""
    auth = spec.auth
    return ToolPublic(
        address=spec.address,
        transport=spec.transport.value,
        endpoint=spec.endpoint,
        server=spec.server,
        remote_name=spec.remote_name,
        input_schema=dict(spec.input_schema),
        output_schema=dict(spec.output_schema),
        timeout_seconds=spec.timeout_seconds,
        scopes=list(spec.scopes),
        description=spec.description,
        cost_hints=dict(spec.cost_hints) if spec.cost_hints is not None else None,
        auth=AuthIn(header=auth.header, secret=auth.secret, prefix=auth.prefix) if auth else None,
        requires_approval=spec.requires_approval,
        worker_pool=spec.worker_pool,
    )


def _require(principal: Principal | None, scope: str) -> None:
    if principal is not None:
        principal.require(scope)


def _audit(conn: Connection, principal: Principal | None, action: str, **details: Any) -> None:
    actor = principal.agent_id if principal is not None else None
    queries.insert_audit(conn, actor=actor, action=action, details=details)


def list_tools(conn: Connection, principal: Principal | None) -> list[ToolPublic]:
    """Every tool (built-ins and catalog), by address; endpoints and auth for tools:admin only."""
    _require(principal, Scope.TASKS_READ)
    tools = {**catalog.load_catalog(conn), **builtin_tools()}
    listed = [public(tools[address]) for address in sorted(tools)]
    if principal is None or holds(principal.scopes, Scope.TOOLS_ADMIN):
        return listed
    return [t.model_copy(update={"endpoint": None, "auth": None}) for t in listed]


def _check_auth(auth: AuthIn | None, field: str) -> Auth | None:
    if auth is None:
        return None
    if not HEADER.match(auth.header):
        raise ValidationError("not a valid HTTP header name", field=f"{field}.header")
    if not secrets.NAME.match(auth.secret):
        raise ValidationError(
            "a secret name is 1-64 of A-Z, 0-9 and _ (starting with a letter); its value is "
            f"read from {secrets.PREFIX}<NAME>",
            field=f"{field}.secret",
        )
    if any(c in auth.prefix for c in "\r\n"):
        raise ValidationError("must be one line", field=f"{field}.prefix")
    return Auth(auth.header, auth.secret, auth.prefix)


def check_tool(conn: Connection, body: ToolCreate) -> ToolSpec:
    """The ToolSpec ``body`` describes, or the first problem as a ValidationError/Conflict."""
    match = ADDRESS.match(body.address)
    if match is None:
        raise ValidationError(
            "an address is 'server.tool': server 1-64 of A-Z a-z 0-9 _ -, tool 1-128 of those "
            "and '.'",
            field="address",
        )
    if body.address in builtin_tools():
        raise Conflict(f"{body.address!r} is a built-in tool", field="address")
    if match["server"] in RESERVED_SERVERS:
        raise ValidationError(f"the prefix {match['server']!r} is reserved", field="address")
    mcp: McpServer | None = None
    if body.transport == "http":
        if body.endpoint is None:
            raise ValidationError("an http tool needs an endpoint URL", field="endpoint")
        check_http_url(body.endpoint, "endpoint")
        for name in ("server", "remote_name"):
            if getattr(body, name) is not None:
                raise ValidationError(f"only mcp tools have a {name}", field=name)
    else:
        if body.endpoint is not None:
            raise ValidationError("an mcp tool is reached through its server", field="endpoint")
        if body.auth is not None:
            raise ValidationError("set auth on the MCP server instead", field="auth")
        if body.server is None:
            raise ValidationError("an mcp tool needs a server", field="server")
        mcp = catalog.get_server(conn, body.server)
        if mcp is None:
            raise ValidationError(
                f"no MCP server {body.server!r}: add it with `ordinaut tool add-mcp-server`",
                field="server",
            )
    check_schema(body.input_schema, field="input_schema")
    check_schema(body.output_schema, field="output_schema")
    return ToolSpec(
        address=body.address,
        transport=Transport(body.transport),
        input_schema=body.input_schema,
        output_schema=body.output_schema,
        timeout_seconds=body.timeout_seconds,
        scopes=check_scopes(body.scopes),
        endpoint=body.endpoint,
        server=body.server,
        description=body.description,
        remote_name=(body.remote_name or match["tool"]) if mcp is not None else None,
        mcp=mcp,
        auth=_check_auth(body.auth, "auth"),
        cost_hints=body.cost_hints,
        requires_approval=body.requires_approval,
        worker_pool=body.worker_pool,
    )


def register_tool(
    conn: Connection, principal: Principal | None, body: ToolCreate, *, replace: bool = False
) -> ToolPublic:
    """Check and store a tool; an existing address is a Conflict unless ``replace``."""
    _require(principal, Scope.TOOLS_ADMIN)
    spec = check_tool(conn, body)
    if not replace and catalog.get_tool(conn, spec.address) is not None:
        raise Conflict(f"tool {spec.address!r} exists (replace it explicitly)", field="address")
    creator = principal.agent_id if principal is not None else None
    created = catalog.save_tool(conn, spec, created_by=creator)
    action = "tool.register" if created else "tool.replace"
    _audit(conn, principal, action, address=spec.address, transport=spec.transport.value)
    return public(spec)


def delete_tool(conn: Connection, principal: Principal | None, address: str) -> None:
    """Remove a registered tool (tasks using it will fail at their next run)."""
    _require(principal, Scope.TOOLS_ADMIN)
    if address in builtin_tools():
        raise Conflict(f"{address!r} is a built-in tool and cannot be deleted", field="address")
    if not catalog.delete_tool(conn, address):
        raise NotFound(f"no tool {address!r}", field="address")
    _audit(conn, principal, "tool.delete", address=address)


def save_mcp_server(
    conn: Connection, principal: Principal | None, body: McpServerCreate
) -> McpServer:
    """Check and store (or replace) an MCP server configuration."""
    _require(principal, Scope.TOOLS_ADMIN)
    if not SERVER_NAME.match(body.name) or body.name in RESERVED_SERVERS:
        raise ValidationError("1-64 of A-Z a-z 0-9 _ - (not a reserved prefix)", field="name")
    if (body.url is None) == (body.command is None):
        raise ValidationError("give exactly one of url and command", field="url")
    if body.url is not None:
        check_http_url(body.url, "url")
    elif body.auth is not None:
        raise ValidationError("auth headers are for url servers; use env", field="auth")
    for key, value in body.env.items():
        if isinstance(value, dict) and (
            set(value) != {"secret"} or not secrets.NAME.match(value["secret"])
        ):
            raise ValidationError('must be text or {"secret": NAME}', field=f"env.{key}")
    server = McpServer(
        name=body.name,
        url=body.url,
        command=body.command,
        args=tuple(body.args),
        env=dict(body.env),
        auth=_check_auth(body.auth, "auth"),
    )
    catalog.save_server(conn, server)
    _audit(conn, principal, "mcp_server.save", name=server.name, url=server.url)
    return server


def import_mcp_tools(
    conn: Connection, principal: Principal | None, server: str, listed: Sequence[RemoteTool]
) -> list[ToolPublic]:
    """Register (or replace) ``server.<name>`` for every tool the server listed."""
    _require(principal, Scope.TOOLS_ADMIN)
    done = []
    for remote in listed:
        body = ToolCreate(
            address=f"{server}.{remote.name}",
            transport="mcp",
            server=server,
            remote_name=remote.name,
            input_schema=remote.input_schema,
            output_schema=remote.output_schema or {},
            description=remote.description[:4000],
        )
        done.append(register_tool(conn, principal, body, replace=True))
    return done
