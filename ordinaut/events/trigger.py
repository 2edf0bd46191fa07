"""The trigger consumer: external events on the stream → due_work of the event tasks they fire.

Who reads: a Redis consumer group ``ordinaut-triggers`` on the stream ``<namespace>:events``,
read by the Celery task ``ordinaut.trigger`` on the control queue. The relay runs a pass
right after it appended external events (no extra hop), and beat's periodic maintenance
runs one as the backstop. Each consumer is named after its process (``host:pid``).

A pass, in order:

1. its own pending entries (``XREADGROUP … 0``: read earlier, never acknowledged because
   PostgreSQL failed), then entries another consumer read and left unacknowledged for
   ``claim_idle_ms`` (``XAUTOCLAIM``: that consumer died), then new ones (``XREADGROUP …
   >``);
2. in one transaction, for each external event (topic ``event.external.<topic>``): every
   event task it may reach whose pattern matches and whose filter holds (:func:`fires`)
   gets one ``event_fire`` row (primary key task + event id) and, when the row is new, one
   due_work row carrying the event (a paused task gets a ``skipped`` run instead); the
   outbox row is stamped ``triggered_at``;
3. in the same transaction, one webhook delivery per run event (``task.run.*``) for the
   task owner's webhook, if any (:mod:`ordinaut.events.webhooks`);
4. after the commit, ``XACK`` of every entry of the pass (other topics included).

So a consumer killed before the commit loses nothing (the entry stays pending and is
re-claimed), and one killed between commit and ``XACK`` doubles nothing (the ledger already
holds the pair). Redis losing the stream itself (a restart without the entries) loses
nothing either: :func:`backstop` reads, from PostgreSQL, external events relayed more than
``BACKSTOP_AFTER`` ago and never stamped, and handles them the same way.

**Who an event reaches.** An event published by agent A fires the event tasks of A, the
event tasks that list A in ``event_sources``, and — when A holds ``agents:admin`` — every
agent's event tasks. Only tasks that existed when the event was published are considered.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy.engine import Connection, Engine

from ordinaut.events import webhooks
from ordinaut.events.relay import stream_key
from ordinaut.pipeline.template import TemplateError, search, truthy
from ordinaut.scheduling import topics
from ordinaut.store import queries
from ordinaut.vocabulary import RunStatus, TaskStatus, Trigger

log = logging.getLogger("ordinaut.events")

GROUP = "ordinaut-triggers"
CLAIM_IDLE_MS = 30_000  # an entry unacknowledged this long belongs to a dead consumer
BACKSTOP_AFTER = timedelta(seconds=30)
TASK_PAGE = 500
READ_COUNT = 200  # entries per read, from each of the three sources
PAUSED_REASON = "task paused: the event was recorded, not run"


@dataclass(frozen=True)
class Event:
    """An external event as event tasks see it (``${event.…}`` in their pipelines)."""

    outbox_id: int
    id: uuid.UUID
    topic: str
    payload: Any
    agent_id: uuid.UUID
    admin: bool
    at: datetime

    def for_pipeline(self) -> dict[str, Any]:
        """The ``event`` object of a run this event started."""
        return {
            "id": str(self.id),
            "topic": self.topic,
            "payload": self.payload,
            "agent_id": str(self.agent_id),
            "at": self.at.isoformat(),
            "outbox_id": self.outbox_id,
        }


def external_event(outbox_id: int, topic: str, payload: Any) -> Event | None:
    """The external event an outbox row or stream entry carries, or None for other topics."""
    if not topic.startswith(queries.EXTERNAL_PREFIX) or not isinstance(payload, dict):
        return None
    try:
        return Event(
            outbox_id=outbox_id,
            id=uuid.UUID(str(payload["id"])),
            topic=str(payload["topic"]),
            payload=payload.get("payload") or {},
            agent_id=uuid.UUID(str(payload["agent_id"])),
            admin=bool(payload.get("admin", False)),
            at=datetime.fromisoformat(str(payload["at"])),
        )
    except (KeyError, ValueError):
        log.error("outbox %s: not an external event: %.200r", outbox_id, payload)
        return None


def fires(task: queries.EventTask, event: Event) -> bool:
    """True when ``event`` matches the task's pattern and its filter holds on the payload."""
    if not topics.matches(task.pattern, event.topic):
        return False
    if task.event_filter is None:
        return True
    try:
        return truthy(search(task.event_filter, event.payload))
    except Exception as exc:  # one task's filter must never stop the consumer (a poison entry)
        why = exc.message if isinstance(exc, TemplateError) else repr(exc)
        log.warning("task %s: event_filter failed on event %s: %s", task.id, event.id, why)
        return False


