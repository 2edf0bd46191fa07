"""Tool catalog: mcp_server (url or stdio command) and tool (http/mcp tools by address).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            name,
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        )
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    op.create_table(
        "mcp_server",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("args", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "env",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("auth", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "(url IS NULL) <> (command IS NULL)", name=op.f("ck_mcp_server_url_or_command")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mcp_server")),
    )
    op.create_table(
        "tool",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("transport", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("server", sa.Text(), nullable=True),
        sa.Column("remote_name", sa.Text(), nullable=True),
        sa.Column("input_schema", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("output_schema", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), server_default="30", nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("cost_hints", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("auth", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("transport IN ('http', 'mcp')", name=op.f("ck_tool_transport_known")),
        sa.CheckConstraint(
            "transport <> 'http' OR endpoint IS NOT NULL", name=op.f("ck_tool_http_has_endpoint")
        ),
        sa.CheckConstraint(
            "transport <> 'mcp' OR (server IS NOT NULL AND remote_name IS NOT NULL)",
            name=op.f("ck_tool_mcp_has_server"),
        ),
        sa.CheckConstraint("timeout_seconds > 0", name=op.f("ck_tool_timeout_positive")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["agent.id"], name=op.f("fk_tool_created_by_agent")
        ),
        sa.ForeignKeyConstraint(
            ["server"], ["mcp_server.name"], name=op.f("fk_tool_server_mcp_server")
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_tool")),
    )
    op.create_index("ix_tool_server", "tool", ["server"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tool_server", table_name="tool")
    op.drop_table("tool")
    op.drop_table("mcp_server")
