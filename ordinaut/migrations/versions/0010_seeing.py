"""Metrics rollups: /metrics stays cheap however long the history grows.

``metric_rollup`` holds the counters of everything that finished up to
``metric_watermark.rolled_until`` (runs by status; steps by tool address: duration buckets,
their sum, successes); a scrape adds what finished after it (see
:mod:`ordinaut.store.queries.metrics`). The index on ``task_run.finished_at`` finds both
the rows to roll up and the open runs (``finished_at IS NULL``).

Revision ID: 0010_seeing
Revises: 0008_approvals
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_seeing"
down_revision: str | None = "0008_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_rollup",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("le", sa.Double, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("seconds", sa.Double, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("kind", "label", "le", name="pk_metric_rollup"),
    )
    op.create_table(
        "metric_watermark",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_watermark"),
        sa.CheckConstraint("id = 1", name="ck_metric_watermark_one_row"),
    )
    op.execute("INSERT INTO metric_watermark (id, rolled_until) VALUES (1, '1970-01-01T00:00:00Z')")
    op.create_index("ix_task_run_finished_at", "task_run", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_task_run_finished_at", table_name="task_run")
    op.drop_table("metric_watermark")
    op.drop_table("metric_rollup")
