"""One dependency's availability as a long-running loop sees it: a log line per change, backoff.

A loop that calls PostgreSQL or Redis every second must not log every failed call: an outage
of minutes would bury the log (and the one line that says what broke). :class:`Outage`
turns the calls' outcomes into *changes*: :meth:`~Outage.failed` returns a line to log only
when the dependency goes down, :meth:`~Outage.recovered` only when it comes back; while it
is down, :meth:`~Outage.may_try` spaces the attempts (``first`` seconds, doubling up to
``cap``). Pure: times are ``time.monotonic()`` seconds, passed in; the caller logs.
"""

from __future__ import annotations

from dataclasses import dataclass


def first_line(exc: BaseException) -> str:
    """A one-line reason for a failure (drivers like to add lines of context)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Outage:
    """Whether ``what`` is reachable, when to try again, and what to say about it."""

    what: str
    first: float = 1.0
    cap: float = 10.0
    down_since: float | None = None
    retry_at: float = 0.0
    _delay: float = 0.0

    @property
    def down(self) -> bool:
        """True between a failure and the next success."""
        return self.down_since is not None

    def may_try(self, now: float) -> bool:
        """False while down and the backoff since the last attempt has not passed."""
        return self.down_since is None or now >= self.retry_at

    def wait(self, now: float) -> float:
        """Seconds until :meth:`may_try` is true again (0 when it already is)."""
        return 0.0 if self.may_try(now) else self.retry_at - now

    def failed(self, now: float, reason: str) -> str | None:
        """Record a failed attempt; the line to log when this is the start of an outage."""
        if self.down_since is None:
            self.down_since, self._delay = now, self.first
            self.retry_at = now + self._delay
            return (
                f"{self.what} is unreachable ({reason}); retrying every {self.first:g} to "
                f"{self.cap:g} s, quietly until it is back"
            )
        self._delay = min(self._delay * 2, self.cap)
        self.retry_at = now + self._delay
        return None

    def recovered(self, now: float) -> str | None:
        """Record a success; the line to log when it ends an outage."""
        if self.down_since is None:
            return None
        line = f"{self.what} is reachable again after {now - self.down_since:.0f} s"
        self.down_since = None
        return line
