"""``ordinaut agenda [--tomorrow | --week] [--tz TZ] [--json]``: what will fire, in order.

The window is computed on this machine (its local day for ``--tomorrow``); the times come
from the API's ``GET /agenda``, which computes them as the scheduler does.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

from ordinaut.cli.client import _json, call, table

COLUMNS = ("local", "title", "notes", "task_id")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("agenda", help="what will run (default: the next 24 hours)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--tomorrow", action="store_true", help="tomorrow, local day")
    when.add_argument("--week", action="store_true", help="the next 7 days")
    p.add_argument("--tz", help="IANA zone to show times in (default: the server's)")
    _json(p).set_defaults(func=show_agenda)


def window(now: datetime, *, tomorrow: bool, week: bool) -> tuple[datetime, datetime]:
    """The agenda window asked for, from the aware local ``now``."""
    if tomorrow:
        start = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    return now, now + timedelta(days=7 if week else 1)


def show_agenda(args: argparse.Namespace) -> int:
    start, end = window(datetime.now().astimezone(), tomorrow=args.tomorrow, week=args.week)
    params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    if args.tz:
        params["tz"] = args.tz
    items: list[dict[str, Any]] = []
    while True:
        page = call("GET", "/agenda", params=params)
        items.extend(page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
    elif not items:
        print(f"nothing scheduled between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}")
    else:
        rows = [
            {**i, "local": i["local"][:16].replace("T", " "), "notes": "; ".join(i["notes"])}
            for i in items
        ]
        print(table(rows, COLUMNS))
    return 0