def handle(conn: Connection, events: Sequence[Event], now: datetime) -> tuple[int, int]:
    """Match ``events`` and write their work (caller's transaction); (due_work, skipped)."""
    matched: list[tuple[queries.EventTask, Event]] = []
    for event in events:
        after: uuid.UUID | None = None
        while True:
            page = queries.event_tasks(
                conn,
                publisher=event.agent_id,
                admin=event.admin,
                at=event.at,
                after=after,
                limit=TASK_PAGE,
            )
            matched.extend((task, event) for task in page if fires(task, event))
            if len(page) < TASK_PAGE:
                break
            after = page[-1].id
    new = queries.claim_fires(conn, [(task.id, event.id) for task, event in matched])
    work: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for task, event in matched:
        if (task.id, event.id) not in new:
            continue  # fired by an earlier pass (a re-delivered entry)
        if task.status is TaskStatus.PAUSED:
            skipped.append(
                {
                    "task_id": task.id,
                    "status": RunStatus.SKIPPED.value,
                    "trigger": Trigger.EVENT.value,
                    "scheduled_for": event.at,
                    "priority": task.priority,
                    "event": event.for_pipeline(),
                    "reason": PAUSED_REASON,
                    "finished_at": now,
                }
            )
        else:
            work.append(
                {
                    "task_id": task.id,
                    "run_at": event.at,
                    "priority": task.priority,
                    "event": event.for_pipeline(),
                }
            )
    written = queries.insert_event_work(conn, work)
    queries.insert_runs(conn, skipped)
    queries.emit(
        conn,
        [
            (
                "task.run.skipped",
                {
                    "task_id": str(s["task_id"]),
                    "scheduled_for": s["scheduled_for"].isoformat(),
                    "event_id": s["event"]["id"],
                    "reason": PAUSED_REASON,
                },
            )
            for s in skipped
        ],
    )
    queries.mark_triggered(conn, [event.outbox_id for event in events])
    return written, len(skipped)


def consumer_name() -> str:
    """This process's consumer name in the group."""
    return f"{socket.gethostname()}:{os.getpid()}"


Entry = tuple[str, dict[str, str]]


