"""Events that start work: event-triggered tasks and the trigger ledger.

- ``task.event_filter``: an optional JMESPath expression over an event's payload that must
  be truthy for an event task to fire;
- ``task.event_sources``: agents (ids) whose events may also fire this task, besides its
  own agent's (an ``agents:admin`` publisher reaches every event task);
- ``event_fire``: one row per (task, event) the trigger consumer turned into work. Its
  primary key is what makes a re-delivered stream entry (a consumer killed between commit
  and ``XACK``) start nothing twice;
- ``outbox.triggered_at``: when the trigger consumer handled an external event, so a
  backstop can find external events the stream lost (Redis restarted without them).

Condition tasks: ``task.condition`` (``{"uses", "with", "when"}``), ``cooldown_seconds``,
the last result and firing (``condition_state``, ``condition_fired_at``), the next check
(``next_check_at``; ``next_run_at`` stays NULL, so beat never fires them itself), and
``condition_check``, one row per check with its result and why it did or did not fire.

Webhooks: ``agent.webhook_secret`` (the HMAC key, shown once) and ``webhook_delivery``, one
row per (agent, event) with its status, attempts and each attempt's outcome.

Revision ID: 0011_events
Revises: 0010_seeing
Create Date: 2026-12-02 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0011_events"
down_revision: str | None = "0010_seeing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task", sa.Column("event_filter", sa.Text, nullable=True))
    op.add_column(
        "task",
        sa.Column(
            "event_sources", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False, server_default="{}"
        ),
    )
    op.create_index(
        "ix_task_event_kind",
        "task",
        ["created_by"],
        postgresql_where=sa.text("schedule_kind = 'event' AND status IN ('active', 'paused')"),
    )
    op.create_table(
        "event_fire",
        sa.Column(
            "task_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("task.id", ondelete="CASCADE", name="fk_event_fire_task_id_task"),
            nullable=False,
        ),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "fired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.PrimaryKeyConstraint("task_id", "event_id", name="pk_event_fire"),
    )
    op.create_index("ix_event_fire_fired_at", "event_fire", ["fired_at"])
    op.add_column("outbox", sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True))
    # events recorded before this revision had no event tasks to start: not the backstop's
    op.execute(
        "UPDATE outbox SET triggered_at = coalesce(published_at, created_at) "
        "WHERE topic LIKE 'event.external.%'"
    )
    op.create_index(
        "ix_outbox_untriggered",
        "outbox",
        ["id"],
        postgresql_where=sa.text("triggered_at IS NULL AND topic LIKE 'event.external.%'"),
    )

    # condition tasks (ordinaut.runs.conditions)
    op.add_column("task", sa.Column("condition", pg.JSONB, nullable=True))
    op.add_column("task", sa.Column("cooldown_seconds", sa.Integer, nullable=True))
    op.add_column("task", sa.Column("condition_state", sa.Boolean, nullable=True))
    op.add_column(
        "task", sa.Column("condition_fired_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("task", sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_task_next_check_at_active",
        "task",
        ["next_check_at"],
        postgresql_where=sa.text(
            "status = 'active' AND schedule_kind = 'condition' AND next_check_at IS NOT NULL"
        ),
    )
    op.create_table(
        "condition_check",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column(
            "task_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("task.id", ondelete="CASCADE", name="fk_condition_check_task_id_task"),
            nullable=False,
        ),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Boolean, nullable=True),
        sa.Column("fired", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("output", pg.JSONB, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_condition_check"),
    )
    op.create_index("ix_condition_check_task_id_id", "condition_check", ["task_id", "id"])
    # webhooks (ordinaut.events.webhooks)
    op.add_column("agent", sa.Column("webhook_secret", sa.Text, nullable=True))
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column(
            "agent_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(
                "agent.id", ondelete="CASCADE", name="fk_webhook_delivery_agent_id_agent"
            ),
            nullable=False,
        ),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt_log", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_delivery"),
        sa.UniqueConstraint("agent_id", "outbox_id", name="uq_webhook_delivery_agent_id_outbox_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name="ck_webhook_delivery_status_known",
        ),
    )
    op.create_index(
        "ix_webhook_delivery_pending",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_pending", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_column("agent", "webhook_secret")
    op.drop_index("ix_condition_check_task_id_id", table_name="condition_check")
    op.drop_table("condition_check")
    op.drop_index("ix_task_next_check_at_active", table_name="task")
    for column in (
        "next_check_at",
        "condition_fired_at",
        "condition_state",
        "cooldown_seconds",
        "condition",
    ):
        op.drop_column("task", column)
    op.drop_index("ix_outbox_untriggered", table_name="outbox")
    op.drop_column("outbox", "triggered_at")
    op.drop_index("ix_event_fire_fired_at", table_name="event_fire")
    op.drop_table("event_fire")
    op.drop_index("ix_task_event_kind", table_name="task")
    op.drop_column("task", "event_sources")
    op.drop_column("task", "event_filter")
