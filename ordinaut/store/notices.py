"""Change notices: whether tasks or due work changed since the last question.

The migration ``0007_change_notices`` makes PostgreSQL send a notice on :data:`CHANNEL` when
one of those tables changes, unless the writing connection set :data:`SILENT` (see
:func:`ordinaut.store.engine.make_engine`). :class:`ChangeNotices` holds a listening
connection of its own and answers :meth:`ChangeNotices.pending` without a round trip (it
reads what already arrived on the socket). It answers ``True`` whenever it cannot know: not
yet listening, or the connection lost (it reconnects, at most every few seconds) — so a
caller that looks at the database on ``True`` never misses a change, it only looks more
often than needed.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time

import psycopg
from sqlalchemy.engine import Engine

log = logging.getLogger("ordinaut.store.notices")

CHANNEL = "ordinaut_changes"
SILENT = "ordinaut.silent"  # a session setting: this connection's changes send no notice
RECONNECT_EVERY = 5.0


class ChangeNotices:
    """A LISTEN connection on :data:`CHANNEL`, polled without blocking."""

    def __init__(self, engine: Engine, *, reconnect_every: float = RECONNECT_EVERY) -> None:
        self._reconnect_every = reconnect_every
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._next_connect = 0.0

    def pending(self) -> bool:
        """Whether a change may have happened since the last call (never blocks long)."""
        if self._conn is None:
            return self._connect()
        try:
            return any(True for _ in self._conn.notifies(timeout=0))
        except psycopg.Error:
            log.debug("change notices lost their connection", exc_info=True)
            self.close()
            return True

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a notice arrives; whether one (may have) arrived."""
        if self._conn is None:
            time.sleep(seconds)
            return self.pending()
        try:
            select.select([self._conn.fileno()], [], [], seconds)
        except (OSError, ValueError, psycopg.Error):  # the socket went away meanwhile
            self.close()
            return True
        return self.pending()

    def _connect(self) -> bool:
        if time.monotonic() < self._next_connect:
            return True
        self._next_connect = time.monotonic() + self._reconnect_every
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=5,
                application_name="ordinaut-notices",
            )
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            log.debug("change notices: cannot listen", exc_info=True)
            return True
        self._conn = conn
        return True  # what changed before listening began is unknown

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
