"""/health: is every part of the deployment alive?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ordinaut.api.deps import Svc
from ordinaut.runtime import heartbeat_queues
from ordinaut.store import queries

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={200: {"description": "All parts alive"}, 503: {"description": "Something is down"}},
)
def health(svc: Svc) -> JSONResponse:
    """200 when database, Redis, beat and a worker for each queue are alive; 503 otherwise.

    Each part says ``ok`` or why not; ``queues`` counts the live workers consuming the
    control queue (dispatch, maintenance) and the runs queue, so a missing one is named.
    """
    rt = svc.runtime
    report: dict[str, Any] = {}
    try:
        with rt.engine.connect() as conn:
            queries.ping(conn)
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"down: {type(exc).__name__}"
    try:
        beat = rt.redis.get(rt.heartbeat_key("beat"))
        workers = list(rt.redis.scan_iter(match=rt.heartbeat_key("worker", "*"), count=100))
        beats = rt.redis.mget(workers) if workers else []
        report["redis"] = "ok"
        report["beat"] = "ok" if beat else "down"
        report["workers"] = len(workers)
    except Exception as exc:
        report["redis"] = f"down: {type(exc).__name__}"
        report["beat"] = "unknown"
        report["workers"] = 0
        beats = []
    consumed = [q for value in beats for q in heartbeat_queues(value)]
    queues = {"control": rt.settings.control_queue, "runs": rt.settings.runs_queue}
    report["queues"] = {name: consumed.count(queue) for name, queue in queues.items()}
    healthy = (
        report["database"] == "ok"
        and report["redis"] == "ok"
        and report["beat"] == "ok"
        and all(report["queues"].values())
    )
    report["status"] = "ok" if healthy else "degraded"
    return JSONResponse(report, status_code=200 if healthy else 503)
