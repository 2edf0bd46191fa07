"""The ledger check after the soak: what should have happened against what the stores say.

For every task, the occurrences due in its window (:func:`bench.chaos.workload.expected`,
arithmetic, cross-checked with ``ordinaut.scheduling``) are looked up in ``task_run`` (every
attempt and every ``skipped`` record) and ``due_work``. Each occurrence ends in one bucket:

- **succeeded** — an attempt succeeded;
- **skipped** — a ``skipped`` run records why (misfire, dedupe, overlap …); the reasons are
  counted. A misfire record that lists "N later missed occurrences not listed" covers the N
  occurrences after it (the cap on records per tick);
- **failed** — every attempt failed and no retry is pending (retries exhausted): recorded,
  not lost;
- **unfinished** — still waiting when the drain gave up: beat has not fired it yet (the
  task's ``next_occurrence_at`` is not past it), due_work, or an open run;
- **lost** — no run, no skipped record, no due work: nothing anywhere says it was due.

Must-be-0 figures: lost, unfinished, an occurrence succeeded twice, a run for an instant the
schedule does not have, a misfire decision against the task's policy (a catch-up under
``skip``; a skip under ``run_all`` below the cap; a skip of an occurrence still within the
grace when it was recorded), a side effect done twice for one (task, occurrence, step) or a
call without an Idempotency-Key, a key sent again after its success was recorded (the
executor must serve it from the receipt), more runs of a concurrency key running at once than
its limit (from the runs' start/finish times, and from the tool server's own count of calls
in progress), an outbox event never seen on the stream, and any disagreement between the
arithmetic and ``ordinaut.scheduling``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.chaos import workload
from bench.chaos.toolserver import Call
from bench.common import percentile

OPEN = frozenset({"queued", "running", "waiting_approval"})
_MORE = re.compile(r"\(and (\d+) later missed occurrences not listed\)")
ON_TIME = 2.0  # seconds: a run that starts within this of its due time is on time


@dataclass(frozen=True)
class Created:
    """A task the soak created."""

    id: str
    spec: workload.TaskSpec
    created_at: datetime


@dataclass(frozen=True)
class FaultRecord:
    """One fault as it happened (wall-clock times)."""

    kind: str
    began: datetime
    ended: datetime
    detail: str


@dataclass
class Report:
    """The figures of one audit; :attr:`must_be_zero` decides the exit status."""

    buckets: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    event_buckets: Counter[str] = field(default_factory=Counter)  # see bench.chaos.event_audit
    event_skip_reasons: Counter[str] = field(default_factory=Counter)
    must_be_zero: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    recovery: dict[str, list[float]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.must_be_zero.values())

    def example(self, name: str, text: str) -> None:
        found = self.examples.setdefault(name, [])
        if len(found) < 5:
            found.append(text)


def _runs(engine: Engine, end: datetime) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT task_id::text AS task_id, scheduled_for, trigger, attempt, "
                    "status::text AS status, reason, not_before, created_at, started_at, "
                    "finished_at, concurrency_key FROM task_run "
                    "WHERE scheduled_for <= :end AND trigger <> 'manual'"
                ),
                {"end": end},
            )
        )


def _due_work(engine: Engine, end: datetime) -> set[tuple[str, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT task_id::text, run_at FROM due_work WHERE run_at <= :end"),
            {"end": end},
        )
        return {(r[0], r[1]) for r in rows}


def _owed(engine: Engine) -> dict[str, datetime]:
    """Per active task, the occurrence beat has not fired yet (it still owes it and later)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id::text, next_occurrence_at FROM task "
                "WHERE status = 'active' AND next_occurrence_at IS NOT NULL"
            )
        )
        return {r[0]: r[1] for r in rows}


