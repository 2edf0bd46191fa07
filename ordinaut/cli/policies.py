"""``ordinaut budgets`` and ``ordinaut quiet-hours``: the policy operations through the API.

Field names are the API's (``--runs_per_day`` or ``--runs-per-day``); the API validates, so
a refusal names the same field as it does over HTTP and MCP.
"""

from __future__ import annotations

import argparse
from typing import Any

from ordinaut.cli.client import call, emit
from ordinaut.vocabulary import BudgetMetric, OnQuiet

BUDGET_COLUMNS = ("subject", "id", "title", "metric", "used", "cap", "period")
POLICY_COLUMNS = ("agent_id", "quiet_hours", "budgets")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("budgets", help="show (or set) budgets and usage against their caps")
    _json(p)
    p.set_defaults(func=budgets_show)
    actions = p.add_subparsers(dest="budgets_command", metavar="ACTION")
    s = actions.add_parser("set", help="set an agent's budget (agents:admin)")
    s.add_argument("agent_id")
    s.add_argument("--tz")
    for metric in BudgetMetric:
        dashed = "--" + metric.value.replace("_", "-")
        s.add_argument(dashed, f"--{metric.value}", dest=metric.value, type=int)
    _json(s).set_defaults(func=budgets_set)

    q = sub.add_parser("quiet-hours", aliases=["quiet_hours"], help="set an agent's quiet hours")
    actions = q.add_subparsers(dest="quiet_command", required=True, metavar="ACTION")
    s = actions.add_parser("set", help="set an agent's default quiet hours")
    s.add_argument("agent_id")
    s.add_argument("--tz")
    s.add_argument(
        "--window", dest="windows", action="append", required=True, help='e.g. "22:00-08:00"'
    )
    s.add_argument("--on-quiet", "--on_quiet", dest="on_quiet", choices=[o.value for o in OnQuiet])
    s.add_argument("--scope", dest="scopes", action="append", help="tool scope (default notify)")
    _json(s).set_defaults(func=quiet_set)


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def budgets_show(args: argparse.Namespace) -> int:
    report = call("GET", "/budgets")
    if args.json:
        emit(args, report, BUDGET_COLUMNS)
        return 0
    rows = [
        {**{k: view.get(k) for k in ("subject", "id", "title")}, **cap}
        for view in report["budgets"]
        for cap in view["caps"]
    ]
    emit(args, rows, BUDGET_COLUMNS)
    return 0


def budgets_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {m.value: getattr(args, m.value) for m in BudgetMetric}
    body["tz"] = args.tz
    body = {k: v for k, v in body.items() if v is not None}
    emit(args, call("PUT", f"/agents/{args.agent_id}/budgets", json=body), POLICY_COLUMNS)
    return 0


def quiet_set(args: argparse.Namespace) -> int:
    body = {
        "tz": args.tz,
        "windows": args.windows,
        "on_quiet": args.on_quiet,
        "scopes": args.scopes,
    }
    body = {k: v for k, v in body.items() if v is not None}
    emit(args, call("PUT", f"/agents/{args.agent_id}/quiet_hours", json=body), POLICY_COLUMNS)
    return 0
