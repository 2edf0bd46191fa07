"""The run state machine as the store moves it: every status-changing statement's edges.

Each statement that changes a ``task_run``'s status is written with one of the transitions
declared here: its ``SET`` clause takes the status from :meth:`Transition.assign` and its
``WHERE`` clause guards the current status with :meth:`Transition.guard`, so the edges a
statement can move a run along are exactly the ones declared. ``tests/unit/test_transitions.py``
checks every declared edge against :data:`ordinaut.vocabulary.TRANSITIONS` and that every
``UPDATE task_run ... SET status`` in the store goes through a declared transition.

Runs are only ever inserted in a state of :data:`ordinaut.vocabulary.INSERTED_AS`
(:func:`inserted`); every other state is reached along one of these edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ordinaut.store.queries.render import literal, one_of
from ordinaut.vocabulary import INSERTED_AS, SUSPENDED, RunStatus

_S = RunStatus


@dataclass(frozen=True)
class Transition:
    """A statement's move: a run in any of ``sources`` goes to one of ``targets``.

    With one target the status is written as a literal; with several (a finish) the
    statement binds ``:target``, checked by :meth:`bind`.
    """

    name: str
    sources: tuple[RunStatus, ...]
    targets: tuple[RunStatus, ...]

    @property
    def edges(self) -> frozenset[tuple[RunStatus, RunStatus]]:
        """Every (source, target) pair this transition may perform."""
        return frozenset((s, t) for s in self.sources for t in self.targets)

    def guard(self, column: str = "status") -> str:
        """The ``WHERE`` condition that the run is in one of the sources."""
        return one_of(column, self.sources)

    def assign(self) -> str:
        """The ``SET`` item that moves the run to its target."""
        if len(self.targets) == 1:
            return f"status = {literal(self.targets[0])}"
        return "status = CAST(:target AS run_status)"

    def bind(self, target: RunStatus) -> dict[str, str]:
        """The ``:target`` parameter of a transition with several targets."""
        if target not in self.targets:
            allowed = ", ".join(t.value for t in self.targets)
            raise ValueError(f"{self.name}: cannot move a run to {target} (only {allowed})")
        return {"target": target.value}


CLAIM: Final = Transition("claim", (_S.QUEUED,), (_S.RUNNING,))
FINISH: Final = Transition("finish", (_S.RUNNING,), (_S.SUCCEEDED, _S.FAILED, _S.CANCELED))
REAP: Final = Transition("reap", (_S.RUNNING,), (_S.FAILED,))
# a worker shutting down gives a run back before its lease expires (see runs/shutdown.py)
HAND_BACK: Final = Transition("hand_back", (_S.RUNNING,), (_S.FAILED,))
CANCEL: Final = Transition("cancel", (_S.QUEUED, *SUSPENDED, _S.RUNNING), (_S.CANCELED,))
# a claim that finds its task's owner revoked ends the run instead of starting it
REFUSE: Final = Transition("refuse", (_S.QUEUED,), (_S.CANCELED,))
REJECT: Final = Transition("reject", (_S.WAITING_APPROVAL,), (_S.CANCELED,))
# a worker stops a run before a step (an approval gate, a policy): it holds nothing meanwhile
SUSPEND: Final = Transition("suspend", (_S.RUNNING,), SUSPENDED)
# a suspended run whose resume came goes back to the queue, or is canceled (a timed-out
# approval with on_timeout reject)
RESUME: Final = Transition("resume", SUSPENDED, (_S.QUEUED,))
EXPIRE: Final = Transition("expire", SUSPENDED, (_S.CANCELED,))

DECLARED: Final = (
    CLAIM,
    FINISH,
    REAP,
    HAND_BACK,
    CANCEL,
    REFUSE,
    REJECT,
    SUSPEND,
    RESUME,
    EXPIRE,
)


def inserted(status: RunStatus) -> str:
    """``status`` as the literal a run is inserted with; only :data:`INSERTED_AS` states."""
    return literal(check_inserted(status))


def check_inserted(status: str) -> RunStatus:
    """The status of a run about to be inserted, refused unless in :data:`INSERTED_AS`."""
    value = RunStatus(status)
    if value not in INSERTED_AS:
        raise ValueError(f"runs are never inserted as {value}")
    return value