def classify(engine: Engine, tasks: Iterable[Created], end: datetime, grace: timedelta) -> Report:
    """Bucket every expected occurrence of ``tasks`` due by ``end``; the run-level checks."""
    report = Report()
    runs = _runs(engine, end)
    waiting = _due_work(engine, end)
    owed = _owed(engine)
    by_occ: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
    occs_of: dict[str, set[datetime]] = defaultdict(set)
    for run in runs:
        by_occ[(run.task_id, run.scheduled_for)].append(run)
        occs_of[run.task_id].add(run.scheduled_for)
    unexpected = twice = policy = 0
    for made in tasks:
        occs = workload.expected(made.spec.kind, made.spec.expr, made.created_at, end)
        wanted = set(occs)
        covered = 0  # occurrences still covered by a "(and N later … not listed)" record
        for occ in occs:
            found = by_occ.get((made.id, occ), [])
            statuses = [r.status for r in found]
            skipped = [r for r in found if r.status == "skipped"]
            if statuses.count("succeeded") > 1:
                twice += 1
                report.example("succeeded twice", f"task {made.id} occurrence {occ}")
            if "succeeded" in statuses:
                bucket = "succeeded"
            elif skipped:
                reason = skipped[0].reason or ""
                bucket = "skipped"
                report.skip_reasons[reason.split(":")[0]] += 1
                more = _MORE.search(reason)
                covered = int(more.group(1)) if more else 0
            elif (
                (made.id, occ) in waiting
                or any(s in OPEN for s in statuses)
                or (made.id in owed and owed[made.id] <= occ)
            ):
                bucket = "unfinished"
                report.example("unfinished", f"task {made.id} occurrence {occ} {statuses}")
            elif found:
                bucket = "failed"
            elif covered:
                covered -= 1
                bucket = "skipped"
                report.skip_reasons["misfire (not listed)"] += 1
            else:
                bucket = "lost"
                report.example("lost", f"task {made.id} ({made.spec.kind}) occurrence {occ}")
            report.buckets[bucket] += 1
            policy += _policy_faults(made, occ, found, grace, report)
        for occ in occs_of[made.id] - wanted:
            unexpected += len(by_occ[(made.id, occ)])
            report.example("unexpected", f"task {made.id} ran for {occ}")
    report.must_be_zero.update(
        {
            "lost occurrences": report.buckets["lost"],
            "unfinished occurrences": report.buckets["unfinished"],
            "occurrences succeeded twice": twice,
            "runs for an instant not in the schedule": unexpected,
            "misfire decisions against the policy": policy,
        }
    )
    report.info["runs (attempts and skipped records)"] = len(runs)
    report.info["retried attempts"] = sum(1 for r in runs if r.trigger == "retry")
    report.info["catch-up runs"] = sum(1 for r in runs if r.trigger == "catch_up")
    lags = [
        (r.started_at - (r.not_before or r.scheduled_for)).total_seconds()
        for r in runs
        if r.trigger == "schedule" and r.attempt == 1 and r.started_at is not None
    ]
    report.info["lag p50 s"] = round(percentile(lags, 50), 3)
    report.info["lag p99 s"] = round(percentile(lags, 99), 3)
    report.info["lag max s"] = round(max(lags, default=float("nan")), 3)
    report.info["_runs"] = runs
    return report


def _policy_faults(
    made: Created, occ: datetime, found: list[Any], grace: timedelta, report: Report
) -> int:
    policy = made.spec.misfire_policy
    bad = 0
    for run in found:
        if run.trigger == "catch_up" and policy == "skip":
            bad += 1
            report.example("policy", f"catch-up under skip: task {made.id} {occ}")
        reason = run.reason or ""
        if run.status == "skipped" and reason.startswith("misfire"):
            if policy == "run_all" and "beyond the catch-up cap" not in reason:
                bad += 1
                report.example("policy", f"skip under run_all: task {made.id} {occ}")
            recorded = run.finished_at or run.created_at
            if recorded - occ <= grace:
                bad += 1
                report.example("policy", f"skipped within grace: task {made.id} {occ}")
    return bad


