"""The ``ordinaut`` command line.

    ordinaut up [--host H] [--port P] [--data-dir D] [--workers N] [--flower]
    ordinaut migrate
    ordinaut agent create NAME --scopes a,b,c
    ordinaut preview KIND EXPR [--tz TZ] [--count N] [--after ISO] [--json]
    ordinaut mcp [--token T] [--data-dir D]
    ordinaut budgets [set AGENT_ID --runs_per_day N ...]
    ordinaut quiet-hours set AGENT_ID --window 22:00-08:00 [--tz TZ] [--on_quiet defer]
    ordinaut approvals | approve RUN_ID | reject RUN_ID [--comment C]
    ordinaut changes | change approve|reject ID | limits show|set AGENT_ID
    ordinaut agenda [--tomorrow | --week] [--tz TZ] [--json]

Every error is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ordinaut import __version__
from ordinaut.errors import OrdinautError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from ordinaut.cli import (
        admin,
        agenda,
        approvals,
        client,
        events,
        mcp,
        policies,
        preview,
        tools,
        up,
    )

    parser = Parser(prog="ordinaut", description="Time, state and discipline for your AI agents.")
    parser.add_argument("--version", action="version", version=f"ordinaut {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_up = sub.add_parser("up", help="run API, beat and workers on this machine")
    up.add_arguments(p_up)
    p_up.set_defaults(func=up.run)

    admin.add_commands(sub)
    tools.add_commands(sub)
    client.add_commands(sub)
    approvals.add_commands(sub)
    agenda.add_commands(sub)
    events.add_commands(sub)
    preview.add_commands(sub)
    mcp.add_commands(sub)
    policies.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ordinaut`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except OrdinautError as exc:
        print(f"ordinaut: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
