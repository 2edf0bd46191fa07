"""CLI commands for what waits for a person (through the HTTP API, like ``ordinaut task``).

ordinaut approvals [--limit N]                  runs waiting for approval, oldest first
ordinaut approve RUN_ID [--comment TEXT]        let it go on from the gated step
ordinaut reject RUN_ID [--comment TEXT]         cancel it
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ordinaut.cli.client import RUN_COLUMNS, call, emit
from ordinaut.errors import ConfigError

APPROVAL_COLUMNS = ("run_id", "task_title", "step", "waiting_since", "timeout_at", "input")
CHANGE_COLUMNS = ("id", "agent_name", "kind", "status", "created_at", "exceeded")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("approvals", help="list runs waiting for approval (oldest first)")
    p.add_argument("--limit", type=int, default=50)
    _json(p).set_defaults(func=approvals_list)
    for action in ("approve", "reject"):
        p = sub.add_parser(action, help=f"{action} a run waiting for approval")
        p.add_argument("run_id")
        p.add_argument("--comment", help="why (kept in the audit log)")
        _json(p).set_defaults(func=decide, action=action)

    p = sub.add_parser("changes", help="list task changes waiting for approval (oldest first)")
    p.add_argument("--status", default="pending")
    p.add_argument("--limit", type=int, default=50)
    _json(p).set_defaults(func=changes_list)
    p_change = sub.add_parser("change", help="approve or reject a pending task change")
    change = p_change.add_subparsers(dest="change_command", required=True, metavar="ACTION")
    for action in ("approve", "reject"):
        p = change.add_parser(action, help=f"{action} a pending change")
        p.add_argument("change_id")
        p.add_argument("--comment", help="why (kept in the audit log)")
        _json(p).set_defaults(func=decide_change, action=action)

    p_limits = sub.add_parser("limits", help="show or set an agent's limits")
    limits = p_limits.add_subparsers(dest="limits_command", required=True, metavar="ACTION")
    p = limits.add_parser("show", help="an agent's limits")
    p.add_argument("agent_id")
    _json(p).set_defaults(func=limits_show)
    p = limits.add_parser("set", help="replace an agent's limits from a JSON file (- for stdin)")
    p.add_argument("agent_id")
    p.add_argument("-f", "--file", required=True)
    _json(p).set_defaults(func=limits_set)


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


def changes_list(args: argparse.Namespace) -> int:
    params = {"status": args.status, "limit": args.limit}
    items = call("GET", "/changes", params=params)["items"]
    if args.json:
        emit(args, items, CHANGE_COLUMNS)
        return 0
    emit(
        args,
        [{**c, "exceeded": [e["limit"] for e in c["exceeded"]]} for c in items],
        CHANGE_COLUMNS,
    )
    for change in items:  # the diff, readable
        print(f"\nchange {change['id']}:")
        for field in change["diff"]["fields"]:
            print(f"  {field['field']}: {_short(field['old'])} -> {_short(field['new'])}")
        for side in ("before", "after"):
            shown = change["diff"]["schedule"].get(side)
            if shown:
                print(f"  {side}: {shown['in_words']}; next: {', '.join(shown['next'][:10])}")
    return 0


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def decide_change(args: argparse.Namespace) -> int:
    body = {"comment": args.comment} if args.comment else None
    data = call("POST", f"/changes/{args.change_id}/{args.action}", json=body)
    emit(args, data, ("id", "status", "result_task_id", "comment"))
    return 0


def limits_show(args: argparse.Namespace) -> int:
    data = call("GET", f"/agents/{args.agent_id}/limits")
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


def limits_set(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        body = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}", field="file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{args.file} is not valid JSON: {exc}", field="file") from None
    data = call("PUT", f"/agents/{args.agent_id}/limits", json=body)
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0
