"""``ordinaut preview KIND EXPR``: the next occurrences of a schedule, offline."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from ordinaut.errors import ValidationError
from ordinaut.scheduling.recurrence import DEFAULT_TIMEZONE
from ordinaut.service.schedule_ops import preview_schedule


def add_commands(sub: Any) -> None:
    p = sub.add_parser("preview", help="show the next occurrences of a cron/rrule/once expression")
    p.add_argument("kind", help="cron, rrule or once")
    p.add_argument("expr", help="the expression, e.g. '30 8 * * 1-5'")
    p.add_argument("--tz", default=DEFAULT_TIMEZONE, help=f"IANA zone ({DEFAULT_TIMEZONE})")
    p.add_argument("--count", type=int, default=10, help="how many occurrences (10)")
    p.add_argument("--after", help="ISO 8601 instant with offset (default: now)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    after = None
    if args.after:
        try:
            after = datetime.fromisoformat(args.after.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"--after: {args.after!r} is not an ISO 8601 instant") from None
    result = preview_schedule(
        args.kind, args.expr, args.tz, count=args.count, after=after, now=datetime.now(UTC)
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for occurrence in result["occurrences"]:
        note = f"   ({occurrence['note']})" if occurrence.get("note") else ""
        print(f"{occurrence['local']}   {occurrence['utc']}{note}")
    return 0
