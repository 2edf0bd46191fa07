"""Is the database answering?"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_PING = sa.text("SELECT 1")


def ping(conn: Connection) -> None:
    """One round trip; raises when the database does not answer."""
    conn.execute(_PING)