def concurrency(report: Report, tasks: Iterable[Created], server_max: dict[str, int]) -> None:
    """Most runs of each concurrency key running at once vs its limit, two ways."""
    limits = {m.spec.concurrency_key: m.spec.limit for m in tasks if m.spec.concurrency_key}
    edges: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for run in report.info["_runs"]:
        if run.concurrency_key and run.started_at is not None:
            edges[run.concurrency_key].append((run.started_at, 1))
            edges[run.concurrency_key].append(
                (run.finished_at or datetime.max.replace(tzinfo=run.started_at.tzinfo), -1)
            )
    breaches = 0
    most: dict[str, int] = {}
    for key, marks in edges.items():
        level = top = 0
        for _, step in sorted(marks, key=lambda m: (m[0], m[1])):
            level += step
            top = max(top, level)
        most[key] = top
        if top > limits.get(key, 1):
            breaches += 1
            report.example("concurrency", f"{key}: {top} running at once, limit {limits[key]}")
    seen = sum(1 for key, top in server_max.items() if top > limits.get(key, 1))
    for key, top in server_max.items():
        if top > limits.get(key, 1):
            report.example("concurrency", f"{key}: tool server saw {top} at once")
    report.must_be_zero["concurrency limit exceeded (runs)"] = breaches
    report.must_be_zero["concurrency limit exceeded (tool server)"] = seen
    report.info["concurrency most at once / limit"] = {
        k: f"{most.get(k, 0)}/{server_max.get(k, 0)} of {limits[k]}" for k in sorted(limits)
    }


def side_effects(report: Report, engine: Engine, calls: list[Call], end: datetime) -> None:
    """Effects per (task, occurrence, step) and keys sent again after a recorded success."""
    cutoff = end.timestamp()
    effects = Counter((c.task, c.occurrence, c.step) for c in calls if c.outcome == "new")
    report.must_be_zero["side effects done twice"] = sum(1 for n in effects.values() if n > 1)
    report.must_be_zero["tool calls without an Idempotency-Key"] = sum(
        1 for c in calls if c.outcome == "no-key"
    )
    with engine.connect() as conn:
        done: dict[str, datetime] = dict(
            conn.execute(
                sa.text(
                    "SELECT idempotency_key, min(finished_at) FROM step_result "
                    "WHERE status = 'succeeded' AND idempotency_key IS NOT NULL "
                    "GROUP BY idempotency_key"
                )
            ).all()
        )
    resent = 0
    for c in calls:
        if c.outcome == "replay" and c.key in done and done[c.key].timestamp() < c.at - 1.0:
            resent += 1
            report.example("resent", f"key {c.key} at {c.at} after its receipt")
    report.must_be_zero["keys sent again after their success was recorded"] = resent
    outcomes = Counter(c.outcome for c in calls)
    report.info["tool calls"] = dict(outcomes)
    report.info["tool calls before the window end"] = sum(1 for c in calls if c.at <= cutoff)


def outbox(report: Report, engine: Engine, seen: set[int], duplicates: int) -> None:
    """Every outbox event must have reached the stream (the reader saw it)."""
    with engine.connect() as conn:
        ids = {int(i) for i in conn.execute(sa.text("SELECT id FROM outbox")).scalars()}
        unpublished = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        ).scalar_one()
    missing = ids - seen
    report.must_be_zero["outbox events never on the stream"] = len(missing)
    if missing:
        report.example("outbox", f"ids {sorted(missing)[:10]} ({unpublished} unpublished)")
    report.info["outbox events"] = len(ids)
    report.info["stream entries read twice (at-least-once relay)"] = duplicates


def recovery(report: Report, faults: list[FaultRecord]) -> None:
    """Per fault: seconds from its end until a run due after it started on time."""
    starts = sorted(
        (r.not_before or r.scheduled_for, r.started_at)
        for r in report.info["_runs"]
        if r.started_at is not None and r.trigger == "schedule"
    )
    for fault in faults:
        back = next(
            (
                (started - fault.ended).total_seconds()
                for due, started in starts
                if due >= fault.ended and (started - due).total_seconds() <= ON_TIME
            ),
            float("nan"),
        )
        report.recovery.setdefault(fault.kind, []).append(round(back, 2))
