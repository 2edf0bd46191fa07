"""Change notices: a NOTIFY when tasks, due work or the outbox change.

Beat listens on the channel and looks at the database when told something changed (at most
once per ``beat_max_interval``) instead of polling it every second; with nothing changing it
looks once every :data:`ordinaut.beat.scheduler.BACKSTOP_LOOK_EVERY` seconds. Statement-level
Row-level triggers (a statement that changes no row sends nothing; beat's own read-only
looks and empty claims stay silent), and PostgreSQL folds the identical notices of one
transaction into one, delivered at commit; a rolled-back change sends none.

Revision ID: 0007_notices
Revises: 0006_direct_runs
Create Date: 2026-12-02 11:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_notices"
down_revision: str | None = "0006_direct_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "ordinaut_changes"  # ordinaut.store.notices.CHANNEL
TRIGGERS = {
    "task": "INSERT OR UPDATE OR DELETE",
    "due_work": "INSERT OR UPDATE",
    "outbox": "INSERT",
}


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION ordinaut_notice_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table, events in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {table}_notice_change AFTER {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ordinaut_notice_change()"
        )


def downgrade() -> None:
    for table in TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_notice_change ON {table}")
    op.execute("DROP FUNCTION ordinaut_notice_change()")
