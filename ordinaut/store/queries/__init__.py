"""The statements that need care, each one named: claims, ON CONFLICT inserts, leases.

Callers pass a Connection inside a transaction they own; nothing here commits. Row locks
taken with ``FOR UPDATE SKIP LOCKED`` are held until the caller's transaction ends, which
is what makes two beats or two dispatchers safe to run side by side.

One module per stage of the data flow, every name re-exported here so callers write
``queries.claim_due_tasks(...)``:

- :mod:`.beat` — claim due tasks, write due_work and skipped runs, advance tasks, next wake;
- :mod:`.runs` — insert task_run rows;
- :mod:`.dispatch` — lease due_work, advisory locks, limits, dedupe, publish bookkeeping;
- :mod:`.execution` — claim, reserve, lease, step receipts, finish, reap;
- :mod:`.outbox` — events in the caller's transaction;
- :mod:`.jsonb` — how batches travel as one JSON parameter.
"""

from ordinaut.store.queries.beat import (
    Wake,
    advance_tasks,
    claim_due_tasks,
    insert_due_work,
    next_wake,
    record_skipped_runs,
)
from ordinaut.store.queries.dispatch import (
    advisory_key,
    delete_due_work,
    lease_due_work,
    lock_keys,
    mark_published,
    open_runs_by_key,
    recent_dedupe_run,
    take_stale_queued_runs,
    tasks_with_open_runs,
)
from ordinaut.store.queries.execution import (
    cached_step_output,
    claim_run,
    extend_lease,
    finish_run,
    insert_step_results,
    reap_expired_runs,
    reserve_runs,
    run_status,
)
from ordinaut.store.queries.outbox import emit
from ordinaut.store.queries.runs import insert_runs

__all__ = [
    "Wake",
    "advance_tasks",
    "advisory_key",
    "cached_step_output",
    "claim_due_tasks",
    "claim_run",
    "delete_due_work",
    "emit",
    "extend_lease",
    "finish_run",
    "insert_due_work",
    "insert_runs",
    "insert_step_results",
    "lease_due_work",
    "lock_keys",
    "mark_published",
    "next_wake",
    "open_runs_by_key",
    "reap_expired_runs",
    "recent_dedupe_run",
    "record_skipped_runs",
    "reserve_runs",
    "run_status",
    "take_stale_queued_runs",
    "tasks_with_open_runs",
]
