"""The chaos soak: every moving part killed on a seeded schedule, then a ledger audit.

``python -m bench.chaos [--minutes N] [--seed S]`` — see :mod:`bench.chaos.soak` (the run),
:mod:`bench.chaos.workload` (scheduled tasks and their expected occurrences),
:mod:`bench.chaos.events` (event tasks, the publisher feeding them through ``POST /events``
during the faults, and the rule of which task an event fires, computed independently),
:mod:`bench.chaos.faults` (the fault schedule), :mod:`bench.chaos.toolserver` (the HTTP tool
that logs every call with its Idempotency-Key), :mod:`bench.chaos.audit` (the checks of the
scheduled work, side effects, concurrency and the outbox) and :mod:`bench.chaos.event_audit`
(every accepted event against the tasks it must start: none lost, none doubled, none started
for a task it does not match).
"""
