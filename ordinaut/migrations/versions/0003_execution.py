"""Execution: lag accounting on task_run, cache marker on step_result.

task_run.not_before is the earliest start that was asked for (jitter, retry backoff);
task_run.work_created_at is when its due_work row was written; step_result.cached marks a
step served from an earlier attempt's outcome (same idempotency key, no tool call).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_run", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "task_run", sa.Column("work_created_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "step_result",
        sa.Column("cached", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("step_result", "cached")
    op.drop_column("task_run", "work_created_at")
    op.drop_column("task_run", "not_before")
