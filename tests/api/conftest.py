"""A real gateway (uvicorn on a free loopback port) per test, with its bootstrap admin."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import free_port
from xueliang.api.app import create_app
from xueliang.gateway.models import Role, User
from xueliang.gateway.node import Node
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings


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


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[RunningGateway]:
    """The gateway of ``settings`` served for the block, then stopped."""
    server, task, running = await start_gateway(settings)
    try:
        yield running
    finally:
        server.should_exit = True
        await task


async def add_user(gw: RunningGateway, username: str, role: Role, password: str = "correct-horse-1") -> str:
    """Add a user straight to the stores and log in over HTTP; returns the access token."""
    await gw.node.stores.users.add_user(
        User(username=username, password_hash=await gw.node.passwords.hash(password), role=role)
    )
    return await gw.login(username, password)


def deployment(request: pytest.FixtureRequest) -> dict[str, dict[str, object]]:
    """Settings overrides for the fixture's parameter: ``embedded`` (SQLite) or ``scaleout`` (the
    session's real redis-server, under a prefix of this test's own)."""
    storage: dict[str, object] = {}
    if request.param == "scaleout":
        storage = {"redis_url": request.getfixturevalue("redis_url"), "redis_prefix": f"t{free_port()}:"}
    events = {"codes": {"node_tag": "T01"}}  # scale-out refuses the default case-code tag
    return {"node": {"mode": request.param}, "storage": storage, "events": events}


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
    async with serving(dev_settings(tmp_path, **deployment(request))) as running:
        yield running
