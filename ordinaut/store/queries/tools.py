"""The tool catalog's rows: ``mcp_server`` and ``tool`` (see :mod:`ordinaut.tools.catalog`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection, Row

from ordinaut.store.tables import mcp_server, tool


def list_mcp_servers(conn: Connection) -> Sequence[Row[Any]]:
    """Every configured MCP server row, by name."""
    return conn.execute(sa.select(mcp_server).order_by(mcp_server.c.name)).all()


def get_mcp_server(conn: Connection, name: str) -> Row[Any] | None:
    """One MCP server row, or None."""
    return conn.execute(sa.select(mcp_server).where(mcp_server.c.name == name)).first()


def upsert_mcp_server(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert or replace an MCP server (``values`` has its columns); True when it is new."""
    insert = pg.insert(mcp_server).values(dict(values))
    upsert = insert.on_conflict_do_update(
        index_elements=[mcp_server.c.name],
        set_={
            **{k: insert.excluded[k] for k in values if k != "name"},
            "updated_at": sa.func.now(),
        },
    )
    return bool(conn.execute(upsert.returning(sa.literal_column("xmax = 0"))).scalar_one())


def list_tools(conn: Connection) -> Sequence[Row[Any]]:
    """Every registered tool row, by address."""
    return conn.execute(sa.select(tool).order_by(tool.c.address)).all()


def get_tool(conn: Connection, address: str) -> Row[Any] | None:
    """One registered tool row, or None."""
    return conn.execute(sa.select(tool).where(tool.c.address == address)).first()


def upsert_tool(conn: Connection, values: Mapping[str, Any], *, created_by: Any = None) -> bool:
    """Insert or replace a tool (``values`` has its columns); True when it is new.

    ``created_by`` is written only for a new tool.
    """
    insert = pg.insert(tool).values({**values, "created_by": created_by})
    upsert = insert.on_conflict_do_update(
        index_elements=[tool.c.address],
        set_={
            **{k: insert.excluded[k] for k in values if k != "address"},
            "updated_at": sa.func.now(),
        },
    )
    return bool(conn.execute(upsert.returning(sa.literal_column("xmax = 0"))).scalar_one())


def delete_tool(conn: Connection, address: str) -> bool:
    """Remove a tool; False when there was none."""
    return conn.execute(sa.delete(tool).where(tool.c.address == address)).rowcount > 0
