"""The run state machine as data: allowed moves, final states, sources for conditional UPDATEs."""

from __future__ import annotations

import pytest

from ordinaut.vocabulary import FINISHED, TRANSITIONS, RunStatus, sources

S = RunStatus


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.QUEUED, S.RUNNING),
        (S.QUEUED, S.CANCELED),
        (S.QUEUED, S.WAITING_APPROVAL),
        (S.WAITING_APPROVAL, S.QUEUED),
        (S.WAITING_APPROVAL, S.CANCELED),
        (S.RUNNING, S.DEFERRED),  # a policy stops it before a step
        (S.DEFERRED, S.QUEUED),  # its resume_at came
        (S.DEFERRED, S.CANCELED),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.CANCELED),
    ],
)
def test_allowed_moves(source: RunStatus, target: RunStatus) -> None:
    assert target in TRANSITIONS[source]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.QUEUED, S.SUCCEEDED),  # a run cannot finish without being claimed
        (S.QUEUED, S.FAILED),
        (S.RUNNING, S.QUEUED),  # never back: a retry is a new run row
        (S.RUNNING, S.RUNNING),  # a second claim of a running run changes nothing
        (S.WAITING_APPROVAL, S.RUNNING),
        (S.DEFERRED, S.RUNNING),  # resumed runs are queued again first
    ],
)
def test_forbidden_moves(source: RunStatus, target: RunStatus) -> None:
    assert target not in TRANSITIONS.get(source, frozenset())


@pytest.mark.parametrize("status", sorted(FINISHED))
def test_finished_states_are_final(status: RunStatus) -> None:
    assert status.finished
    assert status not in TRANSITIONS  # nothing leaves a final state


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.WAITING_APPROVAL, S.DEFERRED])
def test_live_states_are_not_finished(status: RunStatus) -> None:
    assert not status.finished


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (S.RUNNING, (S.QUEUED,)),
        (S.SUCCEEDED, (S.RUNNING,)),
        (S.FAILED, (S.RUNNING,)),
        (S.CANCELED, (S.QUEUED, S.RUNNING, S.WAITING_APPROVAL, S.DEFERRED)),
        (S.QUEUED, (S.WAITING_APPROVAL, S.DEFERRED)),
        (S.SKIPPED, ()),  # skipped runs are created that way, never reached
    ],
)
def test_sources_for_conditional_updates(
    target: RunStatus, expected: tuple[RunStatus, ...]
) -> None:
    assert sources(target) == tuple(sorted(expected))


def test_every_status_matches_the_database_enum() -> None:
    from ordinaut.store.tables import run_status

    assert set(run_status.enums) == {s.value for s in RunStatus}
