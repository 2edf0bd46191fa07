"""Gates: the pure decisions that stop a run before a step (see the executor's Suspension).

:func:`approval_gate` stops a run before a tool step that needs a person's approval — the
step says ``"approval": "required"``, or its tool's catalog entry says
``requires_approval`` — unless this run already passed that step's approval. The run then
waits in ``waiting_approval``; with ``approval_timeout_seconds`` its ``resume_at`` is that
long after ``now`` and ``on_timeout`` decides what happens then. :func:`first_of` combines
gates (the first that stops the run wins).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from ordinaut.pipeline.executor import Gate, GateCheck, Suspension
from ordinaut.vocabulary import OnTimeout, ResumeAction, RunStatus


def needs_approval(check: GateCheck) -> bool:
    """True when the step, or its tool, asks for a person's approval."""
    return check.step.approval == "required" or check.tool.requires_approval


def approval_gate(approved: Collection[str], clock: Callable[[], datetime]) -> Gate:
    """Stop before a step that needs approval, unless its path is in ``approved``."""

    def gate(check: GateCheck) -> Suspension | None:
        if not needs_approval(check) or check.step_path in approved:
            return None
        step = check.step
        who = "the step" if step.approval == "required" else f"tool {check.tool.address!r}"
        reason = f"step {check.step_path!r} waits for approval ({who} requires it)"
        resume_at = None
        if step.approval_timeout_seconds is not None:
            resume_at = clock() + timedelta(seconds=step.approval_timeout_seconds)
        on_resume = (
            ResumeAction.APPROVE if step.on_timeout is OnTimeout.APPROVE else ResumeAction.REJECT
        )
        return Suspension(
            RunStatus.WAITING_APPROVAL,
            check.step_path,
            check.args,
            reason,
            resume_at=resume_at,
            on_resume=on_resume,
        )

    return gate


def first_of(gates: Sequence[Gate]) -> Gate:
    """A gate that asks ``gates`` in order and returns the first suspension."""

    def gate(check: GateCheck) -> Suspension | None:
        for one in gates:
            suspension = one(check)
            if suspension is not None:
                return suspension
        return None

    return gate
