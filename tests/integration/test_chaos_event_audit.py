"""The chaos soak's event audit is not vacuous: against a real store it counts an event not
yet handled as unfinished, a fire whose due work vanished as lost, an accepted event missing
from the outbox, a (task, event) started twice as doubled, a run for a task the event does
not match, and a run carrying another payload than published."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.chaos import event_audit, events
from bench.chaos.audit import Report
from ordinaut.clock import utcnow
from ordinaut.events import trigger
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import EventIn, TaskCreate
from ordinaut.store import queries
from ordinaut.vocabulary import ScheduleKind

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {}}]}
SPECS = [
    events.EventTaskSpec("mail.*", None),
    events.EventTaskSpec("mail.#", "priority == 'high'"),
    events.EventTaskSpec("chat.*", None),
]


def audit(
    engine: Engine,
    tasks: list[event_audit.CreatedEventTask],
    published: list[events.Published],
) -> Report:
    report = Report()
    event_audit.classify(report, engine, tasks, published)
    return report


def test_the_event_audit_counts_what_went_wrong(
    service: tuple[Service, Principal], engine: Engine
) -> None:
    svc, p = service
    tasks = []
    for spec in SPECS:
        made = svc.create_task(
            p,
            TaskCreate(
                title=spec.pattern,
                schedule_kind=ScheduleKind.EVENT,
                schedule_expr=spec.pattern,
                event_filter=spec.event_filter,
                payload=ECHO,
            ),
        )
        tasks.append(event_audit.CreatedEventTask(str(made.id), spec, made.created_at))
    published = []
    for uid, priority in (("a", "high"), ("b", "low")):
        payload: dict[str, Any] = {"uid": uid, "priority": priority}
        sent = svc.publish_event(p, EventIn(topic="mail.created", payload=payload))
        published.append(events.Published(str(sent.id), "mail.created", payload, sent.accepted_at))
    high, low = published
    never = events.Published(str(uuid.uuid4()), "mail.created", {"priority": "low"}, utcnow())

    # nothing handled yet: in flight, except the event the outbox never got
    report = audit(engine, tasks, [*published, never])
    assert report.event_buckets == {"unfinished": 3, "lost": 1}
    assert report.must_be_zero["accepted events missing from the outbox"] == 1

    # the trigger consumer's own handling (as from the stream): due work for the three pairs
    with engine.begin() as conn:
        outbox = conn.execute(
            sa.text("SELECT id, topic, payload FROM outbox WHERE topic LIKE 'event.external.%'")
        ).all()
        found = [trigger.external_event(r.id, r.topic, r.payload) for r in outbox]
        assert trigger.handle(conn, [e for e in found if e is not None], utcnow()) == (3, 0)
    report = audit(engine, tasks, published)
    assert report.event_buckets == {"unfinished": 3}
    assert report.info["event fire-ledger rows"] == 3
    assert report.clean is False  # unfinished is a must-be-0 figure after the drain

    mail_star, mail_high, chat = (t.id for t in tasks)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM due_work WHERE task_id = :t OR (task_id = :u AND event->>'id' = :e)"
            ),
            {"t": mail_high, "u": mail_star, "e": low.id},
        )

        def run(task: str, event: events.Published, at_offset: int, **event_over: Any) -> None:
            carried = {"id": event.id, "topic": event.topic, "payload": event.payload}
            queries.insert_runs(
                conn,
                [
                    {
                        "task_id": task,
                        "status": "skipped",
                        "trigger": "event",
                        "scheduled_for": event.at + timedelta(microseconds=at_offset),
                        "event": {**carried, **event_over},
                        "reason": "test: recorded",
                        "finished_at": utcnow(),
                    }
                ],
            )

        run(mail_star, low, 0, payload={"uid": "b", "priority": "high"})  # altered
        run(chat, high, 0)  # chat.* does not match mail.created
        run(mail_star, high, 1)
        run(mail_star, high, 2)  # the same (task, event) started twice
    report = audit(engine, tasks, published)
    # (mail.*, high) skipped twice; (mail.*, low) skipped once; (mail.#, high) lost
    assert report.event_buckets == {"skipped": 2, "lost": 1}
    assert report.must_be_zero["event fires lost"] == 1
    assert report.must_be_zero["event fires doubled"] == 1
    assert report.must_be_zero["event runs for a (task, event) that does not match"] == 1
    assert report.must_be_zero["event runs carrying another event than published"] == 1
    assert report.must_be_zero["accepted events missing from the outbox"] == 0
