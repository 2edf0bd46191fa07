"""Suspended runs and approvals: a run can stop before a step and resume from it later.

``task_run`` gains the suspension columns (which step, its rendered arguments, why, and
what happens at ``resume_at``), the steps whose approval it passed and its pipeline's
``${now}``; ``tool`` gains ``requires_approval``.

Revision ID: 0008_approvals
Revises: 0006_direct_runs
Create Date: 2026-12-02 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0008_approvals"
down_revision: str | None = "0006_direct_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("task_run", sa.Column("suspended_at", TZ, nullable=True))
    op.add_column("task_run", sa.Column("suspended_step", sa.Text, nullable=True))
    op.add_column("task_run", sa.Column("suspended_input", pg.JSONB, nullable=True))
    op.add_column("task_run", sa.Column("suspend_reason", sa.Text, nullable=True))
    op.add_column("task_run", sa.Column("resume_at", TZ, nullable=True))
    op.add_column("task_run", sa.Column("resume_action", sa.Text, nullable=True))
    op.add_column(
        "task_run",
        sa.Column("approved_steps", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    )
    op.add_column("task_run", sa.Column("pipeline_now", TZ, nullable=True))
    op.add_column(
        "task_run",
        sa.Column(
            "decided_by",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("agent.id", name=op.f("fk_task_run_decided_by_agent")),
            nullable=True,
        ),
    )
    op.create_check_constraint(
        op.f("ck_task_run_resume_action_known"),
        "task_run",
        "resume_action IS NULL OR resume_action IN ('resume', 'approve', 'reject')",
    )
    op.create_index(
        "ix_task_run_resume_at",
        "task_run",
        ["resume_at"],
        postgresql_where=sa.text("resume_at IS NOT NULL"),
    )
    op.add_column(
        "tool",
        sa.Column("requires_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("tool", "requires_approval")
    op.drop_index("ix_task_run_resume_at", table_name="task_run")
    op.drop_constraint(op.f("ck_task_run_resume_action_known"), "task_run", type_="check")
    for column in (
        "decided_by",
        "pipeline_now",
        "approved_steps",
        "resume_action",
        "resume_at",
        "suspend_reason",
        "suspended_input",
        "suspended_step",
        "suspended_at",
    ):
        op.drop_column("task_run", column)
