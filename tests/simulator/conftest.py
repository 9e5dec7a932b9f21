"""Fixtures of the camera simulator tests: a running simulator on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.simulator.helpers import VIDEO
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig

PASSWORD = "Test-Passw0rd"


def make_config(**overrides: Any) -> SimulatorConfig:
    """A small simulator on free ports; keyword arguments override any field."""
    values: dict[str, Any] = {
        "count": 8,
        "video": VIDEO,
        "rtsp_count": 0,
        "ptz_every": 2,
        "password": PASSWORD,
        "event_period_s": 30.0,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


@pytest.fixture
async def sim() -> AsyncIterator[CameraSimulator]:
    """Eight cameras (even ones with PTZ), no RTSP."""
    async with CameraSimulator(make_config()) as simulator:
        yield simulator


@pytest.fixture
def start_sim(exit_stack: contextlib.AsyncExitStack) -> Callable[..., Awaitable[CameraSimulator]]:
    """Start simulators with config overrides; all are stopped at the end of the test."""

    async def start(**overrides: Any) -> CameraSimulator:
        return await exit_stack.enter_async_context(CameraSimulator(make_config(**overrides)))

    return start


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client (no proxies from the environment)."""
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
        yield client
