"""One run per scheduled occurrence and attempt: beat may now create runs itself.

Beat writes the runs of tasks without concurrency rules directly (no due_work row, no
dispatch hop); this unique index is their backstop against a double fire, as
``UNIQUE (task_id, run_at)`` is for due_work: two beats racing on the same occurrence
insert one run between them. Skipped records are not fires and are left out.

Revision ID: 0006_direct_runs
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_direct_runs"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "trigger IN ('schedule', 'catch_up') AND status <> 'skipped'"


def upgrade() -> None:
    op.create_index(
        "ux_task_run_occurrence",
        "task_run",
        ["task_id", "scheduled_for", "attempt"],
        unique=True,
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ux_task_run_occurrence", table_name="task_run")
