"""``ordinaut mcp [--token T] [--data-dir D]``: the MCP server on stdin/stdout, as one agent.

For desktop MCP clients that start a server process. The token comes from ``--token`` or
``ORDINAUT_TOKEN``; the servers from ``DATABASE_URL`` and ``REDIS_URL`` or, when unset, from
the env file of a running ``ordinaut up`` (``--data-dir``). Redis is needed too: ``run_now``
and ``approve_run`` ask a worker to dispatch at once through it. Other ``ORDINAUT_*``
settings (namespace, default time zone) are read as usual. Errors before serving are one
line on stderr (exit 2); stdout carries only MCP messages.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import anyio

from ordinaut.celery import create_app
from ordinaut.cli.admin import database_url
from ordinaut.config import load_settings
from ordinaut.errors import ConfigError
from ordinaut.runs import wake
from ordinaut.runtime import Runtime
from ordinaut.service.facade import Service
from ordinaut.store.engine import check_database


def add_commands(sub: Any) -> None:
    parser = sub.add_parser(
        "mcp", help="serve MCP on stdin/stdout as one agent (for desktop MCP clients)"
    )
    parser.add_argument(
        "--token", default=None, help="the agent's bearer token (default: $ORDINAUT_TOKEN)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data folder of a running `ordinaut up`"
    )
    parser.set_defaults(func=run)


def redis_url(data_dir: Path | None) -> str:
    """REDIS_URL, or the embedded Redis of a running ``ordinaut up``."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    from ordinaut.cli.up import ENV_FILE, default_data_dir

    env_file = (data_dir or default_data_dir()).expanduser() / ENV_FILE
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("REDIS_URL="):
                return line.split("=", 1)[1]
    raise ConfigError(
        "REDIS_URL is not set and no running `ordinaut up` was found "
        f"({env_file} is missing): set REDIS_URL (run_now reaches the workers through it) "
        "or start `ordinaut up`",
        field="REDIS_URL",
    )


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("ORDINAUT_TOKEN")
    if not token:
        raise ConfigError(
            "no token: pass --token or set ORDINAUT_TOKEN "
            "(make one with `ordinaut agent create NAME`)",
            field="ORDINAUT_TOKEN",
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(
        DATABASE_URL=database_url(args.data_dir), REDIS_URL=redis_url(args.data_dir)
    )
    runtime = Runtime(settings, role="mcp")
    sender = create_app(settings)
    try:
        check_database(runtime.engine)
        from ordinaut.mcp import stdio

        service = Service(
            runtime,
            kick_dispatch=wake.kicker(sender, runtime),
            kick_relay=wake.kicker(sender, runtime, wake.RELAY_TASK, pending_as=wake.EVENT_RELAY),
        )
        anyio.run(stdio.serve, service, token)
    finally:
        sender.close()
        runtime.close()
    return 0
