"""OnvifClient against the camera simulator: digest auth enforced, Media2, misbehaviour on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from xueliang.connectors.onvif import (
    AuthFailed,
    ClockSkew,
    MalformedResponse,
    OnvifClient,
    OnvifSettings,
    Timeout,
    Unreachable,
    create_session,
)
from xueliang.connectors.onvif.simulator import CameraSimulator, SimCamera, SimulatorConfig

from .conftest import REPO

VIDEO = REPO / ".." / "shared" / "data" / "vtest.avi"


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[CameraSimulator]:
    config = SimulatorConfig(
        count=8, video=VIDEO, rtsp_count=0, ptz_every=2, event_period_s=0.3, cache_dir=tmp_path / "sim-cache"
    )
    async with CameraSimulator(config) as simulator:
        yield simulator


def _client(
    sim: CameraSimulator, camera: SimCamera, settings: OnvifSettings, password: str | None = None
) -> OnvifClient:
    secret = sim.config.password if password is None else password
    return OnvifClient(camera.address, sim.http_port, sim.config.username, secret, settings=settings)


async def test_healthy_cameras_probe_through_one_shared_session(sim: CameraSimulator, settings: OnvifSettings) -> None:
    async with create_session(settings) as session:
        for camera in sim.cameras[:4]:
            client = OnvifClient(
                camera.address, sim.http_port, sim.config.username, sim.config.password, session=session
            )
            async with client:
                result = await client.probe()
            assert result.identity.manufacturer == camera.manufacturer
            assert result.identity.model == camera.model
            assert result.identity.firmware == camera.firmware
            assert result.identity.serial == camera.serial
            assert result.media_version == 2  # the simulator offers ver20/media
            assert abs(result.clock_offset_s) < 2
            assert len(result.profiles) == 2
            main, sub = result.profiles
            assert sim.streams is not None
            assert (main.width, main.height) == sim.streams.main_size
            assert (sub.width, sub.height) == sim.config.sub_size
            assert sub.is_sub_stream and result.analysis_profile == sub.token and result.live_profile == main.token
            assert main.stream_uri.startswith(f"rtsp://{camera.address}:")
            assert main.snapshot_uri.startswith(f"http://{camera.address}:{sim.http_port}/")
            assert result.ptz == camera.has_ptz
            if camera.ptz is not None:
                assert [(p.token, p.name) for p in result.presets] == [
                    (p.token, p.name) for p in camera.ptz.presets.values()
                ]
    assert sim.counters()["soap"]["auth_failures"] == 0


async def test_wrong_password_is_auth_failed(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[1]
    async with _client(sim, camera, settings, password="not-it") as client:
        with pytest.raises(AuthFailed) as caught:
            await client.probe()
    assert type(caught.value) is AuthFailed
    assert f"{camera.address}:{sim.http_port}" in str(caught.value)


async def test_skewed_clock_is_compensated(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[2]
    camera.faults.clock_skew_s = 3 * 3600.0  # beyond the camera's own 300 s token window
    async with _client(sim, camera, settings) as client:
        result = await client.probe()
    assert result.clock_offset_s == pytest.approx(3 * 3600.0, abs=2)
    assert result.identity.serial == camera.serial


async def test_skewed_clock_and_refused_login_is_clock_skew(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[3]
    camera.faults.clock_skew_s = -2 * 3600.0
    camera.faults.wrong_password = True
    async with _client(sim, camera, settings) as client:
        with pytest.raises(ClockSkew) as caught:
            await client.probe()
    assert "2h" in str(caught.value) and "behind" in str(caught.value) and "NTP" in str(caught.value)


async def test_no_get_services_falls_back(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[4]
    camera.faults.no_get_services = True
    async with _client(sim, camera, settings) as client:
        result = await client.probe()
    assert result.used_capabilities_fallback and result.media_version == 1  # GetCapabilities has no Media2
    assert [p.token for p in result.profiles] == ["Profile_1", "Profile_2"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("timeout", Timeout), ("offline", Unreachable), ("malformed_xml", MalformedResponse)],
)
async def test_misbehaving_cameras(
    sim: CameraSimulator, settings: OnvifSettings, fault: str, expected: type[Exception]
) -> None:
    camera = sim.cameras[5]
    setattr(camera.faults, fault, True)
    async with _client(sim, camera, settings.model_copy(update={"timeout_s": 0.5})) as client:
        with pytest.raises(expected) as caught:
            await client.probe()
    assert f"{camera.address}:{sim.http_port}" in str(caught.value)


async def test_ptz_commands_move_the_simulated_head(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[0]
    assert camera.ptz is not None
    async with _client(sim, camera, settings) as client:
        result = await client.probe()
        await client.continuous_move(result.live_profile, pan=0.5, tilt=0.0, zoom=0.2, timeout_s=1)
        await client.stop(result.live_profile)
        await client.goto_preset(result.live_profile, "2")
    operations = [(c.operation, c.pan, c.zoom, c.preset_token) for c in camera.ptz.commands]
    assert operations == [
        ("ContinuousMove", 0.5, 0.2, None),
        ("Stop", None, None, None),
        ("GotoPreset", None, None, "2"),
    ]


async def test_pullpoint_events_from_the_simulator(sim: CameraSimulator, settings: OnvifSettings) -> None:
    camera = sim.cameras[6]
    client = _client(sim, camera, settings)
    async with client, client.events() as events:
        first, second = await anext(events), await anext(events)
    assert first.topic == second.topic == "tns1:RuleEngine/CellMotionDetector/Motion"
    assert first.property_operation == "Initialized" and second.property_operation == "Changed"
    assert first.data["IsMotion"] != second.data["IsMotion"]
    assert first.camera == f"{camera.address}:{sim.http_port}"
    assert events.stats.events >= 2
