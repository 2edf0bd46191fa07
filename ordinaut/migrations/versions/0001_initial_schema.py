"""Initial schema: agent, task, due_work, task_run, step_result, audit_log, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:50:14.309905
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent")),
        sa.UniqueConstraint("name", name=op.f("uq_agent_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_token_hash")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("actor_agent_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_agent_id"], ["agent.id"], name=op.f("fk_audit_log_actor_agent_id_agent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_subject_id", "audit_log", ["subject_id"], unique=False)
    op.create_table(
        "task",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=False),
        sa.Column(
            "schedule_kind",
            postgresql.ENUM("cron", "rrule", "once", "event", "condition", name="schedule_kind"),
            nullable=False,
        ),
        sa.Column("schedule_expr", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), server_default="Europe/Chisinau", nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="5", nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("dedupe_window_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default="3", nullable=False),
        sa.Column(
            "backoff_strategy", sa.Text(), server_default="exponential_jitter", nullable=False
        ),
        sa.Column("concurrency_key", sa.Text(), nullable=True),
        sa.Column("concurrency_limit", sa.Integer(), server_default="1", nullable=False),
        sa.Column("overlap_policy", sa.Text(), server_default="allow", nullable=False),
        sa.Column("misfire_policy", sa.Text(), server_default="run_once", nullable=False),
        sa.Column("jitter_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("next_occurrence_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "backoff_strategy IN ('exponential_jitter', 'exponential', 'fixed', 'none')",
            name=op.f("ck_task_backoff_strategy_known"),
        ),
        sa.CheckConstraint(
            "misfire_policy IN ('run_once', 'skip', 'run_all')",
            name=op.f("ck_task_misfire_policy_known"),
        ),
        sa.CheckConstraint(
            "overlap_policy IN ('allow', 'skip', 'queue')",
            name=op.f("ck_task_overlap_policy_known"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'canceled', 'completed')",
            name=op.f("ck_task_status_known"),
        ),
        sa.CheckConstraint(
            "concurrency_limit >= 1", name=op.f("ck_task_concurrency_limit_positive")
        ),
        sa.CheckConstraint("max_retries >= 0", name=op.f("ck_task_max_retries_nonnegative")),
        sa.CheckConstraint("priority BETWEEN 1 AND 9", name=op.f("ck_task_priority_range")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["agent.id"], name=op.f("fk_task_created_by_agent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index(
        "ix_task_created_by_created_at", "task", ["created_by", "created_at"], unique=False
    )
    op.create_index(
        "ix_task_next_run_at_active",
        "task",
        ["next_run_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND next_run_at IS NOT NULL"),
    )
    op.create_table(
        "due_work",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.Text(), server_default="schedule", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="5", nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_due_work_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_due_work")),
        sa.UniqueConstraint("task_id", "run_at", name=op.f("uq_due_work_task_id_run_at")),
    )
    op.create_index("ix_due_work_not_before", "due_work", ["not_before"], unique=False)
    op.create_index(
        "ix_due_work_priority_not_before", "due_work", ["priority", "not_before"], unique=False
    )
    op.create_table(
        "task_run",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "queued",
                "running",
                "succeeded",
                "failed",
                "canceled",
                "skipped",
                "waiting_approval",
                name="run_status",
            ),
            server_default="queued",
            nullable=False,
        ),
        sa.Column("trigger", sa.Text(), server_default="schedule", nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="5", nullable=False),
        sa.Column("concurrency_key", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_run_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_run")),
    )
    op.create_index(
        "ix_task_run_concurrency_key_open",
        "task_run",
        ["concurrency_key"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running') AND concurrency_key IS NOT NULL"),
    )
    op.create_index(
        "ix_task_run_dedupe_key_scheduled_for",
        "task_run",
        ["dedupe_key", "scheduled_for"],
        unique=False,
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    op.create_index(
        "ix_task_run_open",
        "task_run",
        ["status", "leased_until"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_task_run_task_id_created_at", "task_run", ["task_id", "created_at"], unique=False
    )
    op.create_table(
        "step_result",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("step_path", sa.Text(), nullable=False),
        sa.Column("step_id", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("input", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("output", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["task_run.id"],
            name=op.f("fk_step_result_run_id_task_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_result")),
    )
    op.create_index(
        "ix_step_result_idempotency_key_succeeded",
        "step_result",
        ["idempotency_key"],
        unique=False,
        postgresql_where=sa.text("status = 'succeeded' AND idempotency_key IS NOT NULL"),
    )
    op.create_index("ix_step_result_run_id", "step_result", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_step_result_run_id", table_name="step_result")
    op.drop_index(
        "ix_step_result_idempotency_key_succeeded",
        table_name="step_result",
        postgresql_where=sa.text("status = 'succeeded' AND idempotency_key IS NOT NULL"),
    )
    op.drop_table("step_result")
    op.drop_index("ix_task_run_task_id_created_at", table_name="task_run")
    op.drop_index(
        "ix_task_run_open",
        table_name="task_run",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index(
        "ix_task_run_dedupe_key_scheduled_for",
        table_name="task_run",
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    op.drop_index(
        "ix_task_run_concurrency_key_open",
        table_name="task_run",
        postgresql_where=sa.text("status IN ('queued', 'running') AND concurrency_key IS NOT NULL"),
    )
    op.drop_table("task_run")
    op.drop_index("ix_due_work_priority_not_before", table_name="due_work")
    op.drop_index("ix_due_work_not_before", table_name="due_work")
    op.drop_table("due_work")
    op.drop_index(
        "ix_task_next_run_at_active",
        table_name="task",
        postgresql_where=sa.text("status = 'active' AND next_run_at IS NOT NULL"),
    )
    op.drop_index("ix_task_created_by_created_at", table_name="task")
    op.drop_table("task")
    op.drop_index("ix_audit_log_subject_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox")
    op.drop_table("agent")
    sa.Enum(name="run_status").drop(op.get_bind(), checkfirst=True)
    sa.Enum(name="schedule_kind").drop(op.get_bind(), checkfirst=True)
