"""CLI commands that talk to the HTTP API (``ORDINAUT_URL``, ``ORDINAUT_TOKEN``).

    ordinaut task create -f task.json | list | show ID | run-now ID | pause ID | resume ID
                  | cancel ID | snooze ID (--seconds N | --until ISO)
    ordinaut runs [--task ID] [--status S] [--limit N] [--follow]
    ordinaut agent list | rotate ID          (agent create: see ordinaut.cli.admin)

Tables for people, ``--json`` for scripts; API errors become one line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ordinaut.errors import ConfigError, OrdinautError

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(OrdinautError):
    """The API answered with an error."""


def client() -> httpx.Client:
    """An HTTP client for the configured API, or a ConfigError saying what to set."""
    token = os.environ.get("ORDINAUT_TOKEN")
    if not token:
        raise ConfigError(
            "ORDINAUT_TOKEN is not set: export the token `ordinaut up` printed "
            "(or one from `ordinaut agent create`)",
            field="ORDINAUT_TOKEN",
        )
    url = os.environ.get("ORDINAUT_URL", DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        raise ConfigError("ORDINAUT_URL must start with http:// or https://", field="ORDINAUT_URL")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def call(method: str, path: str, **kwargs: Any) -> Any:
    """One API call; errors become ApiError with the API's message."""
    try:
        with client() as http:
            resp = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        url = os.environ.get("ORDINAUT_URL", DEFAULT_URL)
        raise ConfigError(
            f"cannot reach the API at {url} ({exc}); is `ordinaut up` running? "
            "(set ORDINAUT_URL if it listens elsewhere)",
            field="ORDINAUT_URL",
        ) from None
    if resp.status_code >= 400:
        try:
            err = resp.json()["error"]
            field = f" [{err['field']}]" if err.get("field") else ""
            message = f"{err['message']}{field} (HTTP {resp.status_code})"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {resp.status_code}: {resp.text[:200]}"
        raise ApiError(message)
    return resp.json() if resp.content else None


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``columns`` (missing values shown as -)."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 48 else text[:45] + "..."


def emit(args: argparse.Namespace, data: Any, columns: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif isinstance(data, list):
        print(table(data, columns))
    else:
        print(table([data], columns))


TASK_COLUMNS = ("id", "title", "status", "schedule_kind", "schedule_expr", "next_run_at")
RUN_COLUMNS = ("id", "task_id", "status", "attempt", "scheduled_for", "finished_at", "error")


def add_commands(sub: Any) -> None:
    p_task = sub.add_parser("task", help="manage tasks through the API")
    tasks = p_task.add_subparsers(dest="task_command", required=True, metavar="ACTION")
    p = tasks.add_parser("create", help="create a task from a JSON file (- for stdin)")
    p.add_argument("-f", "--file", required=True)
    _json(p).set_defaults(func=task_create)
    p = tasks.add_parser("list", help="list tasks")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)
    _json(p).set_defaults(func=task_list)
    for action in ("show", "run-now", "pause", "resume", "cancel"):
        p = tasks.add_parser(action, help=f"{action} a task")
        p.add_argument("id")
        _json(p).set_defaults(func=task_action, action=action)
    p = tasks.add_parser("snooze", help="push the next run later")
    p.add_argument("id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--seconds", type=int)
    group.add_argument("--until")
    _json(p).set_defaults(func=task_snooze)

    p = sub.add_parser("runs", help="list runs (newest first)")
    p.add_argument("--task")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--follow", action="store_true", help="keep printing new and changed runs")
    _json(p).set_defaults(func=runs_list)


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def task_create(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        body = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}", field="file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{args.file} is not valid JSON: {exc}", field="file") from None
    emit(args, call("POST", "/tasks", json=body), TASK_COLUMNS)
    return 0


def task_list(args: argparse.Namespace) -> int:
    params = {"limit": args.limit} | ({"status": args.status} if args.status else {})
    emit(args, call("GET", "/tasks", params=params)["items"], TASK_COLUMNS)
    return 0


def task_action(args: argparse.Namespace) -> int:
    if args.action == "show":
        data = call("GET", f"/tasks/{args.id}")
    else:
        data = call("POST", f"/tasks/{args.id}/{args.action.replace('-', '_')}")
    columns = ("task_id", "scheduled_for") if args.action == "run-now" else TASK_COLUMNS
    emit(args, data, columns)
    return 0


def task_snooze(args: argparse.Namespace) -> int:
    body = {"seconds": args.seconds} if args.seconds is not None else {"until": args.until}
    emit(args, call("POST", f"/tasks/{args.id}/snooze", json=body), TASK_COLUMNS)
    return 0


def runs_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.task:
        params["task_id"] = args.task
    if args.status:
        params["status"] = args.status
    items = call("GET", "/runs", params=params)["items"]
    if not args.follow:
        emit(args, items, RUN_COLUMNS)
        return 0
    seen: dict[str, str] = {}
    while True:
        for run in reversed(items):
            if seen.get(run["id"]) != run["status"]:
                seen[run["id"]] = run["status"]
                line = (
                    json.dumps(run, ensure_ascii=False)
                    if args.json
                    else table([run], RUN_COLUMNS).splitlines()[1]
                )
                print(line, flush=True)
        time.sleep(1.0)
        items = call("GET", "/runs", params=params)["items"]
