"""Fixtures for the ONVIF connector tests: replayed real cameras and misbehaving peers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import free_port
from xueliang.connectors.onvif import OnvifSettings
from xueliang.connectors.onvif.replay import CaptureReplayServer

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / ".." / "shared" / "onvif-captures"


def capture(camera: str, service: str, name: str) -> bytes:
    """One capture file, e.g. ``capture("axis", "core", "GetServices.Error")``."""
    return (CAPTURES / camera / service / f"{name}.xml").read_bytes()


@pytest.fixture
def settings() -> OnvifSettings:
    return OnvifSettings(timeout_s=5, connect_timeout_s=2, empty_pull_pause_s=0.01)


@pytest.fixture
async def hikvision() -> AsyncIterator[CaptureReplayServer]:
    async with CaptureReplayServer(CAPTURES / "hikvision") as server:
        yield server


@pytest.fixture
async def axis() -> AsyncIterator[CaptureReplayServer]:
    async with CaptureReplayServer(CAPTURES / "axis") as server:
        yield server


@pytest.fixture
def replay_factory(exit_stack: contextlib.AsyncExitStack) -> Callable[..., Awaitable[CaptureReplayServer]]:
    """Start a replay server with custom options; all are stopped at the end."""

    async def start(camera: str, **options: object) -> CaptureReplayServer:
        server = CaptureReplayServer(CAPTURES / camera, **options)  # type: ignore[arg-type]
        return await exit_stack.enter_async_context(server)

    return start


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


@pytest.fixture
async def raw_tcp_server() -> AsyncIterator[Callable[[bytes | None], Awaitable[int]]]:
    """A TCP server on 127.0.0.1 that reads a request then writes ``reply`` (None: never answers)."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(reply: bytes | None) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.read(65536)
            if reply is not None:
                writer.write(reply)
                await writer.drain()
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()
