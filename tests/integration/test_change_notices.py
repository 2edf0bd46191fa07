"""Change notices (migrations 0007 and 0013, ordinaut.store.notices): beat's reason to look at
the database. A change to tasks or due work, or a run given a time to resume, is noticed; no
change, a rolled-back change, a statement that changes no row, any other update of a run and
a silent connection's (beat's own) changes are not; a lost connection says "maybe" and listens
again."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.store import queries
from ordinaut.store.engine import make_engine
from ordinaut.store.notices import ChangeNotices
from ordinaut.store.tables import task
from tests.integration.test_dispatch import add_due, make_task


def noticed(notices: ChangeNotices, within: float = 5.0) -> bool:
    """Whether a notice arrives within ``within`` seconds (delivery is asynchronous)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if notices.pending():
            return True
        time.sleep(0.02)
    return False


def settled(notices: ChangeNotices) -> ChangeNotices:
    assert notices.pending()  # before it listened, it cannot know: "maybe"
    assert not noticed(notices, within=0.3)
    return notices


def test_changes_are_noticed_and_nothing_else_is(engine: Engine, settings: Settings) -> None:
    notices = settled(ChangeNotices(engine))
    silent = make_engine(settings.database_url, silent=True)
    try:
        with engine.begin() as conn:
            task_id = make_task(conn)
        assert noticed(notices)
        assert not noticed(notices, within=0.3)  # one commit, one notice (drained)

        with engine.begin() as conn:
            add_due(conn, task_id, datetime.now(UTC))
        assert noticed(notices)

        with engine.connect() as conn:  # rolled back: nothing changed
            conn.execute(sa.update(task).where(task.c.id == task_id).values(title="x"))
            conn.rollback()
        assert not noticed(notices, within=0.5)

        with engine.begin() as conn:  # a statement that changes no row
            conn.execute(sa.update(task).where(sa.false()).values(title="x"))
        assert not noticed(notices, within=0.5)

        with silent.begin() as conn:  # beat's own writes: it knows
            conn.execute(sa.update(task).where(task.c.id == task_id).values(title="y"))
            add_due(conn, task_id, datetime(2030, 1, 1, tzinfo=UTC))
        assert not noticed(notices, within=0.5)
    finally:
        notices.close()
        silent.dispose()


def test_a_lost_listener_says_maybe_and_listens_again(engine: Engine) -> None:
    notices = settled(ChangeNotices(engine, reconnect_every=0.2))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'ordinaut-notices' AND datname = current_database()"
                )
            )
        assert noticed(notices)  # the connection is gone: any change may have been missed
        time.sleep(0.3)
        assert notices.pending()  # listening again; what happened in between is unknown
        assert not noticed(notices, within=0.3)
        with engine.begin() as conn:
            make_task(conn)
        assert noticed(notices)
    finally:
        notices.close()


def test_a_run_given_a_time_to_resume_is_noticed_and_wakes_beat_then(engine: Engine) -> None:
    # a deferred run (rate limit, quiet hours, approval timeout) resumes in a dispatch pass:
    # beat must hear that it has a resume time and wake for it, as for due work
    notices = settled(ChangeNotices(engine))
    try:
        with engine.begin() as conn:
            task_id = make_task(conn)
            run_id = conn.execute(
                sa.text(
                    "INSERT INTO task_run (task_id, status, scheduled_for) "
                    "VALUES (:t, 'queued', now()) RETURNING id"
                ),
                {"t": task_id},
            ).scalar_one()
        assert noticed(notices)  # the task
        assert not noticed(notices, within=0.3)
        with engine.begin() as conn:  # any other update of a run says nothing
            conn.execute(sa.text("UPDATE task_run SET priority = 3 WHERE id = :r"), {"r": run_id})
        assert not noticed(notices, within=0.5)
        resume_at = datetime.now(UTC) + timedelta(seconds=30)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE task_run SET status = 'deferred', resume_at = :at WHERE id = :r"),
                {"at": resume_at, "r": run_id},
            )
        assert noticed(notices)
        with engine.connect() as conn:
            now = datetime.now(UTC)
            wake = queries.next_wake(conn, now, since=now)
            assert wake.next_work_at == resume_at and not wake.became_due
            later = resume_at + timedelta(seconds=1)
            assert queries.next_wake(conn, later, since=now).became_due  # it came: dispatch
            assert not queries.next_wake(conn, later, since=later).became_due  # told once
    finally:
        notices.close()
