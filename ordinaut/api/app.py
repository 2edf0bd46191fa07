"""The FastAPI application factory: the REST routes, and the MCP server at ``/mcp``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from ordinaut import __version__
from ordinaut.api import deps, errors
from ordinaut.api.context import RequestContext
from ordinaut.api.limits import InputBoundary
from ordinaut.api.routes import approvals, changes, health, misc, runs, schemas, tasks, tools
from ordinaut.celery import create_app
from ordinaut.config import Settings, load_settings
from ordinaut.mcp import http as mcp_http
from ordinaut.runs import wake
from ordinaut.runtime import Runtime
from ordinaut.service.facade import Service
from ordinaut.tools import redact


def create_api(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    redact.install_log_redaction(os.environ)  # no secret value in the API's logs
    runtime = Runtime(settings, role="api")
    sender = create_app(settings)  # sends dispatch requests (run_now, approve)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with mcp.running():  # the /mcp session manager lives as long as the app
                yield
        finally:
            sender.close()
            runtime.close()

    app = FastAPI(
        title="Ordinaut",
        version=__version__,
        description="Time, state and discipline for a personal fleet of AI agents.",
        lifespan=lifespan,
        dependencies=[Depends(deps.checked_strings)],
    )
    app.state.runtime = runtime
    app.state.service = Service(runtime, kick_dispatch=wake.kicker(sender, runtime))
    errors.install(app)
    # the last added runs first: a request id for everything, then the body checks
    app.add_middleware(InputBoundary, max_bytes=settings.max_body_bytes, size_only=(mcp_http.PATH,))
    app.add_middleware(RequestContext)
    for module in (tasks, runs, approvals, changes, tools, misc):
        app.include_router(module.router, responses=errors.ERROR_RESPONSES)
    app.include_router(health.router)
    app.include_router(schemas.router)
    mcp = mcp_http.attach(app, app.state.service)  # MCP streamable HTTP at /mcp
    return app


def app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory ordinaut.api.app:app_from_env``."""
    return create_api()
