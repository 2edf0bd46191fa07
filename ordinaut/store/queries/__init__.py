"""Every SQL statement of Ordinaut, each one named, grouped by the table it touches.

Callers pass a Connection inside a transaction they own; nothing here commits. Row locks
taken with ``FOR UPDATE SKIP LOCKED`` are held until the caller's transaction ends, which
is what makes two beats or two dispatchers safe to run side by side. Hot paths get frozen
records back (:class:`DueTask`, :class:`LeasedWork`, :class:`ClaimedRun`,
:class:`ReapedRun`, ...); the service's reads of whole rows for its public models get rows.

One module per noun, every name re-exported here so callers write
``queries.claim_due_tasks(...)``:

- :mod:`.tasks` — create, read, list, change; beat's claim and advance;
- :mod:`.firing` — beat's write for a fired batch, in one statement;
- :mod:`.due_work` — write, lease for dispatch, consume; when beat wakes next;
- :mod:`.runs` — insert task_run rows (queued, skipped), read them, count open ones;
- :mod:`.run_states` — every change of a run's status (claim, finish, reap, cancel,
  approve, reject), each along an edge declared in :mod:`.transitions`;
- :mod:`.leases` — reservations, leases and message bookkeeping of queued/running runs;
- :mod:`.steps` — step receipts and outcomes served from them;
- :mod:`.suspension` — runs stopped before a step: suspend, resume, expire;
- :mod:`.locks` — advisory locks on concurrency, dedupe and overlap keys;
- :mod:`.policies` — quiet hours and budgets, budget usage, rate-limited calls, decisions;
- :mod:`.approvals` — runs waiting for a person's approval;
- :mod:`.changes` — creates and updates of tasks waiting for a person's approval;
- :mod:`.agents`, :mod:`.audit`, :mod:`.idempotency`, :mod:`.tools` (the catalog),
  :mod:`.outbox`, :mod:`.health`, :mod:`.triggers` (event tasks and the fire ledger);
- :mod:`.render` (vocabulary values as SQL literals) and :mod:`.jsonb` (batches as one
  JSON parameter).
"""

from ordinaut.store.queries import transitions
from ordinaut.store.queries.agents import (
    Agent,
    agent_by_token,
    agent_named,
    get_agent,
    insert_agent,
    list_agents,
    revoke_agent,
    set_agent_limits,
    set_agent_token,
    set_agent_webhook,
)
from ordinaut.store.queries.approvals import list_waiting
from ordinaut.store.queries.audit import insert_audit, list_audit
from ordinaut.store.queries.changes import (
    change_by_key,
    count_pending,
    decide_change,
    get_change,
    insert_change,
    list_changes,
)
from ordinaut.store.queries.conditions import (
    ConditionState,
    DueCheck,
    advance_checks,
    claim_due_checks,
    list_checks,
    lock_condition_state,
    record_check,
)
from ordinaut.store.queries.due_work import (
    LeasedWork,
    Wake,
    delete_due_work,
    delete_task_due_work,
    insert_due_work,
    lease_due_work,
    next_wake,
)
from ordinaut.store.queries.feed import owned_tasks
from ordinaut.store.queries.firing import write_fired
from ordinaut.store.queries.health import Backlog, backlog, ping
from ordinaut.store.queries.idempotency import (
    IdempotencyEntry,
    claim_idempotency_key,
    idempotency_entry,
    idempotency_known,
    save_idempotent_response,
)
from ordinaut.store.queries.leases import (
    StaleRun,
    extend_lease,
    mark_published,
    mark_published_at,
    reserve_runs,
    take_stale_queued_runs,
)
from ordinaut.store.queries.locks import advisory_key, lock_keys
from ordinaut.store.queries.outbox import OutboxEvent, emit, mark_relayed, take_unpublished
from ordinaut.store.queries.policies import (
    TaskPolicies,
    UsageKey,
    add_decision,
    add_usage,
    agent_policies,
    close_digest,
    digest_items,
    insert_rate_calls,
    join_digest,
    prune_rate_calls,
    queued_ahead,
    rate_calls,
    release_rate_calls,
    set_agent_policy,
    task_budgets_of,
    task_policies,
    usage,
)
from ordinaut.store.queries.retention import prune_event_history
from ordinaut.store.queries.run_states import (
    OWNER_REVOKED,
    ClaimedRun,
    ReapedRun,
    cancel_run,
    cancel_runs_of,
    cancel_task_runs,
    claim_run,
    finish_run,
    hand_back_run,
    reap_expired_runs,
    reject_run,
)
from ordinaut.store.queries.runs import (
    LockedRun,
    get_run,
    insert_runs,
    list_runs,
    lock_run,
    open_runs_by_key,
    recent_dedupe_run,
    record_skipped_runs,
    run_status,
    tasks_with_open_runs,
)
from ordinaut.store.queries.steps import (
    StepData,
    cached_step_output,
    insert_step_results,
    step_data,
    steps_of_run,
)
from ordinaut.store.queries.suspension import (
    DueResume,
    done_steps,
    expire_runs,
    request_resume,
    resume_runs,
    suspend_run,
    take_due_resumes,
)
from ordinaut.store.queries.tasks import (
    DueTask,
    agenda_tasks,
    claim_due_tasks,
    count_active_tasks,
    get_task,
    insert_task,
    list_tasks,
    pause_tasks_of,
    update_task,
)
from ordinaut.store.queries.tools import (
    delete_tool,
    get_mcp_server,
    get_tool,
    list_mcp_servers,
    list_tools,
    upsert_mcp_server,
    upsert_tool,
)
from ordinaut.store.queries.triggers import (
    EXTERNAL_PREFIX,
    EventBacklog,
    EventTask,
    claim_fires,
    event_backlog,
    event_tasks,
    insert_event_work,
    mark_triggered,
    untriggered_events,
)
from ordinaut.store.queries.webhooks import (
    DueDelivery,
    claim_deliveries,
    enqueue_deliveries,
    list_deliveries,
    record_attempt,
    set_webhook,
)

