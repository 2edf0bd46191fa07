"""When to restart a dead child, and when to stop trying: the supervisor's policy, pure.

A child that dies is started again after a delay that doubles with each failure inside the
window (``first_delay``, 2x, 4x … up to ``max_delay``); one that ran longer than ``window``
since its last failure starts over from ``first_delay``. The ``max_failures``-th failure
inside ``window`` seconds means something is broken that a restart will not fix (a bad
setting, a full disk, a port taken by another program): the supervisor gives up and says
so. Times are ``time.monotonic()`` seconds, passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    """How eagerly dead children are restarted."""

    max_failures: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 10.0


@dataclass
class Restarts:
    """One child's recent failures under a :class:`RestartPolicy`."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _failures: deque[float] = field(default_factory=deque)

    def failed(self, now: float) -> float | None:
        """Record a failure at ``now``; the seconds to wait before restarting, None to give up."""
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.policy.window:
            self._failures.popleft()
        count = len(self._failures)
        if count >= self.policy.max_failures:
            return None
        return min(self.policy.first_delay * 2.0 ** (count - 1), self.policy.max_delay)

    @property
    def recent(self) -> int:
        """Failures counted in the current window (as of the last :meth:`failed`)."""
        return len(self._failures)
