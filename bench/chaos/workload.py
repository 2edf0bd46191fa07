"""The soak's tasks, and the occurrences each one should fire, computed two ways.

Three kinds, as a user would write them: cron ``* * * * *`` (every minute), RRULE
``FREQ=SECONDLY;INTERVAL=5`` (every 5 s; without DTSTART the rule is anchored at the creation
minute, so its instants are the multiples of 5 s) and ``once`` instants spread over the soak.
Each pipeline calls the tool server twice (steps ``first`` and ``second``), so a retried
attempt must serve ``first`` from its receipt instead of calling again. Misfire policies
rotate over ``run_once`` / ``skip`` / ``run_all``; some tasks share concurrency keys (limit 1
on even keys, 2 on odd ones).

:func:`expected` is the independent answer: plain arithmetic on epoch seconds (multiples of 60,
multiples of 5, the instant). :func:`agrees_with_ordinaut` checks it against
``ordinaut.scheduling`` for the same window, so neither can be wrong alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ordinaut.scheduling.recurrence import parse_schedule

TOOL = "chaos.effect"
EVERY_MINUTE = "* * * * *"
EVERY_5S = "FREQ=SECONDLY;INTERVAL=5"
POLICIES = ("run_once", "skip", "run_all")
KEYS = 8


@dataclass(frozen=True)
class Mix:
    """How many tasks of each kind."""

    cron: int
    secondly: int
    once: int

    @classmethod
    def of(cls, tasks: int) -> Mix:
        """A fifth every minute, ~1 in 130 every 5 s, the rest once: ``tasks`` = 2,000 offer
        about 12 runs/s (two tool calls each), what a shared, loaded 2-core machine keeps up
        with while it is being broken; a heavier mix only measures the backlog."""
        cron = max(1, tasks // 5)
        secondly = max(5, tasks // 130)
        return cls(cron=cron, secondly=secondly, once=max(10, tasks - cron - secondly))


@dataclass(frozen=True)
class TaskSpec:
    """One task to create, as the body of ``POST /tasks``."""

    kind: str
    expr: str
    misfire_policy: str
    concurrency_key: str | None

    @property
    def limit(self) -> int:
        return 1 if self.concurrency_key is None else 1 + int(self.concurrency_key[2:]) % 2

    def body(self, index: int) -> dict[str, Any]:
        args = {
            "task": "${run.task_id}",
            "occurrence": "${run.scheduled_for}",
            "ckey": self.concurrency_key or "",
        }
        made: dict[str, Any] = {
            "title": f"chaos {self.kind} {index}",
            "schedule_kind": self.kind,
            "schedule_expr": self.expr,
            "timezone": "UTC",
            "misfire_policy": self.misfire_policy,
            "payload": {
                "pipeline": [
                    {"id": step, "uses": TOOL, "with": {**args, "step": step}}
                    for step in ("first", "second")
                ]
            },
        }
        if self.concurrency_key is not None:
            made["concurrency_key"] = self.concurrency_key
            made["concurrency_limit"] = self.limit
        return made


def tool_body(url: str) -> dict[str, Any]:
    """The ``POST /tools`` body of the soak's HTTP tool."""
    return {
        "address": TOOL,
        "transport": "http",
        "endpoint": url,
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "timeout_seconds": 1.5,
    }


def plan(mix: Mix, rng: random.Random, first: datetime, last: datetime) -> list[TaskSpec]:
    """The tasks, in creation order; ``once`` instants uniformly in [first, last]."""
    specs: list[TaskSpec] = []

    def key(share: float) -> str | None:
        return f"ck{rng.randrange(KEYS)}" if rng.random() < share else None

    for i in range(mix.cron):
        specs.append(TaskSpec("cron", EVERY_MINUTE, POLICIES[i % 3], key(0.05)))
    for i in range(mix.secondly):
        specs.append(TaskSpec("rrule", EVERY_5S, POLICIES[i % 3], key(0.3)))
    span = (last - first).total_seconds()
    for i in range(mix.once):
        at = first + timedelta(seconds=rng.uniform(0, span))
        specs.append(TaskSpec("once", at.isoformat(), POLICIES[i % 3], key(0.1)))
    rng.shuffle(specs)
    return specs


def expected(kind: str, expr: str, created_at: datetime, end: datetime) -> list[datetime]:
    """The occurrences in ``(created_at, end]``, by arithmetic alone."""
    if kind == "once":
        at = datetime.fromisoformat(expr)
        return [at] if created_at < at <= end else []
    step = {EVERY_MINUTE: 60, EVERY_5S: 5}[expr]
    first = int(created_at.timestamp()) // step * step + step
    return [datetime.fromtimestamp(t, UTC) for t in range(first, int(end.timestamp()) + 1, step)]


def agrees_with_ordinaut(kind: str, expr: str, created_at: datetime, end: datetime) -> bool:
    """Whether ``ordinaut.scheduling`` lists the same occurrences as :func:`expected`."""
    schedule = parse_schedule(kind, expr, "UTC", created_at=created_at)
    theirs = []
    for occ in schedule.iter_after(created_at):
        if occ.utc > end:
            break
        theirs.append(occ.utc)
    return theirs == expected(kind, expr, created_at, end)
