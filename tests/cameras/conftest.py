"""Fixtures for camera management: a real node on SQLite (or Redis), the real camera simulator,
the camera service on them, and replays of the captured real cameras."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from xueliang.connectors.onvif.replay import CaptureReplayServer
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.node import Node, open_node
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
VIDEO = SHARED / "data" / "vtest.avi"
CAPTURES = SHARED / "onvif-captures"
SIM_PASSWORD = "Sim-Passw0rd-9"
# Cameras live in 127.1.0.0/16; 127.9.0.0/16 is outside, for the guard.
ALLOWED = ["127.0.0.0/16", "127.1.0.0/16"]


def node_settings(data_dir: Path, **overrides: Any) -> Settings:
    cameras = {"probe_timeout_s": 3, "sweep": {"timeout_s": 2, "connect_timeout_s": 1, "first_delay_s": 3600}}
    cameras.update(overrides.pop("cameras", {}))
    return load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(data_dir), **overrides.pop("node", {})},
        security={"allowed_networks": ALLOWED},
        cameras=cameras,
        **overrides,
    )


def sim_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {"count": 8, "video": VIDEO, "rtsp_count": 0, "ptz_every": 4, "password": SIM_PASSWORD}
    values.update(overrides)
    return SimulatorConfig(**values)


@pytest.fixture
async def sim() -> AsyncIterator[CameraSimulator]:
    """Eight simulated cameras (0 and 4 with PTZ) on 127.1.0.1-8, no RTSP."""
    async with CameraSimulator(sim_config()) as simulator:
        yield simulator


@pytest.fixture
def start_sim(exit_stack: contextlib.AsyncExitStack) -> Callable[..., Awaitable[CameraSimulator]]:
    async def start(**overrides: Any) -> CameraSimulator:
        return await exit_stack.enter_async_context(CameraSimulator(sim_config(**overrides)))

    return start


@pytest.fixture
async def hikvision() -> AsyncIterator[CaptureReplayServer]:
    """The captured Hikvision DS-2DF7276-AEL, replayed with a live (NTP-synchronised) clock."""
    async with CaptureReplayServer(CAPTURES / "hikvision", live_clock=True) as server:
        yield server


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with open_node(node_settings(tmp_path)) as opened:
        yield opened


@pytest.fixture
async def service(node: Node) -> AsyncIterator[CameraService]:
    async with CameraService(node) as cameras:
        yield cameras
