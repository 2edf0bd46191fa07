"""Waking the control worker: coalesced requests for ``ordinaut.dispatch``, ``ordinaut.relay``
and ``ordinaut.trigger``.

:func:`request` sets a short-lived Redis flag and sends a message only when none is
pending; the task clears the flag before it starts its work (:func:`clear`), so work that
arrives later is always picked up by this pass or by the one it triggers. A burst of
``run_now`` calls, beat batches and finished runs therefore costs one message, not one each.
Runs workers ask for the relay after the events their runs wrote (:func:`after_runs`),
half a second later, so that one pass carries the events of many runs.
The periodic maintenance pass (a beat entry) is the backstop for a lost wake-up.

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
RELAY_TASK = "ordinaut.relay"
TRIGGER_TASK = "ordinaut.trigger"
# a published event asks for the relay under a flag of its own: it never waits behind a
# request that is pending for another reason (possibly a delayed one); the relay clears both
EVENT_RELAY = "ordinaut.relay:event"
CHECK_TASK = "ordinaut.check"  # on the runs queue: condition checks call tools
WEBHOOKS_TASK = "ordinaut.webhooks"  # on the runs queue: deliveries wait on receivers
# a pending flag older than this is ignored (its message was lost): a bound on how long a
# lost wake-up can suppress others; the periodic maintenance runs meanwhile anyway
FLAG_SECONDS = 10


def flag(rt: Runtime, task: str) -> str:
    """Redis key that says "a message for ``task`` is on its way"."""
    return rt.key("pending", task)


# runs workers ask for the relay this long after the events they wrote: one relay pass then
# carries every run's events of that moment (a pass per run would be a commit per run)
RELAY_DELAY = 0.5


def request(
    sender: Any,
    rt: Runtime,
    task: str,
    *,
    producer: Any = None,
    queue: str | None = None,
    pending_as: str | None = None,
    countdown: float | None = None,
) -> bool:
    """Ask a worker to run ``task`` soon (on the control queue unless ``queue``; after
    ``countdown`` seconds if given), unless a request is pending under ``pending_as``
    (default: the task's name); True if sent."""
    try:
        if not rt.redis.set(flag(rt, pending_as or task), "1", nx=True, ex=FLAG_SECONDS):
            return False
    except Exception:  # Redis trouble: the send below will say so, or succeed anyway
        log.debug("wake-up flag unavailable", exc_info=True)
    sender.send_task(
        task, queue=queue or rt.settings.control_queue, producer=producer, countdown=countdown
    )
    return True


# while dispatch holds work back for want of room in the queue window, finished runs ask for
# a refill pass this much later: a pass per message (60 a second in a burst, each counting the
# queue to find no room yet) cost more than the dispatching itself; the window refills once
# half of it is free, which takes longer than this at any rate a worker reaches
HELD_REFILL_DELAY = 0.2


def after_runs(sender: Any, rt: Runtime, *, wake_dispatch: bool) -> None:
    """What a runs worker asks for once a message's runs are done, in one Redis round trip:
    the relay :data:`RELAY_DELAY` later (their events), and a dispatch pass: now when
    ``wake_dispatch`` (a run left work for dispatch), :data:`HELD_REFILL_DELAY` later when
    dispatch left work for want of room in the queue window (:func:`hold`).

    Best effort, like both requests: the periodic maintenance covers a lost one.
    """
    relay_flag = flag(rt, RELAY_TASK)
    try:
        pipe = rt.redis.pipeline(transaction=False)
        pipe.set(relay_flag, "1", nx=True, ex=FLAG_SECONDS)
        pipe.exists(rt.key("dispatch", "held"))
        send_relay, is_held = pipe.execute()
    except Exception:  # Redis trouble: try both sends, which will say so or succeed anyway
        log.debug("wake-up flags unavailable", exc_info=True)
        send_relay, is_held = True, False
    if send_relay:
        try:
            sender.send_task(RELAY_TASK, queue=rt.settings.control_queue, countdown=RELAY_DELAY)
        except Exception:
            log.debug("could not request the relay", exc_info=True)
    try:
        if wake_dispatch:
            request_dispatch(sender, rt)
        elif is_held:  # a backlog waits for room: one refill pass per HELD_REFILL_DELAY
            request(sender, rt, DISPATCH_TASK, countdown=HELD_REFILL_DELAY)
    except Exception:
        log.debug("could not request dispatch", exc_info=True)


def request_dispatch(sender: Any, rt: Runtime, *, producer: Any = None) -> bool:
    """Ask for a dispatch pass (see :func:`request`)."""
    return request(sender, rt, DISPATCH_TASK, producer=producer)


def clear(rt: Runtime, task: str) -> None:
    """Forget the pending request for ``task`` (its pass is about to start)."""
    try:
        rt.redis.delete(flag(rt, task))
    except Exception:  # the flag expires by itself
        log.debug("could not clear a wake-up flag", exc_info=True)


def kicker(
    sender: Any, rt: Runtime, task: str = DISPATCH_TASK, *, pending_as: str | None = None
) -> Callable[[], None]:
    """A best-effort :func:`request` of ``task`` for the service layer (dispatch after
    ``run_now`` or an approval; the relay, as :data:`EVENT_RELAY`, after an event is
    published)."""

    def kick() -> None:
        try:
            request(sender, rt, task, pending_as=pending_as)
        except Exception:
            log.warning("could not send %s", task, exc_info=True)

    return kick


def once_per(rt: Runtime, name: str, seconds: int) -> bool:
    """True for the first caller in ``seconds`` across the deployment (a Redis flag); False
    for the rest, and while Redis is unreachable."""
    try:
        return bool(rt.redis.set(rt.key("once", name), "1", nx=True, ex=seconds))
    except Exception:
        log.debug("could not take the %s flag", name, exc_info=True)
        return False


HELD_SECONDS = 30


def hold(rt: Runtime, held_back: bool) -> None:
    """Remember whether dispatch left due work for want of room in the queue window, so
    workers ask for a dispatch pass as runs finish (the flag expires by itself)."""
    try:
        if held_back:
            rt.redis.set(rt.key("dispatch", "held"), "1", ex=HELD_SECONDS)
        else:
            rt.redis.delete(rt.key("dispatch", "held"))
    except Exception:
        log.debug("could not record held-back dispatch", exc_info=True)
