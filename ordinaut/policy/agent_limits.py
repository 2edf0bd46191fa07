"""Agent limits: what an agent may create or change without a person (pure).

An agent's limits (``PUT /agents/{id}/limits``) are, each optional::

    {"max_active_tasks":     {"value": 10,  "on_exceed": "reject"},
     "min_interval_seconds": {"value": 900, "on_exceed": "approve"},
     "allowed_tools":        {"value": ["builtin.*", "telegram-mcp.send_*"],
                              "on_exceed": "reject"}}

- ``max_active_tasks``: how many of its tasks may be active at once (checked on create);
- ``min_interval_seconds``: no task of it may fire more often than this — the shortest time
  between two consecutive occurrences among the schedule's next
  :data:`~ordinaut.scheduling.words.GAP_SAMPLE` (checked on create and on a schedule change);
- ``allowed_tools``: every step's tool address matches one of these ``fnmatch`` patterns
  (``*``, ``?``, ``[...]``; ``pipeline.foreach`` itself is always allowed; checked on create
  and on a payload change).

:func:`crossed` lists what a proposed task crosses; ``on_exceed`` then decides: ``reject``
answers 422 naming the limit, ``approve`` keeps the request as a pending change.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ordinaut.vocabulary import OnExceed

MAX_PATTERNS = 100


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_exceed: OnExceed = Field(
        default=OnExceed.REJECT,
        description="reject (default): the request fails with 422 naming the limit; approve: "
        "it becomes a pending change a person approves or rejects.",
    )


class CountLimit(_Limit):
    """A number the agent's tasks may not go past."""

    value: StrictInt = Field(ge=0, le=1_000_000)


class IntervalLimit(_Limit):
    """The shortest time, in seconds, allowed between two occurrences of one task."""

    value: StrictInt = Field(ge=1, le=366 * 86400)


class ToolsLimit(_Limit):
    """The tool addresses the agent's pipelines may use, as fnmatch patterns."""

    value: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=MAX_PATTERNS
    )


class AgentLimits(BaseModel):
    """The body of ``PUT /agents/{id}/limits``; an omitted limit does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active_tasks: CountLimit | None = None
    min_interval_seconds: IntervalLimit | None = None
    allowed_tools: ToolsLimit | None = None


@dataclass(frozen=True)
class Crossed:
    """One limit a proposed task crosses, and what its ``on_exceed`` says to do."""

    limit: str
    on_exceed: OnExceed
    message: str


@dataclass(frozen=True)
class Proposal:
    """What is checked of a proposed task; None for what the request does not change."""

    active_tasks: int | None = None  # the agent's active tasks if the request is applied
    shortest_gap: timedelta | None = None  # between the schedule's next occurrences
    addresses: Iterable[str] | None = None  # every step's tool address


def crossed(limits: AgentLimits, proposal: Proposal) -> list[Crossed]:
    """Every limit ``proposal`` crosses, in the order the limits are listed above."""
    found: list[Crossed] = []
    count = limits.max_active_tasks
    active = proposal.active_tasks
    if count is not None and active is not None and active > count.value:
        found.append(
            Crossed(
                "max_active_tasks",
                count.on_exceed,
                f"this would make {active} active tasks, over the agent's "
                f"max_active_tasks limit of {count.value}",
            )
        )
    interval = limits.min_interval_seconds
    if interval is not None and proposal.shortest_gap is not None:
        gap = proposal.shortest_gap.total_seconds()
        if gap < interval.value:
            found.append(
                Crossed(
                    "min_interval_seconds",
                    interval.on_exceed,
                    f"the schedule fires as often as every {gap:g} s, more often than the "
                    f"agent's min_interval_seconds limit of {interval.value} s",
                )
            )
    tools = limits.allowed_tools
    if tools is not None and proposal.addresses is not None:
        outside = sorted({a for a in proposal.addresses if not _allowed(a, tools.value)})
        if outside:
            found.append(
                Crossed(
                    "allowed_tools",
                    tools.on_exceed,
                    f"tool {', '.join(outside)} is not in the agent's allowed_tools "
                    f"({', '.join(tools.value) or 'none'})",
                )
            )
    return found


def _allowed(address: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(address, p) for p in patterns)
