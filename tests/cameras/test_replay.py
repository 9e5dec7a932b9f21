"""Provisioning and health checks against replays of two real cameras (Hikvision DS-2DF7276-AEL,
Axis Q6045-E) from ``shared/onvif-captures``: the CameraRecord holds what the cameras said."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from xueliang.connectors.onvif.replay import CaptureReplayServer
from xueliang.gateway.cameras.models import CameraSpec
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.cameras.sweep import HealthSweep
from xueliang.gateway.models import CameraStatus, StreamProfile
from xueliang.gateway.node import Node

from .conftest import CAPTURES


@pytest.fixture
async def axis() -> AsyncIterator[CaptureReplayServer]:
    # The real Axis authenticates every request, even GetSystemDateAndTime.
    async with CaptureReplayServer(CAPTURES / "axis", live_clock=True, refuse_unsigned=True) as server:
        yield server


def spec(server: CaptureReplayServer, name: str) -> CameraSpec:
    return CameraSpec(host="127.0.0.1", port=server.port, username="admin", password="pw", name=name)


async def test_replayed_hikvision_becomes_the_right_record(
    hikvision: CaptureReplayServer, service: CameraService, node: Node
) -> None:
    provisioned = await service.provision(spec(hikvision, "海康球机"), "tech")
    record = provisioned.record
    assert record.status is CameraStatus.ONLINE and record.last_error == "" and provisioned.reason == ""
    identity = (record.manufacturer, record.model, record.firmware)
    assert identity == ("HIKVISION", "DS-2DF7276-AEL", "V5.1.6 build 140401")
    assert (record.serial, record.hardware_id) == ("DS-2DF7276-AEL20140613CCWR468714298B", "88")
    stream = "rtsp://127.0.0.1:554/Streaming/Channels/3?transportmode=unicast&profile=Profile_3"
    snapshot = f"http://127.0.0.1:{hikvision.port}/onvif/snapshot"
    assert record.profiles == [
        StreamProfile(token="Profile_1", name="mainStream", encoding="H264", width=1280, height=720, fps=10.0,
                      stream_uri=stream, snapshot_uri=snapshot, ptz=True),
        StreamProfile(token="Profile_2", name="subStream", encoding="H264", width=704, height=480, fps=30.0,
                      stream_uri=stream, snapshot_uri=snapshot, ptz=True),
        StreamProfile(token="Profile_3", name="thirdStream", encoding="H264", width=704, height=480, fps=30.0,
                      stream_uri=stream, snapshot_uri=snapshot, ptz=True),
    ]  # fmt: skip
    assert (record.analysis_profile, record.live_profile) == ("Profile_2", "Profile_1")
    assert record.ptz and len(record.ptz_presets) == 255
    assert [record.ptz_presets[t] for t in ("1", "4", "5", "7")] == ["preset 1", "Parking", "West", ""]
    assert abs(record.clock_offset_s) < 2  # live clock: NTP-synchronised camera

    # The health sweep's lean path reads the same camera the same way.
    hikvision.requests.clear()
    service.endpoints = type(service.endpoints)()
    report = await HealthSweep(node, service).sweep_once()
    assert report.by_status == {"online": 1} and report.reprobed == 0
    assert hikvision.methods() == ["GetSystemDateAndTime", "GetServices", "GetStreamUri"]
    assert b"<ProfileToken>Profile_2</ProfileToken>" in hikvision.requests[-1].body
    assert b"PasswordDigest" in hikvision.requests[-1].body and b">pw<" not in hikvision.requests[-1].body


async def test_replayed_axis_becomes_the_right_record(
    axis: CaptureReplayServer, service: CameraService, node: Node
) -> None:
    provisioned = await service.provision(spec(axis, "Axis dome"), "tech")
    record = provisioned.record
    assert record.status is CameraStatus.ONLINE
    assert (record.manufacturer, record.model, record.firmware) == ("AXIS", "AXIS Q6045-E", "5.55.1.2")
    assert (record.serial, record.hardware_id) == ("00408CFAB754", "1C9.2")
    assert [(p.token, p.encoding, p.width, p.height, p.fps) for p in record.profiles] == [
        ("profile_1_h264", "H264", 1280, 720, 30.0),
        ("profile_1_jpeg", "JPEG", 1280, 720, 30.0),
    ]
    stream = "rtsp://127.0.0.1/onvif-media/media.amp?profile=profile_1_jpeg&sessiontimeout=60&streamtype=unicast"
    snapshot = f"http://127.0.0.1:{axis.port}/onvif-cgi/jpg/image.cgi?resolution=1280x720&compression=20"
    assert {(p.stream_uri, p.snapshot_uri) for p in record.profiles} == {(stream, snapshot)}
    assert record.analysis_profile == record.live_profile == "profile_1_h264"  # no sub-stream: the main one
    assert record.ptz and len(record.ptz_presets) == 21 and record.ptz_presets["22"] == "Living Room"
    assert "GetCapabilities" in provisioned.reason  # the real Axis faults on GetServices

    axis.requests.clear()
    service.endpoints = type(service.endpoints)()
    report = await HealthSweep(node, service).sweep_once()
    assert report.by_status == {"online": 1}
    # Unsigned clock query refused (as the real one does), then signed; GetServices faults, so
    # GetCapabilities finds the media service; then the stream URI.
    assert axis.methods() == [
        "GetSystemDateAndTime", "GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetStreamUri",
    ]  # fmt: skip


async def test_replay_with_a_changed_answer_is_probed_again(
    hikvision: CaptureReplayServer, service: CameraService, node: Node
) -> None:
    record = await service.add(spec(hikvision, "海康"), "tech")
    moved = (
        (CAPTURES / "hikvision" / "media" / "GetStreamUri.Response.xml")
        .read_bytes()
        .replace(b"Channels/3", b"Channels/301")
    )
    hikvision.answer("media", "GetStreamUri", moved)
    report = await HealthSweep(node, service).sweep_once()
    assert report.reprobed == 1
    updated = await service.get(record.id)
    assert all(p.stream_uri.startswith("rtsp://127.0.0.1:554/Streaming/Channels/301?") for p in updated.profiles)
