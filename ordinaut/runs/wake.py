"""Waking the dispatcher: coalesced requests for ``ordinaut.dispatch``.

:func:`request_dispatch` sets a short-lived Redis flag and sends a message only when none is
pending; the dispatch task clears the flag before it leases (:func:`clear_request`), so work
that arrives later is always picked up by this pass or by the one it triggers. A burst of
``run_now`` calls, beat batches and finished runs therefore costs one message, not one each.
The periodic dispatch (a beat entry) is the backstop for a lost wake-up.

``sender`` is any Celery app (this module imports no Celery): the API and beat send with
their own app, a worker with the app it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ordinaut.runtime import Runtime

log = logging.getLogger("ordinaut.runs")

DISPATCH_TASK = "ordinaut.dispatch"
# a pending-dispatch flag older than this is ignored (its message was lost): a bound on how
# long a lost wake-up can suppress others; the periodic dispatch runs meanwhile anyway
DISPATCH_FLAG_SECONDS = 10


def dispatch_flag(rt: Runtime) -> str:
    """Redis key that says "a dispatch message is on its way"."""
    return rt.key("dispatch", "pending")


def request_dispatch(sender: Any, rt: Runtime, *, producer: Any = None) -> bool:
    """Ask a worker to dispatch soon, unless a request is already pending; True if sent."""
    try:
        if not rt.redis.set(dispatch_flag(rt), "1", nx=True, ex=DISPATCH_FLAG_SECONDS):
            return False
    except Exception:  # Redis trouble: the send below will say so, or succeed anyway
        log.debug("dispatch flag unavailable", exc_info=True)
    sender.send_task(DISPATCH_TASK, queue=rt.settings.control_queue, producer=producer)
    return True


def clear_request(rt: Runtime) -> None:
    """Forget the pending request (the dispatch that clears it is about to lease)."""
    try:
        rt.redis.delete(dispatch_flag(rt))
    except Exception:  # the flag expires by itself
        log.debug("could not clear the dispatch flag", exc_info=True)


def kicker(sender: Any, rt: Runtime) -> Callable[[], None]:
    """A best-effort ``request_dispatch`` for the service layer (``run_now``, approve)."""

    def kick() -> None:
        try:
            request_dispatch(sender, rt)
        except Exception:
            log.warning("could not send dispatch", exc_info=True)

    return kick
