"""Vocabulary values written into statements: rendered from the enums, never spelled by hand.

Statuses, policies and triggers are rendered as SQL literals (not bound parameters) so the
planner still sees constants and can use the partial indexes whose predicates name them
(``ix_task_run_open``, ``ix_task_next_run_at_active``, ...). The values come from
:mod:`ordinaut.vocabulary`, so a renamed status cannot leave a statement behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


def literal(value: StrEnum) -> str:
    """``value`` as a quoted SQL literal: ``RunStatus.QUEUED`` → ``'queued'``."""
    text = value.value
    if "'" in text:  # never true for the vocabulary; guards the quoting below
        raise ValueError(f"not a plain vocabulary value: {text!r}")
    return f"'{text}'"


def one_of(column: str, values: Iterable[StrEnum]) -> str:
    """``column IN ('a', 'b')`` (``column = 'a'`` for one value), in a stable order."""
    items = sorted({v.value: v for v in values}.values(), key=lambda v: v.value)
    if not items:
        raise ValueError("one_of needs at least one value")
    if len(items) == 1:
        return f"{column} = {literal(items[0])}"
    return f"{column} IN ({', '.join(literal(v) for v in items)})"
