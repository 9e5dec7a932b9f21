"""A real gateway (uvicorn on a free loopback port) per test, with its bootstrap admin."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from xueliang.api.app import create_app
from xueliang.gateway.node import Node
from xueliang.gateway.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningGateway:
    url: str
    node: Node
    admin: tuple[str, str]
    settings: Settings

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def login(self, username: str, password: str) -> str:
        async with self.client() as client:
            response = await client.post("/api/auth/login", json={"username": username, "password": password})
            response.raise_for_status()
            return str(response.json()["access_token"])


async def start_gateway(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], RunningGateway]:
    seen: dict[str, object] = {}

    def announce(node: Node, created: tuple[str, str] | None) -> None:
        seen["node"], seen["admin"] = node, created

    app = create_app(settings, announce=announce)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.http.port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    node = seen["node"]
    assert isinstance(node, Node)
    admin = seen["admin"]
    assert isinstance(admin, tuple)
    return server, task, RunningGateway(f"http://127.0.0.1:{settings.http.port}", node, admin, settings)


def dev_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(data_dir), **overrides.pop("node", {})},  # type: ignore[dict-item]
        http={"port": free_port()},
        **overrides,
    )


@pytest.fixture(params=["embedded", "scaleout"])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The gateway in each deployment: SQLite, and Redis (a real redis-server)."""
    node_settings: dict[str, object] = {"mode": request.param}
    storage: dict[str, object] = {}
    if request.param == "scaleout":
        storage["redis_url"] = request.getfixturevalue("redis_url")
        storage["redis_prefix"] = f"t{free_port()}:"
    events = {"codes": {"node_tag": "T01"}}  # scale-out refuses the default case-code tag
    settings = dev_settings(tmp_path, node=node_settings, storage=storage, events=events)
    server, task, running = await start_gateway(settings)
    try:
        yield running
    finally:
        server.should_exit = True
        await task
