"""Suspended runs and approvals: a run can stop before a step and resume from it later.

``task_run`` gains the suspension columns (which step, its rendered arguments, why, and
what happens at ``resume_at``), the steps whose approval it passed and its pipeline's
``${now}``; ``tool`` gains ``requires_approval``; ``agent`` gains ``limits``; and
``pending_change`` keeps the creates and updates that crossed a limit until a person decides.

Revision ID: 0008_approvals
Revises: 0007_notices
Create Date: 2026-12-02 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0008_approvals"
down_revision: str | None = "0007_notices"
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
    op.add_column("agent", sa.Column("limits", pg.JSONB, nullable=True))
    op.create_table(
        "pending_change",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()")),
        sa.Column("agent_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("task_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("body", pg.JSONB, nullable=False),
        sa.Column("diff", pg.JSONB, nullable=False),
        sa.Column("exceeded", pg.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decided_by", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("result_task_id", pg.UUID(as_uuid=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_change")),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent.id"],
            name=op.f("fk_pending_change_agent_id_agent"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["agent.id"], name=op.f("fk_pending_change_decided_by_agent")
        ),
        sa.CheckConstraint(
            "kind IN ('create_task', 'update_task')", name=op.f("ck_pending_change_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_pending_change_status_known"),
        ),
        sa.UniqueConstraint(
            "agent_id", "idempotency_key", name=op.f("uq_pending_change_agent_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_pending_change_status_created_at", "pending_change", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_pending_change_status_created_at", table_name="pending_change")
    op.drop_table("pending_change")
    op.drop_column("agent", "limits")
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
