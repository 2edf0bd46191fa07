"""``python -m bench.chaos [--minutes N] [--seed S] [--tasks T] [--event-tasks E]
[--event-rate R]``: the chaos soak.

Exits 0 when every must-be-0 figure is 0, 1 otherwise (2 when the soak could not run).
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.chaos.report import render
from bench.chaos.soak import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the window")
    parser.add_argument("--seed", type=int, default=1, help="seeds the workload and the faults")
    parser.add_argument("--tasks", type=int, default=None, help="default 200 per minute, ≤ 2000")
    parser.add_argument("--event-tasks", type=int, default=24, help="event tasks (default 24)")
    parser.add_argument(
        "--event-rate", type=float, default=2.0, help="events published per second (default 2)"
    )
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait at the end")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep logs, servers (kept anyway if not clean)",
    )
    args = parser.parse_args(argv)
    tasks = args.tasks if args.tasks is not None else min(2000, max(100, int(200 * args.minutes)))
    options = Options(
        args.minutes,
        args.seed,
        tasks,
        args.drain,
        args.keep_logs,
        event_tasks=args.event_tasks,
        event_rate=args.event_rate,
    )
    print(
        f"# chaos soak: {args.minutes:g} min, seed {args.seed}, {tasks} tasks, "
        f"{args.event_tasks} event tasks at {args.event_rate:g} events/s, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    outcome = run(options, print_=lambda line: print(line, flush=True))
    print(render(outcome))
    return 0 if outcome.report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
