"""Admin commands for the tool catalog (direct database access) and the demo tool server.

    ordinaut tool list [--json]
    ordinaut tool add -f tool.json [--replace]       one tool object or a list of them
    ordinaut tool remove ADDRESS
    ordinaut tool add-mcp-server NAME --url URL [--auth-header H --auth-secret NAME]
    ordinaut tool add-mcp-server NAME [--env K=V] [--env-secret K=NAME] --command CMD ARG…
    ordinaut tool import-mcp SERVER [--timeout S]    register SERVER.<tool> for its tools/list
    ordinaut demo-tools [--port 8765] [--register] [--stdio]

Like ``ordinaut migrate`` they use ``DATABASE_URL`` (or a running ``ordinaut up``) and act as
the local administrator. ``--command`` takes the rest of the line, so it comes last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.cli.admin import database_url
from ordinaut.errors import OrdinautError, ValidationError
from ordinaut.service import tools as service
from ordinaut.store.engine import check_database, make_engine
from ordinaut.tools import catalog, mcp_client


def add_commands(sub: Any) -> None:
    p_tool = sub.add_parser("tool", help="manage the tool catalog (direct database access)")
    tool_sub = p_tool.add_subparsers(dest="tool_command", required=True, metavar="ACTION")

    p = tool_sub.add_parser("list", help="list every tool (built-ins and catalog)")
    p.add_argument("--json", action="store_true", help="print the full entries as JSON")
    _finish(p, run_list)

    p = tool_sub.add_parser("add", help="register tools from a JSON file")
    p.add_argument("-f", "--file", required=True, help="JSON file ('-' for stdin)")
    p.add_argument("--replace", action="store_true", help="overwrite existing addresses")
    _finish(p, run_add)

    p = tool_sub.add_parser("remove", help="remove a registered tool")
    p.add_argument("address")
    _finish(p, run_remove)

    p = tool_sub.add_parser("add-mcp-server", help="configure an MCP server (url or command)")
    p.add_argument("name")
    p.add_argument("--url", help="streamable HTTP endpoint, e.g. http://127.0.0.1:8765/mcp")
    p.add_argument("--auth-header", help="header sent to a url server, e.g. Authorization")
    p.add_argument("--auth-secret", help="secret NAME for that header (ORDINAUT_SECRET_NAME)")
    p.add_argument("--auth-prefix", default="", help="text before the secret, e.g. 'Bearer '")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="stdio env")
    p.add_argument("--env-secret", action="append", default=[], metavar="K=NAME")
    p.add_argument("--command", nargs=argparse.REMAINDER, help="stdio command and args (last)")
    _finish(p, run_add_server)

    p = tool_sub.add_parser("import-mcp", help="register every tool an MCP server lists")
    p.add_argument("server")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    _finish(p, run_import)

    p = sub.add_parser("demo-tools", help="serve the demo tools on 127.0.0.1 (HTTP, MCP, LLM)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--register", action="store_true", help="register the demo tools first")
    p.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout instead")
    _finish(p, run_demo)


def _finish(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="data folder of `ordinaut up`")

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except OrdinautError as exc:  # one line on stderr: say which field, as the API does
            if exc.field and exc.field not in exc.message:
                exc.message = f"{exc.field}: {exc.message}"
            raise

    parser.set_defaults(func=run)


@contextmanager
def _transaction(args: argparse.Namespace) -> Iterator[Connection]:
    engine = make_engine(database_url(args.data_dir), pool_size=1)
    try:
        check_database(engine)
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def run_list(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        found = service.list_tools(conn, None)
    if args.json:
        print(json.dumps([t.model_dump(exclude_none=True) for t in found], indent=2))
        return 0
    for t in found:
        where = t.endpoint or (f"mcp:{t.server}/{t.remote_name}" if t.server else "")
        print(f"{t.address:40} {t.transport:8} {where}")
    return 0


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        return json.loads(text)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", field="file") from None
    except ValueError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}", field="file") from None


def run_add(args: argparse.Namespace) -> int:
    raw = _read_json(args.file)
    entries = raw if isinstance(raw, list) else [raw]
    with _transaction(args) as conn:
        done = [
            service.register_tool(
                conn,
                None,
                service.parse(service.ToolCreate, entry, field=f"[{i}]"),
                replace=args.replace,
            )
            for i, entry in enumerate(entries)
        ]
    for t in done:
        print(f"registered {t.address} ({t.transport})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        service.delete_tool(conn, None, args.address)
    print(f"removed {args.address}")
    return 0


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ValidationError(f"{option} wants KEY=VALUE, got {value!r}", field=option)
        out[key] = rest
    return out


def run_add_server(args: argparse.Namespace) -> int:
    env: dict[str, Any] = _pairs(args.env, "--env")
    env.update({k: {"secret": v} for k, v in _pairs(args.env_secret, "--env-secret").items()})
    command = args.command or []
    auth = None
    if args.auth_header or args.auth_secret:
        auth = {"header": args.auth_header, "secret": args.auth_secret, "prefix": args.auth_prefix}
    raw = {
        "name": args.name,
        "url": args.url,
        "command": command[0] if command else None,
        "args": command[1:],
        "env": env,
        "auth": auth,
    }
    body = service.parse(service.McpServerCreate, raw)
    with _transaction(args) as conn:
        server = service.save_mcp_server(conn, None, body)
    target = server.url or " ".join([server.command or "", *server.args])
    print(f"MCP server {server.name}: {target}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        server = catalog.get_server(conn, args.server)
    if server is None:
        raise ValidationError(
            f"no MCP server {args.server!r}: add-mcp-server first", field="server"
        )
    listed = mcp_client.list_tools(server, timeout=args.timeout, environ=os.environ)
    with _transaction(args) as conn:
        done = service.import_mcp_tools(conn, None, server.name, listed)
    for t in done:
        print(f"registered {t.address} (mcp {server.name}/{t.remote_name})")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from ordinaut.demo import app
    from ordinaut.demo import catalog as demo_catalog

    if args.stdio:
        import anyio

        from ordinaut.demo.mcp_server import serve_stdio
        from ordinaut.demo.tools import DemoState

        anyio.run(serve_stdio, DemoState())
        return 0
    base = f"http://{app.HOST}:{args.port}"
    if args.register:
        with _transaction(args) as conn:
            for entry in demo_catalog.http_tools(base):
                service.register_tool(conn, None, service.ToolCreate(**entry), replace=True)
            server = service.McpServerCreate(**demo_catalog.mcp_server(base))
            service.save_mcp_server(conn, None, server)
            for entry in demo_catalog.mcp_tools():
                service.register_tool(conn, None, service.ToolCreate(**entry), replace=True)
        print(
            "registered the demo tools (http: calendar.* weather.* inbox.* notify.*; mcp: demo.*)"
        )
    print(f"demo tools on {base}: HTTP {base}/tools/<set>/<tool>, MCP {base}/mcp")
    print(f"for llm.* steps: ORDINAUT_LLM_BASE_URL={base}/v1 ORDINAUT_LLM_MODEL=demo")
    app.serve(args.port)
    return 0
