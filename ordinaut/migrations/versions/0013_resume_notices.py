"""Change notices for suspended runs: a NOTIFY when a run gets a time to resume.

A run deferred by a rate limit (rechecked a second later), by quiet hours or waiting for an
approval with a timeout carries ``resume_at``; the dispatch pass resumes it once that time
has come. Beat wakes for it as it wakes for due work (``ordinaut.store.queries.next_wake``),
and this trigger tells beat that such a time was set, on the same channel as task and due
work changes (migration ``0007_change_notices``). Only an update that sets ``resume_at`` to a
new non-null value notices: claims, finishes and every other update of a run pass the
trigger's ``WHEN`` without calling it.

Revision ID: 0013_resume_notices
Revises: 0012_policies
Create Date: 2026-12-02 14:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_resume_notices"
down_revision: str | None = "0012_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SILENT = "ordinaut.silent"  # ordinaut.store.notices.SILENT


def upgrade() -> None:
    op.execute(
        "CREATE TRIGGER task_run_notice_resume AFTER UPDATE OF resume_at ON task_run "
        "FOR EACH ROW WHEN (NEW.resume_at IS NOT NULL "
        "AND NEW.resume_at IS DISTINCT FROM OLD.resume_at "
        f"AND current_setting('{SILENT}', true) IS DISTINCT FROM 'on') "
        "EXECUTE FUNCTION ordinaut_notice_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER task_run_notice_resume ON task_run")
