"""Fair sharing: within a priority, work is taken round robin between agents.

Dispatch leases due work most urgent first (priority 1 before 9). Inside one priority, a
plain "oldest first" order lets one agent's burst (5,000 runs due at once) delay every other
agent's work until the burst is through. Instead each agent's due rows are numbered in their
own order (``not_before``), and rows are taken by (priority, that number, ``not_before``): the
first row of every agent, then the second of every agent, and so on. An agent with 10 rows
due behind another's 5,000 gets one in every batch slot pair, so its wait does not grow with
the other's backlog. The SQL in ``store/queries/due_work.py`` does this numbering; this
function states the same order for code that holds rows in memory (and for the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def round_robin(
    items: Sequence[T],
    *,
    priority: Callable[[T], int],
    owner: Callable[[T], Hashable],
) -> list[T]:
    """``items`` (each owner's in the order given) re-ordered: by priority, then round robin
    between owners (an owner's n-th item before any owner's (n+1)-th), ties in given order."""
    seen: dict[tuple[int, Hashable], int] = {}
    ranked: list[tuple[int, int, int, T]] = []
    for position, item in enumerate(items):
        key = (priority(item), owner(item))
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        ranked.append((priority(item), rank, position, item))
    ranked.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in ranked]
