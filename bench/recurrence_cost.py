"""Expansion cost of the worst recurrence rules we know: steps (deterministic) and milliseconds.

Every fire time is computed under an expansion budget counted in steps
(:mod:`ordinaut.scheduling.expansion`): at most ``STEPS_PER_OCCURRENCE`` between two
occurrences, ``STEPS_PER_CALL`` per computation. For each rule this prints what creating it
costs (parse and validate: the first occurrence, a COUNT rule's whole walk) and what finding
its next 10 occurrences after 2026-01-01 costs, or why it is refused, plus the slowest
accepted rule. Pure CPU: no database, no Redis.

Run: ``python -m bench.recurrence_cost`` (about ten seconds). Prints figures only.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from ordinaut.errors import ValidationError
from ordinaut.scheduling.expansion import STEPS_PER_CALL, STEPS_PER_OCCURRENCE, Budget
from ordinaut.scheduling.recurrence import parse_schedule

AFTER = datetime(2026, 1, 1, tzinfo=UTC)
D = "DTSTART:20260105T000000\nRRULE:"
RULES = [
    ("cron", "0 0 29 2 1"),  # Vixie "either": every Feb 29 and every Monday
    ("cron", "0 0 29 2 *"),  # Feb 29 only
    ("cron", "* * * * * *"),
    ("cron", "59 23 31 12 *"),
    # issue 12's slow ones: 30 s a fire time and 12 s to reject before
    (
        "rrule",
        D + "FREQ=SECONDLY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0;BYSECOND=3",
    ),
    ("rrule", "FREQ=DAILY;BYHOUR=23,23;BYMINUTE=30;BYSETPOS=2"),
    # sparse on purpose
    ("rrule", D + "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"),
    ("rrule", D + "FREQ=HOURLY;INTERVAL=25;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0"),
    ("rrule", D + "FREQ=MINUTELY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=0;BYMINUTE=0"),
    ("rrule", D + "FREQ=SECONDLY;INTERVAL=59;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0"),
    ("rrule", D + "FREQ=MINUTELY;INTERVAL=1439;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0"),
    ("rrule", D + "FREQ=DAILY;INTERVAL=997;BYMONTH=2;BYMONTHDAY=29"),
    ("rrule", D + "FREQ=WEEKLY;INTERVAL=53;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"),
    ("rrule", D + "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH;BYMONTH=12;BYMONTHDAY=31"),
    # dense: many candidates a period
    ("rrule", D + "FREQ=YEARLY;BYHOUR=0,6,12,18;BYMINUTE=0,15,30,45;BYSETPOS=-1"),
    ("rrule", D + "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,10,11,12,13,14,15,16;BYSETPOS=-1"),
    ("rrule", D + "FREQ=SECONDLY;COUNT=10000"),
    ("rrule", D + "FREQ=DAILY;COUNT=10000;BYMONTH=2;BYMONTHDAY=29"),
]


def measure(kind: str, expr: str) -> tuple[str, int, float, int, float]:
    """(outcome, create steps, create ms, next-10 steps, next-10 ms)."""
    budget = Budget()
    started = time.perf_counter()
    try:
        schedule = parse_schedule(kind, expr, "Europe/Chisinau", created_at=AFTER, budget=budget)
    except ValidationError as exc:
        return f"refused: {exc.message[:90]}", budget.spent, _ms(started), 0, 0.0
    create_ms = _ms(started)
    steps = budget.spent
    budget = Budget()
    started = time.perf_counter()
    try:
        schedule.occurrences(AFTER, 10, budget)
    except ValidationError as exc:
        return f"next 10 refused: {exc.message[:80]}", steps, create_ms, budget.spent, _ms(started)
    return "accepted", steps, create_ms, budget.spent, _ms(started)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main() -> None:
    print(f"budget: {STEPS_PER_OCCURRENCE:,} steps per occurrence, {STEPS_PER_CALL:,} per call")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    slowest: tuple[float, str, int] = (0.0, "", 0)
    for kind, expr in RULES:
        outcome, steps, ms, next_steps, next_ms = measure(kind, expr)
        shown = expr.replace("DTSTART:20260105T000000\nRRULE:", "")
        print(f"{kind:5} {shown}")
        print(
            f"      create {steps:>9,} steps {ms:8.1f} ms | next 10 {next_steps:>9,} steps "
            f"{next_ms:8.1f} ms | {outcome}"
        )
        if outcome == "accepted" and max(ms, next_ms) > slowest[0]:
            slowest = (max(ms, next_ms), shown, max(steps, next_steps))
    print(f"slowest accepted rule: {slowest[1]!r}: {slowest[0]:.1f} ms, {slowest[2]:,} steps")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("reproduce: python -m bench.recurrence_cost")


if __name__ == "__main__":
    main()
