"""The chaos soak's pure parts: expected occurrences by arithmetic, and the fault schedule."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bench.chaos import events, faults, workload
from ordinaut.events import trigger
from ordinaut.scheduling import topics
from ordinaut.store import queries
from ordinaut.vocabulary import TaskStatus

T0 = datetime(2026, 12, 2, 11, 59, 58, 500_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "expr", "end", "count", "first"),
    [
        ("cron", workload.EVERY_MINUTE, T0 + timedelta(minutes=3), 3, "12:00:00"),
        ("rrule", workload.EVERY_5S, T0 + timedelta(seconds=20), 4, "12:00:00"),
        ("rrule", workload.EVERY_5S, T0 + timedelta(seconds=1), 0, None),
        ("once", (T0 + timedelta(seconds=7)).isoformat(), T0 + timedelta(seconds=60), 1, None),
        ("once", (T0 + timedelta(seconds=70)).isoformat(), T0 + timedelta(seconds=60), 0, None),
    ],
)
def test_expected_occurrences_by_arithmetic_agree_with_ordinaut(
    kind: str, expr: str, end: datetime, count: int, first: str | None
) -> None:
    found = workload.expected(kind, expr, T0, end)
    assert len(found) == count
    if first is not None:
        assert f"{found[0]:%H:%M:%S}" == first
    assert workload.agrees_with_ordinaut(kind, expr, T0, end)


def test_the_fault_schedule_is_seeded_bounded_and_has_every_kind() -> None:
    plan = faults.schedule(7, 5.0, 590.0)
    assert plan == faults.schedule(7, 5.0, 590.0)
    assert plan != faults.schedule(8, 5.0, 590.0)
    assert {f.kind for f in plan} == set(faults.PER_TEN_MINUTES)
    assert sum(f.kind == "restart_postgres" for f in plan) == 1
    assert all(f.at >= 5.0 and f.at + f.length <= 590.0 + 40 for f in plan)
    starts = [f.at for f in plan]
    assert starts == sorted(starts)
    short = faults.schedule(7, 4.5, 35.0)
    assert sorted(f.kind for f in short) == sorted(faults.PER_TEN_MINUTES)


def test_the_task_mix_shares_concurrency_keys_and_rotates_misfire_policies() -> None:
    specs = workload.plan(workload.Mix(300, 20, 50), random.Random(1), T0, T0 + timedelta(60))
    assert len(specs) == 370
    assert {s.misfire_policy for s in specs} == set(workload.POLICIES)
    keys = [s.concurrency_key for s in specs if s.concurrency_key]
    assert len(keys) > len(set(keys))  # shared
    body = specs[0].body(0)
    assert [step["id"] for step in body["payload"]["pipeline"]] == ["first", "second"]


@pytest.mark.parametrize(
    ("pattern", "topic", "fires"),
    [
        ("mail.created", "mail.created", True),
        ("mail.*", "mail.created", True),
        ("mail.*", "mail.created.urgent", False),
        ("mail.#", "mail", True),
        ("mail.#", "mail.created.urgent", True),
        ("*.created", "chat.created", True),
        ("mail", "mail.created", False),
        ("#", "chat.deleted.urgent", True),
        ("mail.*.urgent", "mail.deleted.urgent", True),
    ],
)
def test_the_audits_topic_rule(pattern: str, topic: str, fires: bool) -> None:
    assert events.topic_matches(pattern, topic) is fires
    assert topics.matches(pattern, topic) is fires


def test_the_audits_fire_rule_agrees_with_ordinauts_on_every_drawn_event() -> None:
    rng = random.Random(3)
    specs = events.plan(40, rng)
    assert {s.pattern.split(".")[0] for s in specs} >= {"#", "*", "elsewhere"}
    hits = 0
    for n in range(300):
        topic, payload = events.draw(rng, f"e{n}")
        event = trigger.Event(n, uuid.uuid4(), topic, payload, uuid.uuid4(), True, T0)
        for spec in specs:
            theirs = queries.EventTask(
                uuid.uuid4(), uuid.uuid4(), spec.pattern, spec.event_filter, TaskStatus.ACTIVE, 5
            )
            ours = events.fires(spec, topic, payload)
            assert ours is trigger.fires(theirs, event), (spec, topic, payload)
            hits += ours
    assert 0.02 < hits / (300 * 40) < 0.3  # filters and patterns keep part of the events out
    body = specs[0].body(0)
    assert body["payload"]["pipeline"][0]["with"]["occurrence"] == "${event.id}"
