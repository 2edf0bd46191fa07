"""The soak's event tasks, the publisher that feeds them, and the rule of who an event fires.

Event tasks listen on topics of the shape ``<area>.<verb>`` (four areas, three verbs), a fifth
of them one segment deeper (``mail.created.urgent``), with patterns of every form: exact,
``*`` (one segment), ``#`` (any number), a pattern no topic reaches, and JMESPath filters
that hold for part of the payloads (``priority == 'high'``, ``weight > `6` ``, ``contains(tags,
'red')`` …). Each pipeline calls the tool server twice like the scheduled tasks, with the
event id as the occurrence, so the tool server's ledger audits side effects per (task, event,
step).

:class:`Publisher` is a thread that publishes through the real API (``POST /events``) at a
steady rate, each event with a unique ``uid`` in its payload and that ``uid`` as the request's
``Idempotency-Key``: a failed request (API or PostgreSQL down) is retried with the same key, so
an event that committed while its answer was lost is answered by a replay, never published
twice. Only events answered ``202`` are recorded; one given up on is counted, not expected.

:func:`fires` is the audit's independent answer to "does this event start this task": the
pattern rule segment by segment (no regular expression, unlike ``ordinaut.scheduling.topics``)
and the filter with the ``jmespath`` library itself, JMESPath truthiness.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jmespath

from bench.chaos.workload import TOOL

AREAS = ("mail", "calendar", "files", "chat")
VERBS = ("created", "updated", "deleted")
TAGS = ("red", "green", "blue")
DEEP_SHARE = 0.2  # of events one segment deeper: ``<area>.<verb>.urgent``
# (pattern, filter) templates, cycled over the tasks; {a} and {v} are drawn per task
SHAPES: tuple[tuple[str, str | None], ...] = (
    ("{a}.{v}", None),
    ("{a}.*", None),
    ("{a}.#", "priority == 'high'"),
    ("*.{v}", "weight > `6`"),
    ("{a}.*.urgent", None),
    ("#", "weight == `3`"),
    ("{a}", None),  # ``{a}`` alone: no published topic is that short
    ("elsewhere.#", None),  # nothing is published there
    ("*.*", "contains(tags, 'red')"),
    ("{a}.{v}.*", "priority == 'low' && weight < `5`"),
)


@dataclass(frozen=True)
class EventTaskSpec:
    """One event task to create, as the body of ``POST /tasks``."""

    pattern: str
    event_filter: str | None

    def body(self, index: int) -> dict[str, Any]:
        args = {"task": "${run.task_id}", "occurrence": "${event.id}", "ckey": ""}
        made: dict[str, Any] = {
            "title": f"chaos event {index}",
            "schedule_kind": "event",
            "schedule_expr": self.pattern,
            "payload": {
                "pipeline": [
                    {"id": step, "uses": TOOL, "with": {**args, "step": step}}
                    for step in ("first", "second")
                ]
            },
        }
        if self.event_filter is not None:
            made["event_filter"] = self.event_filter
        return made


def plan(count: int, rng: random.Random) -> list[EventTaskSpec]:
    """``count`` event tasks, the shapes in turn, areas and verbs drawn from ``rng``."""
    specs = []
    for i in range(count):
        pattern, event_filter = SHAPES[i % len(SHAPES)]
        specs.append(
            EventTaskSpec(pattern.format(a=rng.choice(AREAS), v=rng.choice(VERBS)), event_filter)
        )
    return specs


def draw(rng: random.Random, uid: str) -> tuple[str, dict[str, Any]]:
    """One event's topic and payload."""
    topic = f"{rng.choice(AREAS)}.{rng.choice(VERBS)}"
    if rng.random() < DEEP_SHARE:
        topic += ".urgent"
    payload = {
        "uid": uid,
        "priority": rng.choice(("high", "low")),
        "weight": rng.randrange(10),
        "tags": rng.sample(TAGS, rng.randrange(3)),
    }
    return topic, payload


def topic_matches(pattern: str, topic: str) -> bool:
    """The AMQP topic rule: ``*`` is one segment, ``#`` zero or more, anything else itself."""
    want, have = pattern.split("."), topic.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i] in ("*", have[j]) and match(i + 1, j + 1)

    return match(0, 0)


def fires(spec: EventTaskSpec, topic: str, payload: Any) -> bool:
    """Whether an event (its public topic, its payload) starts a task of ``spec``."""
    if not topic_matches(spec.pattern, topic):
        return False
    if spec.event_filter is None:
        return True
    value = jmespath.search(spec.event_filter, payload)
    return value not in (None, False, "", [], {})


@dataclass(frozen=True)
class Published:
    """An event the API accepted (202): its id, public topic, payload and time."""

    id: str
    topic: str
    payload: dict[str, Any]
    at: datetime


class Publisher:
    """Publishes ``rate`` events a second through ``client`` until stopped (a thread)."""

    ATTEMPTS = 4  # tries per event, a second apart, with the same Idempotency-Key

    def __init__(self, client: httpx.Client, rate: float, seed: int) -> None:
        self.client, self.rate, self.seed = client, rate, seed
        self.accepted: list[Published] = []
        self.retried = 0  # requests sent again with the same key after a failure
        self.given_up = 0  # events never answered 202: not expected to fire
        self.refused: dict[int, int] = {}  # 4xx answers by status (a bug of this bench)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _loop(self) -> None:
        rng = random.Random(f"events-{self.seed}")
        interval = 1.0 / self.rate
        due = time.monotonic()
        n = 0
        while not self._stop.is_set():
            n += 1
            topic, payload = draw(rng, f"s{self.seed}-e{n}")
            self._publish(topic, payload)
            due = max(due + interval, time.monotonic())  # late: carry on, no burst
            self._stop.wait(due - time.monotonic())

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        for attempt in range(self.ATTEMPTS):
            if attempt:
                if self._stop.wait(1.0):
                    break
                self.retried += 1
            try:
                answer = self.client.post(
                    "/events",
                    json={"topic": topic, "payload": payload},
                    headers={"Idempotency-Key": str(payload["uid"])},
                )
            except httpx.HTTPError:
                continue
            if answer.status_code == 202:
                body = answer.json()
                at = datetime.fromisoformat(body["accepted_at"])
                self.accepted.append(Published(str(body["id"]), topic, payload, at))
                return
            if answer.status_code < 500:
                self.refused[answer.status_code] = self.refused.get(answer.status_code, 0) + 1
                break
        self.given_up += 1
