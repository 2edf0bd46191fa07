"""Change notices (migration 0007, ordinaut.store.notices): beat's reason to look at the
database. A change to tasks, due work or the outbox is noticed; no change, a rolled-back
change and a statement that changes no row are not; a lost connection says "maybe" and
listens again."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.store import queries
from ordinaut.store.notices import ChangeNotices
from ordinaut.store.tables import task


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


def test_changes_are_noticed_and_nothing_else_is(engine: Engine) -> None:
    notices = settled(ChangeNotices(engine))
    try:
        with engine.begin() as conn:
            queries.emit(conn, [("test.event", {"n": 1})])
        assert noticed(notices)
        assert not noticed(notices, within=0.3)  # one commit, one notice (drained)

        with engine.connect() as conn:  # rolled back: nothing changed
            queries.emit(conn, [("test.event", {"n": 2})])
            conn.rollback()
        assert not noticed(notices, within=0.5)

        with engine.begin() as conn:  # a statement that changes no row
            conn.execute(sa.update(task).where(sa.false()).values(title="x"))
        assert not noticed(notices, within=0.5)
    finally:
        notices.close()


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
            queries.emit(conn, [("test.event", {"n": 3})])
        assert noticed(notices)
    finally:
        notices.close()
