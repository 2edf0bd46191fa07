"""The chaos soak, short: every fault kind once in 60 s, then the ledger audit must be clean.

Its own PostgreSQL and Redis (embedded, spare loopback ports), the API, beat, the control
worker and three runs workers; ``kill -9`` of a runs worker, of the control worker and of
beat, a second beat, a Redis restart, a Redis pause (SIGSTOP) and a PostgreSQL crash and
restart, while cron, every-5-seconds and one-off tasks, and event tasks fed two events a
second through ``POST /events``, call a tool server that fails 5 % of calls and times out
1 %. Any lost or unfinished occurrence, any occurrence succeeded twice, any side effect done
twice, any concurrency limit exceeded or outbox event missing from the stream, any event fire
lost, unfinished or doubled, or any run for an event its task does not match fails the test
(``bench.chaos.audit``, ``bench.chaos.event_audit``); the report is the failure message.
"""

from __future__ import annotations

import pytest

from bench.chaos import faults
from bench.chaos.report import render
from bench.chaos.soak import Options, run


@pytest.mark.timeout(300)
def test_a_short_soak_under_every_fault_loses_and_doubles_nothing() -> None:
    outcome = run(Options(minutes=1.0, seed=17, tasks=120, drain_seconds=60), print_=lambda _: None)
    report = outcome.report
    assert report.clean, render(outcome)
    # the faults really happened, and so did the work, the retries and the side effects
    assert {f.kind for f in outcome.faults} == set(faults.PER_TEN_MINUTES)
    assert sum(report.buckets.values()) >= 50, render(outcome)
    assert report.info["retried attempts"] > 0, render(outcome)
    assert report.info["tool calls"].get("new", 0) >= 2 * report.buckets["succeeded"]
    assert report.info["outbox events"] > 0
    # events were accepted during the faults and fired their tasks (the audit checked each)
    assert report.info["events accepted (202)"] >= 40, render(outcome)
    assert report.event_buckets["succeeded"] >= 40, render(outcome)
    assert report.must_be_zero["event fires lost"] == 0
    assert report.must_be_zero["event fires doubled"] == 0
