"""Cheap failed authentication: recent token lookups remembered, failures throttled per address.

Without these, every request with a bad token costs a database lookup, so a flood of them
loads PostgreSQL for free. Two guards, both in process memory (no Redis: authentication
must not depend on it) and both bounded in size:

* :class:`TokenCache` remembers each lookup's answer, found or not, for ``ttl`` seconds, keyed
  by the token's hash. Revoking or rotating in this process forgets the agent at once; other
  processes notice within ``ttl`` (keep it short). It also remembers, for ``trust`` seconds,
  which tokens were valid recently.
* :class:`FailureThrottle` counts failed authentications per client address in fixed windows;
  past ``limit`` in a window the address gets 429 with Retry-After, without any lookup, until
  the window ends. A token valid recently is still looked up from there, so a flood from a
  shared address does not lock out the agents behind it.

Time is an argument (``now``, monotonic seconds), so both are tested without a clock; a lock
makes each safe to share between the API's worker threads.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from ordinaut.errors import RateLimited
from ordinaut.service.auth import Principal

MAX_ENTRIES = 10_000


TRUST_SECONDS = 600.0


@dataclass(frozen=True)
class _Entry:
    principal: Principal | None  # None: no such token (unknown or revoked)
    expires: float  # the answer stands until then
    trusted_until: float  # found valid recently: not throttled until then


class TokenCache:
    """Token hash → the agent it belongs to (or None), for ``ttl`` seconds."""

    def __init__(
        self, ttl: float, *, trust: float = TRUST_SECONDS, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.ttl, self.trust, self.max_entries = ttl, trust, max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token_hash: str, now: float) -> _Entry | None:
        """The remembered answer for ``token_hash``, or None when there is none (or too old)."""
        with self._lock:
            entry = self._entries.get(token_hash)
        if entry is None or entry.expires <= now:
            return None
        return entry

    def recently_valid(self, token_hash: str, now: float) -> bool:
        """Whether ``token_hash`` belonged to an agent at a lookup in the last ``trust`` s."""
        with self._lock:
            entry = self._entries.get(token_hash)
        return entry is not None and entry.principal is not None and entry.trusted_until > now

    def put(self, token_hash: str, principal: Principal | None, now: float) -> None:
        """Remember an answer (the oldest entries go first once full)."""
        trusted = now + self.trust if principal is not None else now
        with self._lock:
            self._entries.pop(token_hash, None)
            self._entries[token_hash] = _Entry(principal, now + self.ttl, trusted)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_agent(self, agent_id: uuid.UUID) -> None:
        """Drop every entry for ``agent_id`` (after a revoke or a token rotation)."""
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.principal is not None and entry.principal.agent_id == agent_id
            ]
            for key in stale:
                del self._entries[key]


class FailureThrottle:
    """Failed authentications per client address, ``limit`` per ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0, *, max_entries: int = MAX_ENTRIES):
        self.limit, self.window, self.max_entries = limit, window, max_entries
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address → (n, start)
        self._lock = threading.Lock()

    def check(self, address: str | None, now: float) -> None:
        """RateLimited when ``address`` has used up its failures in the current window."""
        if address is None or self.limit <= 0:
            return
        with self._lock:
            count, start = self._counts.get(address, (0, now))
        if count >= self.limit and now < start + self.window:
            retry = max(1, math.ceil(start + self.window - now))
            raise RateLimited(
                f"too many failed authentications from {address}; retry in {retry} s",
                retry_after=retry,
            )

    def failed(self, address: str | None, now: float) -> None:
        """Count one failed authentication from ``address``."""
        if address is None or self.limit <= 0:
            return
        with self._lock:
            count, start = self._counts.pop(address, (0, now))
            if now >= start + self.window:
                count, start = 0, now
            self._counts[address] = (count + 1, start)
            while len(self._counts) > self.max_entries:
                self._counts.popitem(last=False)