__all__ = [
    "EXTERNAL_PREFIX",
    "OWNER_REVOKED",
    "Agent",
    "Backlog",
    "ClaimedRun",
    "ConditionState",
    "DueCheck",
    "DueDelivery",
    "DueResume",
    "DueTask",
    "EventBacklog",
    "EventTask",
    "IdempotencyEntry",
    "LeasedWork",
    "LockedRun",
    "OutboxEvent",
    "ReapedRun",
    "StaleRun",
    "StepData",
    "TaskPolicies",
    "UsageKey",
    "Wake",
    "add_decision",
    "add_usage",
    "advance_checks",
    "advisory_key",
    "agenda_tasks",
    "agent_by_token",
    "agent_named",
    "agent_policies",
    "backlog",
    "cached_step_output",
    "cancel_run",
    "cancel_runs_of",
    "cancel_task_runs",
    "change_by_key",
    "claim_deliveries",
    "claim_due_checks",
    "claim_due_tasks",
    "claim_fires",
    "claim_idempotency_key",
    "claim_run",
    "close_digest",
    "count_active_tasks",
    "count_pending",
    "decide_change",
    "delete_due_work",
    "delete_task_due_work",
    "delete_tool",
    "digest_items",
    "done_steps",
    "emit",
    "enqueue_deliveries",
    "event_backlog",
    "event_tasks",
    "expire_runs",
    "extend_lease",
    "finish_run",
    "get_agent",
    "get_change",
    "get_mcp_server",
    "get_run",
    "get_task",
    "get_tool",
    "hand_back_run",
    "idempotency_entry",
    "idempotency_known",
    "insert_agent",
    "insert_audit",
    "insert_change",
    "insert_due_work",
    "insert_event_work",
    "insert_rate_calls",
    "insert_runs",
    "insert_step_results",
    "insert_task",
    "join_digest",
    "lease_due_work",
    "list_agents",
    "list_audit",
    "list_changes",
    "list_checks",
    "list_deliveries",
    "list_mcp_servers",
    "list_runs",
    "list_tasks",
    "list_tools",
    "list_waiting",
    "lock_condition_state",
    "lock_keys",
    "lock_run",
    "mark_published",
    "mark_published_at",
    "mark_relayed",
    "mark_triggered",
    "next_wake",
    "open_runs_by_key",
    "owned_tasks",
    "pause_tasks_of",
    "ping",
    "prune_event_history",
    "prune_rate_calls",
    "queued_ahead",
    "rate_calls",
    "reap_expired_runs",
    "recent_dedupe_run",
    "record_attempt",
    "record_check",
    "record_skipped_runs",
    "reject_run",
    "release_rate_calls",
    "request_resume",
    "reserve_runs",
    "resume_runs",
    "revoke_agent",
    "run_status",
    "save_idempotent_response",
    "set_agent_limits",
    "set_agent_policy",
    "set_agent_token",
    "set_agent_webhook",
    "set_webhook",
    "step_data",
    "steps_of_run",
    "suspend_run",
    "take_due_resumes",
    "take_stale_queued_runs",
    "take_unpublished",
    "task_budgets_of",
    "task_policies",
    "tasks_with_open_runs",
    "transitions",
    "untriggered_events",
    "update_task",
    "upsert_mcp_server",
    "upsert_tool",
    "usage",
    "write_fired",
]