def ensure_group(client: redis.Redis, namespace: str) -> None:
    """Create the consumer group (from the stream's start) unless it exists."""
    try:
        client.xgroup_create(stream_key(namespace), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _entries(answer: Any) -> list[Entry]:
    """Entries of an XREADGROUP or XAUTOCLAIM list (RESP2 or RESP3 shape) for one stream.

    An entry trimmed from the stream while pending comes without fields: it is kept (so it
    is acknowledged) and carries no event.
    """
    if not answer:
        return []
    if isinstance(answer, dict):  # RESP3: {stream: [[entries]]}
        raw = [e for value in answer.values() for e in _flat(value)]
    else:  # RESP2: [[stream, [entries]]]
        raw = [e for _, value in answer for e in _flat(value)]
    return [(_text(i), {_text(k): _text(v) for k, v in (f or {}).items()}) for i, f in raw]


def _flat(value: Any) -> list[Any]:
    return list(value[0]) if value and isinstance(value[0], list) else list(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read(
    client: redis.Redis,
    namespace: str,
    consumer: str,
    *,
    count: int = 200,
    claim_idle_ms: int = CLAIM_IDLE_MS,
) -> list[Entry]:
    """One pass's entries: own pending, then re-claimed from dead consumers, then new."""
    stream = stream_key(namespace)
    try:
        own = client.xreadgroup(GROUP, consumer, {stream: "0"}, count=count)
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_group(client, namespace)
        own = client.xreadgroup(GROUP, consumer, {stream: "0"}, count=count)
    entries = _entries(own)
    claimed = client.xautoclaim(stream, GROUP, consumer, claim_idle_ms, "0-0", count=count)
    entries.extend(_entries([[stream, claimed[1]]]))
    entries.extend(_entries(client.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)))
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry[0] not in seen:
            seen.add(entry[0])
            unique.append(entry)
    return unique


def events_of(entries: Iterable[Entry]) -> list[Event]:
    """The external events among stream entries (see the README's entry format)."""
    found = []
    for _, fields in entries:
        try:
            payload = json.loads(fields.get("payload", "null"))
            event = external_event(int(fields["outbox_id"]), fields.get("topic", ""), payload)
        except (KeyError, ValueError):
            continue
        if event is not None:
            found.append(event)
    return found


def run_events(entries: Iterable[Entry]) -> list[tuple[int, str, Any, str]]:
    """``(outbox_id, topic, payload, at)`` of the run events among the entries (webhooks)."""
    found = []
    for _, fields in entries:
        if not fields.get("topic", "").startswith(webhooks.RUN_TOPICS):
            continue
        try:
            payload = json.loads(fields.get("payload", "null"))
            found.append((int(fields["outbox_id"]), fields["topic"], payload, fields.get("at", "")))
        except (KeyError, ValueError):
            continue
    return found


def ack(client: redis.Redis, namespace: str, entries: Sequence[Entry]) -> None:
    """Acknowledge handled entries (only after their work committed)."""
    if entries:
        client.xack(stream_key(namespace), GROUP, *[entry_id for entry_id, _ in entries])


@dataclass(frozen=True)
class PassResult:
    """What one trigger pass did."""

    entries: int
    events: int
    work: int
    skipped: int
    deliveries: int = 0


def consume(
    engine: Engine,
    client: redis.Redis,
    namespace: str,
    now: datetime,
    *,
    consumer: str | None = None,
    claim_idle_ms: int = CLAIM_IDLE_MS,
    max_passes: int = 20,
) -> PassResult:
    """Read, handle, commit, acknowledge — until the group has nothing more (bounded)."""
    name = consumer or consumer_name()
    entries_n = events_n = work_n = skipped_n = deliveries_n = 0
    for _ in range(max_passes):
        entries = read(client, namespace, name, count=READ_COUNT, claim_idle_ms=claim_idle_ms)
        if not entries:
            break
        events = events_of(entries)
        with engine.begin() as conn:
            work, skipped = handle(conn, events, now) if events else (0, 0)
            deliveries_n += webhooks.enqueue(conn, run_events(entries))
        ack(client, namespace, entries)
        entries_n += len(entries)
        events_n += len(events)
        work_n += work
        skipped_n += skipped
        if len(entries) < READ_COUNT:
            break  # the group had no more: no second round of reads to find that out
    if events_n:
        log.info("triggered events=%d due_work=%d skipped=%d", events_n, work_n, skipped_n)
    return PassResult(entries_n, events_n, work_n, skipped_n, deliveries_n)


def backlog(engine: Engine, now: datetime) -> queries.EventBacklog:
    """What the maintenance pass must do for events (one read-only query)."""
    with engine.connect() as conn:
        return queries.event_backlog(conn, now, before=now - BACKSTOP_AFTER)


def backstop(engine: Engine, now: datetime, *, after: timedelta = BACKSTOP_AFTER) -> int:
    """Handle external events relayed longer than ``after`` ago that no pass handled (the
    stream lost them); returns how many."""
    with engine.begin() as conn:
        rows = queries.untriggered_events(conn, before=now - after, limit=500)
        events = [e for r in rows if (e := external_event(r.id, r.topic, r.payload)) is not None]
        if events:
            handle(conn, events, now)
        queries.mark_triggered(conn, [r.id for r in rows])
    if rows:
        log.warning("trigger backstop handled %d events the stream did not deliver", len(rows))
    return len(rows)


PRUNE_BATCH = 5000


def prune(engine: Engine, now: datetime, *, days: int) -> dict[str, int]:
    """Forget the fire ledger, condition checks and finished webhook deliveries older than
    ``days`` (one bounded batch of each). A stream entry still unacknowledged after that
    long could fire its tasks again; the stream itself keeps far fewer days of events."""
    with engine.begin() as conn:
        return queries.prune_event_history(conn, now - timedelta(days=days), limit=PRUNE_BATCH)
