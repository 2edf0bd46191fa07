"""The event side's pure rules: condition edges and cooldown, webhook signatures and
backoff, who sees which stream entry, and which event fires which task."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ordinaut.events import feed, trigger, webhooks
from ordinaut.runs.conditions import decide
from ordinaut.store.queries import EventTask
from ordinaut.vocabulary import TaskStatus

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "result", "fired_ago", "cooldown", "fires", "state", "why"),
    [
        (None, True, None, None, True, True, "turned true"),  # the first check counts
        (False, True, None, None, True, True, "turned true"),
        (True, True, None, None, False, True, "still true"),
        (True, False, None, None, False, False, "false"),
        (None, False, None, None, False, False, "false"),
        (False, None, None, None, False, False, "check failed"),  # state kept
        (True, None, None, None, False, True, "check failed"),
        (False, True, 60, 3600, False, True, "cooldown"),
        (False, True, 7200, 3600, True, True, "turned true"),
        (False, True, 60, None, True, True, "turned true"),
    ],
)
def test_condition_decisions(
    previous: bool | None,
    result: bool | None,
    fired_ago: int | None,
    cooldown: int | None,
    fires: bool,
    state: bool | None,
    why: str,
) -> None:
    fired_at = NOW - timedelta(seconds=fired_ago) if fired_ago is not None else None
    got = decide(previous, result, fired_at=fired_at, cooldown_seconds=cooldown, now=NOW)
    assert got[:2] == (fires, state)
    assert why in got[2]


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":1}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("whsec_k", 1700000000, body) == "sha256=" + expected
    assert webhooks.signature("whsec_k", 1700000001, body) != "sha256=" + expected
    assert webhooks.new_secret() != webhooks.new_secret()


def test_retry_delays_double_up_to_an_hour() -> None:
    assert [webhooks.retry_delay(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert webhooks.retry_delay(30, 10) == 3600


ME, OTHER = uuid.uuid4(), uuid.uuid4()
MY_TASK, OTHER_TASK = uuid.uuid4(), uuid.uuid4()


def entry(n: int, topic: str, payload: object) -> feed.FeedEntry:
    return feed.FeedEntry(f"{n}-0", n, topic, payload, "")


ENTRIES = [
    entry(1, "task.created", {"task_id": str(MY_TASK)}),
    entry(2, "task.run.started", {"task_id": str(OTHER_TASK)}),
    entry(3, "event.external.mail.in", {"agent_id": str(ME), "payload": {}}),
    entry(4, "event.external.mail.in", {"agent_id": str(OTHER), "payload": {}}),
    entry(5, "agent.revoked", {"agent_id": "x"}),
    entry(6, "task.run.failed", {"task_id": "not-a-uuid"}),
]


def owned(ids: set[uuid.UUID]) -> set[uuid.UUID]:
    return ids & {MY_TASK}


def test_an_agent_sees_its_tasks_and_its_own_external_events() -> None:
    shown = feed.visible(ENTRIES, agent_id=ME, admin=False, owned=owned, topic=None)
    assert [e.outbox_id for e in shown] == [1, 3]
    everything = feed.visible(ENTRIES, agent_id=ME, admin=True, owned=owned, topic=None)
    assert len(everything) == len(ENTRIES)
    runs = feed.visible(ENTRIES, agent_id=ME, admin=True, owned=owned, topic="task.run.*")
    assert [e.outbox_id for e in runs] == [2, 6]


@pytest.mark.parametrize("cursor", ["0-0", "1733140000000-12"])
def test_cursors(cursor: str) -> None:
    assert feed.check_cursor(cursor) == cursor


@pytest.mark.parametrize("cursor", ["", "yesterday", "1-", "-1", "1-1-1", "1" * 21 + "-0"])
def test_bad_cursors_name_the_field(cursor: str) -> None:
    with pytest.raises(Exception) as caught:
        feed.check_cursor(cursor, field="Last-Event-ID")
    assert getattr(caught.value, "field", None) == "Last-Event-ID"


def task(pattern: str, event_filter: str | None = None) -> EventTask:
    return EventTask(uuid.uuid4(), ME, pattern, event_filter, TaskStatus.ACTIVE, 5)


def event(topic: str, payload: object) -> trigger.Event:
    return trigger.Event(1, uuid.uuid4(), topic, payload, ME, False, NOW)


@pytest.mark.parametrize(
    ("pattern", "event_filter", "topic", "payload", "fires"),
    [
        ("mail.*", None, "mail.in", {}, True),
        ("mail.*", None, "calendar.in", {}, False),
        ("mail.*", "priority == 'high'", "mail.in", {"priority": "high"}, True),
        ("mail.*", "priority == 'high'", "mail.in", {"priority": "low"}, False),
        ("mail.*", "priority == 'high'", "mail.in", {}, False),
        ("#", "n > `1`", "x", {"n": 2}, True),
        ("#", "n > `1`", "x", {"n": "two"}, False),  # a filter that fails does not fire
    ],
)
def test_which_event_fires_which_task(
    pattern: str, event_filter: str | None, topic: str, payload: object, fires: bool
) -> None:
    assert trigger.fires(task(pattern, event_filter), event(topic, payload)) is fires


def test_external_events_are_read_back_from_the_outbox_shape() -> None:
    payload = {
        "id": str(uuid.uuid4()),
        "topic": "mail.in",
        "payload": {"a": 1},
        "agent_id": str(ME),
        "admin": True,
        "at": NOW.isoformat(),
    }
    got = trigger.external_event(7, "event.external.mail.in", payload)
    assert got is not None and got.admin and got.payload == {"a": 1} and got.at == NOW
    assert got.for_pipeline()["outbox_id"] == 7
    assert trigger.external_event(7, "task.created", payload) is None
    assert trigger.external_event(7, "event.external.x", {"id": "nope"}) is None
