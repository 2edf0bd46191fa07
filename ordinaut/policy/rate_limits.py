"""Shared rate limits on tool calls: per tool pattern (or MCP server), per agent.

Rules come from the setting ``ORDINAUT_RATE_LIMITS``, a JSON list::

    [{"tools": "notify.*", "per_minute": 20},
     {"server": "home-mcp", "concurrent": 2},
     {"tools": "llm.*", "per_minute": 5, "per": "all"}]

* ``tools`` is a shell-style pattern on tool addresses (``notify.*``); ``server`` names an MCP
  server (every tool of it). One of the two.
* ``per_minute``: at most that many calls started in any 60 seconds (a sliding window, not
  calendar minutes, so no burst of twice the limit across a minute boundary);
  ``concurrent``: at most that many calls in flight at once. At least one of the two.
* ``per``: ``agent`` (default: each agent — the task's owner — has its own allowance) or
  ``all`` (one allowance shared by everyone).

The decisions are pure: the worker reads the recent call starts (or the calls in flight) for a
rule's key under a PostgreSQL advisory lock and asks :func:`decide`; a call that may not go
now gets the instant its slot frees (``per_minute``) or a short recheck (``concurrent``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ordinaut.errors import ValidationError

WINDOW = timedelta(minutes=1)
CONCURRENT_RECHECK = timedelta(seconds=1)
MAX_RULES = 100
_KEYS = frozenset({"tools", "server", "per_minute", "concurrent", "per"})
_PATTERN = re.compile(r"[A-Za-z0-9_.:*?\[\]-]{1,200}")


@dataclass(frozen=True)
class RateLimit:
    """One rule; ``index`` is its position in the setting (part of its key)."""

    index: int
    tools: str | None = None
    server: str | None = None
    per_minute: int | None = None
    concurrent: int | None = None
    per_agent: bool = True

    @property
    def shown(self) -> str:
        """``notify.* 20/min per agent``."""
        what = self.tools if self.tools is not None else f"server {self.server}"
        caps = []
        if self.per_minute is not None:
            caps.append(f"{self.per_minute}/min")
        if self.concurrent is not None:
            caps.append(f"{self.concurrent} at once")
        return f"{what} {' and '.join(caps)} {'per agent' if self.per_agent else 'shared'}"

    def matches(self, address: str, server: str | None) -> bool:
        """True when a call to ``address`` (of MCP server ``server``) counts against this rule."""
        if self.tools is not None:
            return fnmatch.fnmatchcase(address, self.tools)
        return server is not None and server == self.server

    def key(self, agent: str) -> str:
        """Whose allowance a call uses: the rule and, per agent, the agent."""
        return f"{self.index}:{self.tools or self.server}:{agent if self.per_agent else '*'}"


def parse_rate_limits(text: str, *, field: str = "ORDINAUT_RATE_LIMITS") -> tuple[RateLimit, ...]:
    """Parse the setting (empty: no limits); ValidationError names the entry and key."""
    if not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"is not JSON: {exc}", field=field) from None
    if not isinstance(raw, list) or len(raw) > MAX_RULES:
        raise ValidationError(f"must be a JSON list of at most {MAX_RULES} rules", field=field)
    return tuple(_rule(i, entry, f"{field}[{i}]") for i, entry in enumerate(raw))


def _rule(index: int, raw: Any, field: str) -> RateLimit:
    if not isinstance(raw, dict):
        raise ValidationError("must be an object", field=field)
    for key in raw:
        if key not in _KEYS:
            raise ValidationError(
                f"unknown key {key!r}; allowed: {', '.join(sorted(_KEYS))}", field=f"{field}.{key}"
            )
    tools, server = raw.get("tools"), raw.get("server")
    if (tools is None) == (server is None):
        raise ValidationError("give one of tools (a pattern) or server", field=field)
    target = tools if tools is not None else server
    if not isinstance(target, str) or not _PATTERN.fullmatch(target):
        name = "tools" if tools is not None else "server"
        raise ValidationError(
            "must be a tool address pattern like notify.*", field=f"{field}.{name}"
        )
    caps: dict[str, int] = {}
    for name in ("per_minute", "concurrent"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
            raise ValidationError(
                "must be a whole number from 1 to 1000000", field=f"{field}.{name}"
            )
        caps[name] = value
    if not caps:
        raise ValidationError("give per_minute, concurrent or both", field=field)
    per = raw.get("per", "agent")
    if per not in ("agent", "all"):
        raise ValidationError("must be agent or all", field=f"{field}.per")
    return RateLimit(
        index,
        tools=tools,
        server=server,
        per_minute=caps.get("per_minute"),
        concurrent=caps.get("concurrent"),
        per_agent=per == "agent",
    )


def matching(rules: Sequence[RateLimit], address: str, server: str | None) -> tuple[RateLimit, ...]:
    """The rules a call to ``address`` counts against, in setting order."""
    return tuple(rule for rule in rules if rule.matches(address, server))


@dataclass(frozen=True)
class Wait:
    """A call that may not start yet: the rule, why, and when to look again."""

    rule: RateLimit
    until: datetime
    reason: str


def decide(
    rule: RateLimit, started: Sequence[datetime], in_flight: int, now: datetime
) -> Wait | None:
    """May a call start at ``now``? ``started``: starts under this rule's key within the last
    minute (any order); ``in_flight``: calls holding a concurrency slot. None means go.

    A start stamped after ``now`` counts too: it is a call another worker recorded while this
    one waited for the rule's lock, its clock read a moment later than ours (four calls of a
    3/min rule went out when such starts were left out).
    """
    if rule.per_minute is not None:
        recent = sorted(t for t in started if now - WINDOW < t)
        if len(recent) >= rule.per_minute:
            until = recent[len(recent) - rule.per_minute] + WINDOW
            return Wait(
                rule,
                until,
                f"rate limit {rule.shown}: {len(recent)} calls in the last minute",
            )
    if rule.concurrent is not None and in_flight >= rule.concurrent:
        return Wait(
            rule,
            now + CONCURRENT_RECHECK,
            f"rate limit {rule.shown}: {in_flight} calls in flight",
        )
    return None
