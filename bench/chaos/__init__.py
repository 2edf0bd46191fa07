"""The chaos soak: every moving part killed on a seeded schedule, then a ledger audit.

``python -m bench.chaos [--minutes N] [--seed S]`` — see :mod:`bench.chaos.soak` (the run),
:mod:`bench.chaos.workload` (tasks and their expected occurrences),
:mod:`bench.chaos.faults` (the fault schedule), :mod:`bench.chaos.toolserver` (the HTTP tool
that logs every call with its Idempotency-Key) and :mod:`bench.chaos.audit` (the checks).
Events (issue 13) are not part of the workload yet: event tasks and a publisher slot in as
one more :class:`~bench.chaos.workload.TaskSpec` kind and a thread beside the stream reader.
"""
