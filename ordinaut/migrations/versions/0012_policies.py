"""Policies: quiet hours and budgets on agents and tasks, budget usage, shared rate limits,
worker pools, the run's policy decisions and the ``deferred`` run status.

Revision ID: 0012_policies
Revises: 0011_events
Create Date: 2026-12-02 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0012_policies"
down_revision: str | None = "0011_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
NOW = sa.text("now()")

# partial indexes whose predicates name run statuses: rebuilt around a change of the enum
STATUS_INDEXES = (
    ("ix_task_run_open", ["status", "leased_until"], "status IN ('queued', 'running')", False),
    (
        "ux_task_run_occurrence",
        ["task_id", "scheduled_for", "attempt"],
        "trigger IN ('schedule', 'catch_up') AND status <> 'skipped'",
        True,
    ),
    (
        "ix_task_run_concurrency_key_open",
        ["concurrency_key"],
        "status IN ('queued', 'running') AND concurrency_key IS NOT NULL",
        False,
    ),
)


def upgrade() -> None:
    op.execute("ALTER TYPE run_status ADD VALUE IF NOT EXISTS 'deferred'")
    for table in ("agent", "task"):
        op.add_column(table, sa.Column("quiet_hours", pg.JSONB, nullable=True))
        op.add_column(table, sa.Column("budgets", pg.JSONB, nullable=True))
    op.add_column("task", sa.Column("worker_pool", sa.Text, nullable=True))
    op.add_column("tool", sa.Column("worker_pool", sa.Text, nullable=True))
    op.add_column("task_run", sa.Column("worker_pool", sa.Text, nullable=True))
    op.add_column(
        "task_run",
        sa.Column("decisions", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    )
    op.create_table(
        "budget_usage",
        sa.Column("subject_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("counter", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", TZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("subject_id", "counter", "period", name=op.f("pk_budget_usage")),
    )
    op.create_table(
        "rate_call",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("held_until", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_call")),
    )
    op.create_index("ix_rate_call_key_started_at", "rate_call", ["key", "started_at"])
    op.create_table(
        "digest_call",
        sa.Column("task_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("step_path", sa.Text, nullable=False),
        sa.Column("until", TZ, nullable=False),
        sa.Column("leader_run_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("items", pg.JSONB, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=NOW),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_digest_call_task_id_task"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "step_path", "until", name=op.f("pk_digest_call")),
    )
    op.create_index("ix_digest_call_leader_run_id", "digest_call", ["leader_run_id"])


def downgrade() -> None:
    op.drop_index("ix_digest_call_leader_run_id", table_name="digest_call")
    op.drop_table("digest_call")
    op.drop_index("ix_rate_call_key_started_at", table_name="rate_call")
    op.drop_table("rate_call")
    op.drop_table("budget_usage")
    op.drop_column("task_run", "decisions")
    op.drop_column("task_run", "worker_pool")
    op.drop_column("tool", "worker_pool")
    op.drop_column("task", "worker_pool")
    for table in ("task", "agent"):
        op.drop_column(table, "budgets")
        op.drop_column(table, "quiet_hours")
    # an enum value cannot be dropped: deferred runs end failed, and the type is rebuilt
    op.execute(
        "UPDATE task_run SET status = 'failed', finished_at = now() WHERE status = 'deferred'"
    )
    for name, _, _, _ in STATUS_INDEXES:
        op.drop_index(name, table_name="task_run")
    op.execute("ALTER TABLE task_run ALTER COLUMN status DROP DEFAULT")
    op.execute("ALTER TYPE run_status RENAME TO run_status_old")
    op.execute(
        "CREATE TYPE run_status AS ENUM ('queued', 'running', 'succeeded', 'failed', "
        "'canceled', 'skipped', 'waiting_approval')"
    )
    op.execute(
        "ALTER TABLE task_run ALTER COLUMN status TYPE run_status USING status::text::run_status"
    )
    op.execute("ALTER TABLE task_run ALTER COLUMN status SET DEFAULT 'queued'")
    op.execute("DROP TYPE run_status_old")
    for name, columns, where, unique in STATUS_INDEXES:
        op.create_index(name, "task_run", columns, unique=unique, postgresql_where=sa.text(where))
