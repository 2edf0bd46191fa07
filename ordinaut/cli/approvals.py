"""CLI commands for what waits for a person (through the HTTP API, like ``ordinaut task``).

ordinaut approvals [--limit N]                  runs waiting for approval, oldest first
ordinaut approve RUN_ID [--comment TEXT]        let it go on from the gated step
ordinaut reject RUN_ID [--comment TEXT]         cancel it
"""

from __future__ import annotations

import argparse
from typing import Any

from ordinaut.cli.client import RUN_COLUMNS, call, emit

APPROVAL_COLUMNS = ("run_id", "task_title", "step", "waiting_since", "timeout_at", "input")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("approvals", help="list runs waiting for approval (oldest first)")
    p.add_argument("--limit", type=int, default=50)
    _json(p).set_defaults(func=approvals_list)
    for action in ("approve", "reject"):
        p = sub.add_parser(action, help=f"{action} a run waiting for approval")
        p.add_argument("run_id")
        p.add_argument("--comment", help="why (kept in the audit log)")
        _json(p).set_defaults(func=decide, action=action)


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def approvals_list(args: argparse.Namespace) -> int:
    items = call("GET", "/approvals", params={"limit": args.limit})["items"]
    emit(args, items, APPROVAL_COLUMNS)
    return 0


def decide(args: argparse.Namespace) -> int:
    body = {"comment": args.comment} if args.comment else None
    data = call("POST", f"/runs/{args.run_id}/{args.action}", json=body)
    emit(args, data, (*RUN_COLUMNS[:3], "suspended_step", "resume_action", "reason"))
    return 0
