"""Fixtures of the wall tests: a real gateway (uvicorn) with the wall attached, the camera
simulator streaming real footage over RTSP, cameras registered for it, and users of each role.

WebRTC scenarios (``scenario_*.py``) run inside a private network namespace: see ``netns.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.conftest import RunningGateway, dev_settings, start_gateway
from tests.wall.netns import NETNS_ENV, in_netns
from xueliang.api.wall import Wall
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.gateway.models import CameraRecord, CameraStatus, Location, Role, StreamProfile, User
from xueliang.gateway.security import CameraCipher

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VIDEO = SHARED / "data" / "vtest.avi"
MODEL = SHARED / "models" / "yolox_nano.onnx"
ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"
CAMERA_PASSWORD = "Sim-Passw0rd-9"
USER_PASSWORD = "correct-horse-battery-1"

# Where the simulated cameras stand: two districts of Bazhong, townships and grids.
PLACES = [
    ("511902", "巴州区", "东城街道", "511902001001"),
    ("511902", "巴州区", "西城街道", "511902002003"),
    ("511903", "恩阳区", "登科街道", "511903001002"),
    ("511903", "恩阳区", "文治街道", "511903004001"),
]
NAMES = ["东城广场北口", "西城汽车站", "登科中学门口", "文治路口"]


@dataclass
class WallEnv:
    gateway: RunningGateway
    wall: Wall
    sim: CameraSimulator
    cameras: list[CameraRecord]
    operator: str  # login tokens
    technician: str
    admin: str

    @property
    def url(self) -> str:
        return self.gateway.url


def sim_config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "count": 4,
        "rtsp_count": 4,
        "ptz_every": 2,  # cameras 0 and 2 are PTZ domes
        "video": VIDEO,
        "password": CAMERA_PASSWORD,
        "event_period_s": 3600.0,
    }
    values.update(overrides)
    return SimulatorConfig.model_validate(values)


def camera_records(cipher: CameraCipher, sim: CameraSimulator, *, profile: str = "Profile_2") -> list[CameraRecord]:
    """One registry record per simulated camera, as provisioning would write it (sub stream on the wall)."""
    records = []
    for index, cam in enumerate(sim.cameras):
        region, district, township, grid = PLACES[index % len(PLACES)]
        ptz = cam.has_ptz
        profiles = [
            StreamProfile(
                token=token,
                encoding="H264",
                stream_uri=f"rtsp://{cam.address}:{sim.rtsp_port}/Streaming/Channels/{channel}",
                ptz=ptz,
            )
            for token, channel in (("Profile_1", "101"), ("Profile_2", "102"))
        ]
        records.append(
            CameraRecord(
                id=f"cam-{index}",
                name=NAMES[index % len(NAMES)],
                host=cam.address,
                port=sim.http_port,
                username="admin",
                password_enc=cipher.encrypt(CAMERA_PASSWORD),
                profiles=profiles,
                live_profile=profile,
                ptz=ptz,
                ptz_presets={"1": "大门 Gate", "2": "广场 Square"} if ptz else {},
                status=CameraStatus.ONLINE,
                location=Location(region_code=region, district=district, township=township, grid_code=grid),
                category="square",
            )
        )
    return records


async def add_user(gateway: RunningGateway, username: str, role: Role) -> str:
    node = gateway.node
    await node.stores.users.add_user(
        User(username=username, password_hash=await node.passwords.hash(USER_PASSWORD), role=role)
    )
    return await gateway.login(username, USER_PASSWORD)


@pytest.fixture
def netns() -> None:
    """WebRTC needs a non-loopback address for ICE: scenarios only run inside the test namespace."""
    if not in_netns():
        pytest.fail(f"run WebRTC scenarios through tests/wall/test_in_netns.py ({NETNS_ENV}=1 inside unshare -n)")


async def open_env(tmp_path: Path, sim: CameraSimulator) -> AsyncIterator[WallEnv]:
    settings = dev_settings(tmp_path, wall={"grace_s": 1.0})  # upstreams without viewers stop within the tests
    server, task, gateway = await start_gateway(settings)
    try:
        wall = server.config.app.state.wall
        assert isinstance(wall, Wall)
        await wall.relay.wait_running()
        records = camera_records(gateway.node.cipher, sim)
        for record in records:
            await gateway.node.stores.cameras.upsert(record)
        admin_token = await gateway.login(*gateway.admin)
        yield WallEnv(
            gateway=gateway,
            wall=wall,
            sim=sim,
            cameras=records,
            operator=await add_user(gateway, "op1", Role.OPERATOR),
            technician=await add_user(gateway, "tech1", Role.TECHNICIAN),
            admin=admin_token,
        )
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def sim() -> AsyncIterator[CameraSimulator]:
    async with CameraSimulator(sim_config()) as simulator:
        yield simulator


@pytest.fixture
async def env(tmp_path: Path, sim: CameraSimulator) -> AsyncIterator[WallEnv]:
    """Gateway + wall + simulator (4 cameras streaming, 2 with PTZ) + op1/tech1 users."""
    async for value in open_env(tmp_path, sim):
        yield value


@pytest.fixture
async def http_env(tmp_path: Path) -> AsyncIterator[WallEnv]:
    """Gateway + wall + simulator without RTSP (SOAP and snapshots only): for tests without video."""
    async with CameraSimulator(sim_config(rtsp_count=0)) as simulator:
        async for value in open_env(tmp_path, simulator):
            yield value
