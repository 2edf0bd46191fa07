"""Change notices: a NOTIFY when a task or due work changes behind beat's back.

Beat listens on the channel and looks at the database when told something changed (at most
once per ``beat_max_interval``) instead of polling it every second; with nothing changing it
looks once every :data:`ordinaut.beat.scheduler.BACKSTOP_LOOK_EVERY` seconds.

Row triggers, so a statement that changes no row sends nothing; PostgreSQL folds the
identical notices of one transaction into one, delivered at commit (a rolled-back change
sends none). Beat's own connections set ``ordinaut.silent`` and stay silent: it knows what
it wrote, and each notice costs the listening backend a (read-only) transaction. The outbox
has no trigger: whoever writes events asks for the relay (``ordinaut.runs.wake``).

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
SILENT = "ordinaut.silent"  # ordinaut.store.notices.SILENT
TRIGGERS = {
    "task": "INSERT OR UPDATE OR DELETE",
    "due_work": "INSERT OR UPDATE OF not_before",
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
            f"CREATE TRIGGER {table}_notice_change AFTER {events} ON {table} FOR EACH ROW "
            f"WHEN (current_setting('{SILENT}', true) IS DISTINCT FROM 'on') "
            "EXECUTE FUNCTION ordinaut_notice_change()"
        )


def downgrade() -> None:
    for table in TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_notice_change ON {table}")
    op.execute("DROP FUNCTION ordinaut_notice_change()")
