"""The event half of the ledger check: every accepted event against the tasks it must start.

For every event the publisher got a ``202`` for and every event task that existed when it was
published, :func:`bench.chaos.events.fires` (the pattern rule and the filter, computed here,
not by Ordinaut) says whether the pair must fire. Each pair that must fire is looked up in
``task_run`` (by the event id the run carries), ``due_work`` and the fire ledger
``event_fire``, and ends in one bucket:

- **succeeded** — an attempt succeeded;
- **skipped** — a ``skipped`` run records why;
- **failed** — every attempt failed and no retry is pending (retries exhausted): recorded,
  not lost;
- **unfinished** — still on its way when the drain gave up: the event's outbox row not yet
  handled by the trigger consumer, due work for the pair, or an open run;
- **lost** — the event was handled and nothing anywhere started the task.

From the other side, every pair with a run, due work or a fire-ledger row is checked: it
must be a pair that matches (by the event as the outbox stored it), it must have started
once (one first attempt, at most one success), and its runs must carry the event as
published.

Must-be-0 figures: accepted events missing from the outbox, fires lost, fires unfinished,
fires doubled, runs for a (task, event) that does not match, runs whose event differs from
the one published.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.chaos import events
from bench.chaos.audit import OPEN, Report
from bench.common import percentile

Pair = tuple[str, str]  # (task id, event id)


@dataclass(frozen=True)
class CreatedEventTask:
    """An event task the soak created."""

    id: str
    spec: events.EventTaskSpec
    created_at: datetime


@dataclass(frozen=True)
class Stored:
    """An external event as the outbox holds it."""

    topic: str
    payload: Any
    at: datetime
    handled: bool  # the trigger consumer (or its backstop) turned it into work


@dataclass
class _Ledger:
    runs: dict[Pair, list[Any]]
    waiting: set[Pair]
    fired: set[Pair]
    outbox: dict[str, Stored]


def _read(engine: Engine, task_ids: Sequence[str]) -> _Ledger:
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT task_id::text AS task_id, trigger, attempt, status::text AS status, "
                "reason, event, started_at FROM task_run "
                "WHERE task_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": list(task_ids)},
        ).all()
        waiting = conn.execute(
            sa.text(
                "SELECT task_id::text, event->>'id' FROM due_work WHERE event IS NOT NULL "
                "AND task_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": list(task_ids)},
        ).all()
        fired = conn.execute(sa.text("SELECT task_id::text, event_id::text FROM event_fire")).all()
        outbox = conn.execute(
            sa.text(
                "SELECT payload, triggered_at IS NOT NULL AS handled FROM outbox "
                "WHERE topic LIKE 'event.external.%'"
            )
        ).all()
    by_pair: dict[Pair, list[Any]] = defaultdict(list)
    for run in runs:
        by_pair[(run.task_id, str((run.event or {}).get("id")))].append(run)
    stored = {
        str(row.payload["id"]): Stored(
            str(row.payload["topic"]),
            row.payload.get("payload") or {},
            datetime.fromisoformat(str(row.payload["at"])),
            bool(row.handled),
        )
        for row in outbox
    }
    return _Ledger(
        dict(by_pair), {(r[0], r[1]) for r in waiting}, {(r[0], r[1]) for r in fired}, stored
    )


def _bucket(pair: Pair, found: list[Any], ledger: _Ledger, report: Report) -> str:
    statuses = [r.status for r in found]
    if "succeeded" in statuses:
        return "succeeded"
    skipped = [r for r in found if r.status == "skipped"]
    if skipped:
        report.event_skip_reasons[(skipped[0].reason or "").split(":")[0]] += 1
        return "skipped"
    stored = ledger.outbox.get(pair[1])
    if (
        pair in ledger.waiting
        or any(s in OPEN for s in statuses)
        or (stored is not None and not stored.handled)
    ):
        report.example("event unfinished", f"task {pair[0]} event {pair[1]} {statuses}")
        return "unfinished"
    if found:
        return "failed"
    ledger_row = "a fire-ledger row" if pair in ledger.fired else "no fire-ledger row"
    report.example("event lost", f"task {pair[0]} event {pair[1]} ({ledger_row})")
    return "lost"


def classify(
    report: Report,
    engine: Engine,
    tasks: Iterable[CreatedEventTask],
    published: Iterable[events.Published],
) -> None:
    """Bucket every (accepted event, matching task) pair; the checks from the runs' side."""
    made = {t.id: t for t in tasks}
    accepted = {p.id: p for p in published}
    ledger = _read(engine, list(made))
    missing = matching_none = 0
    for event in accepted.values():
        if event.id not in ledger.outbox:
            missing += 1
            report.example("event not in the outbox", f"event {event.id} ({event.payload})")
        hits = 0
        for task in made.values():
            existed = task.created_at <= event.at
            if not (existed and events.fires(task.spec, event.topic, event.payload)):
                continue
            hits += 1
            pair = (task.id, event.id)
            report.event_buckets[_bucket(pair, ledger.runs.get(pair, []), ledger, report)] += 1
        matching_none += hits == 0
    doubled = unmatched = altered = unacknowledged = 0
    lags: list[float] = []
    for pair in set(ledger.runs) | ledger.waiting | ledger.fired:
        listener = made.get(pair[0])
        if listener is None:
            continue  # not one of the soak's event tasks
        found = ledger.runs.get(pair, [])
        starts = [r for r in found if r.trigger == "event"]
        if len(starts) > 1 or sum(r.status == "succeeded" for r in found) > 1:
            doubled += 1
            report.example("event doubled", f"task {pair[0]} event {pair[1]}: {len(found)} runs")
        stored = ledger.outbox.get(pair[1])
        if stored is None or listener.created_at > stored.at:
            unmatched += 1
            why = "not in the outbox" if stored is None else "published before the task"
            report.example("event unmatched", f"task {pair[0]}: event {pair[1]} {why}")
        elif not events.fires(listener.spec, stored.topic, stored.payload):
            unmatched += 1
            report.example(
                "event unmatched",
                f"task {pair[0]} ({listener.spec.pattern}, {listener.spec.event_filter}) ran for "
                f"{stored.topic} {stored.payload}",
            )
        sent = accepted.get(pair[1])
        if sent is None:
            unacknowledged += bool(found)
            continue
        for run in found:
            carried = run.event or {}
            if (carried.get("topic"), carried.get("payload")) != (sent.topic, sent.payload):
                altered += 1
                report.example("event altered", f"task {pair[0]} event {pair[1]}: {carried}")
        lags += [(r.started_at - sent.at).total_seconds() for r in starts if r.started_at]
    report.must_be_zero.update(
        {
            "accepted events missing from the outbox": missing,
            "event fires lost": report.event_buckets["lost"],
            "event fires unfinished": report.event_buckets["unfinished"],
            "event fires doubled": doubled,
            "event runs for a (task, event) that does not match": unmatched,
            "event runs carrying another event than published": altered,
        }
    )
    report.info["events accepted (202)"] = len(accepted)
    report.info["events matching no task"] = matching_none
    report.info["event runs for events never answered 202"] = unacknowledged
    report.info["event fire-ledger rows"] = sum(1 for p in ledger.fired if p[0] in made)
    report.info["event lag p50 s"] = round(percentile(lags, 50), 3)
    report.info["event lag p99 s"] = round(percentile(lags, 99), 3)


def settled(
    engine: Engine, tasks: Iterable[CreatedEventTask], published: Iterable[events.Published]
) -> bool:
    """True when no expected fire is unfinished or (so far) lost: the drain may stop."""
    report = Report()
    classify(report, engine, tasks, published)
    return report.event_buckets["unfinished"] == 0 and report.event_buckets["lost"] == 0
