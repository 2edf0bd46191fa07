"""Dispatch shares between agents: round-robin leasing within a priority, a bounded queue
window, worker pools and runs_per_day counted in dispatch's own transaction (real PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.runs import dispatch as dispatching
from ordinaut.runs.dispatch import QueuedRun, message_groups
from ordinaut.store import queries
from ordinaut.tools import catalog
from ordinaut.tools.spec import ToolSpec, Transport
from tests.integration.test_dispatch import ECHO, NS, make_task

NOW = datetime.now(UTC)


def agent(engine: Engine, name: str) -> uuid.UUID:
    with engine.begin() as conn:
        made: uuid.UUID = conn.execute(
            sa.text("INSERT INTO agent (name, scopes) VALUES (:n, '{}') RETURNING id"), {"n": name}
        ).scalar_one()
        return made


def burst(
    engine: Engine,
    owner: uuid.UUID,
    count: int,
    start: datetime,
    priority: int = 5,
    **fields: object,
) -> uuid.UUID:
    """A task of ``owner`` with ``count`` due rows from ``start`` on, a millisecond apart."""
    with engine.begin() as conn:
        task_id = make_task(conn, ECHO, **fields)
        conn.execute(
            sa.text("UPDATE task SET created_by = :a WHERE id = :t"), {"a": owner, "t": task_id}
        )
        queries.insert_due_work(
            conn,
            [
                {
                    "task_id": task_id,
                    "run_at": start + timedelta(milliseconds=i),
                    "priority": priority,
                }
                for i in range(count)
            ],
        )
    return task_id


def owners(engine: Engine, queued: list[QueuedRun]) -> list[uuid.UUID]:
    with engine.connect() as conn:
        found: dict[uuid.UUID, uuid.UUID] = dict(
            conn.execute(
                sa.text(
                    "SELECT r.id, t.created_by FROM task_run r JOIN task t ON t.id = r.task_id "
                    "WHERE r.id = ANY(:ids)"
                ),
                {"ids": [q.id for q in queued]},
            ).all()
        )
    return [found[q.id] for q in queued]


def test_a_later_agent_gets_every_other_place_in_the_batch(engine: Engine) -> None:
    a, b = agent(engine, "a"), agent(engine, "b")
    burst(engine, a, 200, NOW - timedelta(minutes=5))  # A's backlog is older
    burst(engine, b, 5, NOW - timedelta(seconds=1))
    batch = dispatching.dispatch_batch(engine, NS, NOW, 10)
    assert owners(engine, batch.queued) == [a, b] * 5


def test_priority_still_comes_first(engine: Engine) -> None:
    a, b = agent(engine, "a"), agent(engine, "b")
    burst(engine, a, 20, NOW - timedelta(minutes=5), priority=1)
    burst(engine, b, 5, NOW - timedelta(minutes=9))
    batch = dispatching.dispatch_batch(engine, NS, NOW, 10)
    assert owners(engine, batch.queued) == [a] * 10


def test_the_queue_window_bounds_what_waits_queued(engine: Engine) -> None:
    a = agent(engine, "a")
    burst(engine, a, 30, NOW - timedelta(minutes=1))
    first = dispatching.dispatch_batch(engine, NS, NOW, 20, window=8)
    assert len(first.queued) == 8 and first.held_back
    second = dispatching.dispatch_batch(engine, NS, NOW, 20, window=8)
    assert second.leased == 0 and second.held_back
    with engine.begin() as conn:  # four of the eight started: less than half the window free
        conn.execute(
            sa.text(
                "UPDATE task_run SET status = 'running' WHERE id IN "
                "(SELECT id FROM task_run WHERE status = 'queued' LIMIT 3)"
            )
        )
    third = dispatching.dispatch_batch(engine, NS, NOW, 20, window=8)
    assert third.leased == 0 and third.held_back
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE task_run SET status = 'running' WHERE id IN "
                "(SELECT id FROM task_run WHERE status = 'queued' LIMIT 1)"
            )
        )
    fourth = dispatching.dispatch_batch(engine, NS, NOW, 20, window=8)
    assert len(fourth.queued) == 4  # half the window free: refilled in one batch
    total = dispatching.dispatch(engine, NS, lambda: NOW, lambda runs: None, batch_size=5)
    assert len(total.queued) == 18  # no window: the rest at once


def test_pool_runs_are_routed_and_say_so(engine: Engine) -> None:
    a = agent(engine, "a")
    burst(engine, a, 2, NOW - timedelta(minutes=1), worker_pool="home")
    burst(engine, a, 2, NOW - timedelta(minutes=1))
    batch = dispatching.dispatch_batch(engine, NS, NOW, 10)
    assert sorted(str(q.pool) for q in batch.queued) == ["None", "None", "home", "home"]
    groups = message_groups(batch.queued)
    assert all(len({run.pool for run in group}) == 1 for group in groups)
    with engine.connect() as conn:
        decisions = conn.execute(
            sa.text("SELECT decisions FROM task_run WHERE worker_pool = 'home'")
        ).scalars()
        for entries in decisions:
            assert entries[0]["queue"] == f"{NS}.runs.home"


def test_runs_per_day_of_an_agent_counts_across_its_tasks_and_batches(engine: Engine) -> None:
    a = agent(engine, "a")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE agent SET budgets = CAST(:b AS jsonb) WHERE id = :a"),
            {"b": json.dumps({"tz": "UTC", "runs_per_day": 3}), "a": a},
        )
    burst(engine, a, 2, NOW - timedelta(minutes=1))
    burst(engine, a, 2, NOW - timedelta(minutes=1))
    first = dispatching.dispatch_batch(engine, NS, NOW, 3)
    second = dispatching.dispatch_batch(engine, NS, NOW, 3)
    assert len(first.queued) + len(second.queued) == 3
    assert first.skipped + second.skipped == 1
    with engine.connect() as conn:
        (reason,) = conn.execute(
            sa.text("SELECT reason FROM task_run WHERE status = 'skipped'")
        ).scalars()
        used = conn.execute(
            sa.text("SELECT used FROM budget_usage WHERE subject_id = :a"), {"a": a}
        ).scalar_one()
    assert reason.startswith("budget_exceeded: agent budget runs_per_day 3 of 3")
    assert used == 3


def test_a_digest_has_one_leader_and_collects_the_others_arguments(engine: Engine) -> None:
    a = agent(engine, "a")
    task_id = burst(engine, a, 0, NOW)
    until = NOW + timedelta(hours=1)
    leader, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def join(run_id: uuid.UUID, n: int, max_items: int = 3) -> uuid.UUID | None:
        with engine.begin() as conn:
            return queries.join_digest(
                conn,
                task_id=task_id,
                step_path="send",
                until=until,
                run_id=run_id,
                args={"n": n},
                max_items=max_items,
            )

    assert join(leader, 1) == leader
    assert join(second, 2) == leader
    assert join(leader, 1) == leader  # the leader asking again still leads, adds nothing
    assert join(third, 3) == leader
    assert join(uuid.uuid4(), 4) is None  # full: that run defers on its own
    with engine.begin() as conn:
        assert queries.digest_items(conn, leader, "send") == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert queries.digest_items(conn, second, "send") is None
        queries.close_digest(conn, leader, "send")
        assert queries.digest_items(conn, leader, "send") is None


def test_a_catalog_tool_with_a_pool_routes_the_runs_of_tasks_that_use_it(engine: Engine) -> None:
    with engine.begin() as conn:
        catalog.save_tool(
            conn,
            ToolSpec(
                address="lab.probe",
                transport=Transport.HTTP,
                endpoint="http://127.0.0.1:1/probe",
                input_schema={"type": "object"},
                output_schema={"type": "object"},
                worker_pool="lab",
            ),
        )
        loop = {
            "id": "each",
            "uses": "pipeline.foreach",
            "with": {"items": [1], "body": [{"id": "p", "uses": "lab.probe", "with": {}}]},
        }
        task_id = make_task(
            conn,
            {"pipeline": [loop]},
            next_run_at=NOW - timedelta(seconds=1),
            next_occurrence_at=NOW - timedelta(seconds=1),
        )
        (due,) = queries.claim_due_tasks(conn, NOW, 10)
        assert due.id == task_id and due.dispatched and not due.runs_freely
        queries.insert_due_work(conn, [{"task_id": task_id, "run_at": NOW}])
    batch = dispatching.dispatch_batch(engine, NS, NOW, 10)
    assert [q.pool for q in batch.queued] == ["lab"]
