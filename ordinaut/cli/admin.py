"""Commands that talk to the database directly: ``migrate`` and ``agent create``.

They use ``DATABASE_URL``; when it is unset they use the embedded server of a running
``ordinaut up`` (found through ``--data-dir``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ordinaut.cli import client
from ordinaut.config import normalise_database_url
from ordinaut.errors import ConfigError
from ordinaut.service.agents import create_agent
from ordinaut.store import migrate
from ordinaut.store.engine import check_database, make_engine


def add_commands(sub: Any) -> None:
    p_migrate = sub.add_parser("migrate", help="apply database migrations")
    _data_dir_option(p_migrate)
    p_migrate.set_defaults(func=run_migrate)

    p_agent = sub.add_parser("agent", help="manage agents (direct database access)")
    agent_sub = p_agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    p_create = agent_sub.add_parser("create", help="create an agent and print its token once")
    p_create.add_argument("name")
    p_create.add_argument(
        "--scopes",
        default="tasks:read,tasks:write,runs:read",
        help="comma-separated scopes (default: tasks:read,tasks:write,runs:read)",
    )
    p_create.add_argument("--json", action="store_true", help="machine-readable output")
    _data_dir_option(p_create)
    p_create.set_defaults(func=run_agent_create)
    p_list = agent_sub.add_parser("list", help="list agents (through the API)")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=run_agent_list)
    p_rotate = agent_sub.add_parser("rotate", help="issue a new token (through the API)")
    p_rotate.add_argument("id")
    p_rotate.add_argument("--json", action="store_true", help="machine-readable output")
    p_rotate.set_defaults(func=run_agent_rotate)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data folder of a running `ordinaut up`"
    )


def database_url(data_dir: Path | None) -> str:
    """DATABASE_URL, or the embedded server's URL of a running ``ordinaut up``."""
    if os.environ.get("DATABASE_URL"):
        try:
            return normalise_database_url(os.environ["DATABASE_URL"])
        except ValueError as exc:
            raise ConfigError(f"DATABASE_URL {exc}", field="DATABASE_URL") from None
    from ordinaut.cli.up import ENV_FILE, default_data_dir

    env_file = (data_dir or default_data_dir()).expanduser() / ENV_FILE
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("DATABASE_URL="):
                return line.split("=", 1)[1]
    raise ConfigError(
        "DATABASE_URL is not set and no running `ordinaut up` was found "
        f"({env_file} is missing): set DATABASE_URL or start `ordinaut up`",
        field="DATABASE_URL",
    )


def run_migrate(args: argparse.Namespace) -> int:
    engine = make_engine(database_url(args.data_dir), pool_size=1)
    try:
        check_database(engine)
        migrate.upgrade(engine)
        print(f"database at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


AGENT_COLUMNS = ("id", "name", "scopes", "created_at", "revoked_at")


def run_agent_create(args: argparse.Namespace) -> int:
    """Through the API when ORDINAUT_TOKEN is set; else straight into the database."""
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    if os.environ.get("ORDINAUT_TOKEN"):
        made = client.call("POST", "/agents", json={"name": args.name, "scopes": scopes})
        client.emit(args, made, (*AGENT_COLUMNS[:3], "token"))
        return 0
    engine = make_engine(database_url(args.data_dir), pool_size=1)
    try:
        check_database(engine)
        with engine.begin() as conn:
            agent = create_agent(conn, args.name, scopes)
    finally:
        engine.dispose()
    print(f"agent {agent.name} ({agent.id}) scopes: {', '.join(agent.scopes)}")
    print(f"token (shown once): {agent.token}")
    return 0


def run_agent_list(args: argparse.Namespace) -> int:
    client.emit(args, client.call("GET", "/agents"), AGENT_COLUMNS)
    return 0


def run_agent_rotate(args: argparse.Namespace) -> int:
    made = client.call("POST", f"/agents/{args.id}/rotate_token")
    client.emit(args, made, ("id", "name", "token"))
    return 0
