"""Server-Sent Events of the event stream one caller may see.

Shared by ``GET /events/stream`` (bearer token) and the dashboard's live feed
(``GET /ui/events/stream``, session cookie): the same follower, the same visibility, the
same cap on open streams and the same wire format.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

from ordinaut.errors import Unavailable
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service

log = logging.getLogger("ordinaut.api")


def sse_response(
    request: Request,
    svc: Service,
    caller: Principal,
    *,
    after: str | None,
    topic: str | None,
    named: bool = True,
) -> StreamingResponse:
    """``id`` is the entry id (resume with ``Last-Event-ID``), ``event`` its topic (unless
    not ``named``: then a browser's ``EventSource.onmessage`` gets every entry), ``data`` the
    entry as JSON; a ``: heartbeat`` comment when nothing happened for a while."""
    follower = svc.follow_events(caller, after=after, topic=topic)
    settings = svc.runtime.settings
    block_ms = int(settings.event_stream_heartbeat_seconds * 1000)
    # streams wait in threads of their own, never in the pool the other routes run in, and
    # there are at most max_event_streams of them (503 past it)
    state = request.app.state
    if getattr(state, "event_streams", None) is None:
        state.event_streams = anyio.CapacityLimiter(settings.max_event_streams)
        state.event_stream_threads = anyio.CapacityLimiter(settings.max_event_streams)
    limiter: anyio.CapacityLimiter = state.event_streams
    threads: anyio.CapacityLimiter = state.event_stream_threads
    if limiter.borrowed_tokens >= limiter.total_tokens:
        raise Unavailable(
            f"{settings.max_event_streams} event streams are open on this server "
            "(ORDINAUT_MAX_EVENT_STREAMS); retry later or poll GET /events",
            retry_after=30,
        )

    async def lines() -> AsyncIterator[str]:
        async with limiter:  # held from before the first byte until the stream ends
            yield "retry: 2000\n: connected\n\n"
            while not await request.is_disconnected():
                try:
                    items = await anyio.to_thread.run_sync(follower.next, block_ms, limiter=threads)
                except Exception:  # Redis or the database went away: the client reconnects
                    log.warning("event stream ended", exc_info=True)
                    return
                if not items:
                    yield ": heartbeat\n\n"
                for item in items:
                    data = json.dumps(item, separators=(",", ":"), default=str)
                    event = f"event: {item['topic']}\n" if named else ""
                    yield f"id: {item['id']}\n{event}data: {data}\n\n"

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
