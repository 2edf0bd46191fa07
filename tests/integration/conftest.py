"""An in-process API on a real loopback port (uvicorn in a thread), per test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ordinaut.api.app import create_api
from ordinaut.config import Settings
from ordinaut.runtime import Runtime
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from tests.support import bootstrap_admin, free_port, wait_for


@dataclass
class Api:
    base_url: str
    admin: httpx.Client
    settings: Settings
    make_client: Callable[[str | None], httpx.Client]

    def agent(self, name: str, scopes: list[str]) -> httpx.Client:
        """A client acting as a new agent with ``scopes``."""
        made = self.admin.post("/agents", json={"name": name, "scopes": scopes})
        assert made.status_code == 201, made.text
        return self.make_client(made.json()["token"])


@contextlib.contextmanager
def serve(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """Run the API for ``settings`` (or ``app``) on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app or create_api(settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, interval=0.02, what="the API to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    token = bootstrap_admin(settings)
    clients: list[httpx.Client] = []

    def make_client(tok: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        client = httpx.Client(base_url=base, headers=headers, timeout=10)
        clients.append(client)
        return client

    with serve(settings) as base:
        try:
            yield Api(base, make_client(token), settings, make_client)
        finally:
            for client in clients:
                client.close()


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[Service, Principal]]:
    """The service as the bootstrap admin (no dispatch kicks: no worker here)."""
    token = bootstrap_admin(settings)
    svc = Service(Runtime(settings), kick_dispatch=lambda: None)
    try:
        yield svc, svc.authenticate(token)
    finally:
        svc.runtime.close()
