"""Probing replays of two real cameras (Hikvision DS-2DF7276-AEL, Axis Q6045-E).

Every expected value below is read off the capture files in ``shared/onvif-captures``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime

import pytest
from lxml import etree

from xueliang.connectors.onvif import OnvifClient, OnvifSettings, ProbeResult
from xueliang.connectors.onvif import ns as onvif_ns
from xueliang.connectors.onvif.replay import CaptureReplayServer

HIK_CLOCK = datetime(2018, 2, 27, 18, 28, 1, tzinfo=UTC)  # hikvision/core/GetSystemDateAndTime.Response.xml
AXIS_CLOCK = datetime(2018, 2, 27, 23, 9, 59, tzinfo=UTC)  # axis/core/GetSystemDateAndTime.Response.xml


async def _probe(server: CaptureReplayServer, settings: OnvifSettings, password: str = "pw") -> ProbeResult:
    async with OnvifClient("127.0.0.1", server.port, "admin", password, settings=settings) as client:
        return await client.probe()


async def test_hikvision_probe_reads_identity_profiles_uris_and_presets(
    hikvision: CaptureReplayServer, settings: OnvifSettings
) -> None:
    result = await _probe(hikvision, settings)
    base = f"http://127.0.0.1:{hikvision.port}"

    assert result.identity.manufacturer == "HIKVISION"
    assert result.identity.model == "DS-2DF7276-AEL"
    assert result.identity.firmware == "V5.1.6 build 140401"
    assert result.identity.serial == "DS-2DF7276-AEL20140613CCWR468714298B"
    assert result.identity.hardware_id == "88"

    assert result.media_version == 1  # GetServices lists no ver20/media
    assert not result.used_capabilities_fallback
    assert result.services[onvif_ns.MEDIA] == f"{base}/onvif/Media"
    assert result.services[onvif_ns.PTZ] == f"{base}/onvif/PTZ"
    assert result.services[onvif_ns.EVENTS] == f"{base}/onvif/Events"
    assert result.events_supported and result.pullpoint_supported is True

    summary = [(p.token, p.name, p.encoding, p.width, p.height, p.fps, p.ptz) for p in result.profiles]
    assert summary == [
        ("Profile_1", "mainStream", "H264", 1280, 720, 10.0, True),
        ("Profile_2", "subStream", "H264", 704, 480, 30.0, True),
        ("Profile_3", "thirdStream", "H264", 704, 480, 30.0, True),
    ]
    assert [p.is_sub_stream for p in result.profiles] == [False, True, True]
    assert all(p.video_source == "VideoSource_1" for p in result.profiles)
    # The replay answers every GetStreamUri with the one captured answer (asked for Profile_3).
    for profile in result.profiles:
        assert profile.stream_uri == "rtsp://127.0.0.1:554/Streaming/Channels/3?transportmode=unicast&profile=Profile_3"
        assert profile.snapshot_uri == f"{base}/onvif/snapshot"
    assert result.live_profile == "Profile_1"  # the main H.264 stream
    assert result.analysis_profile == "Profile_2"  # smallest H.264 sub-stream >= 640 px wide

    assert result.ptz
    assert len(result.presets) == 255
    assert [(p.token, p.name) for p in result.presets[:5]] == [
        ("1", "preset 1"),
        ("2", "preset 1"),
        ("3", "preset 2"),
        ("4", "Parking"),
        ("5", "West"),
    ]
    assert result.presets[5].token == "7" and result.presets[5].name == ""  # unnamed slot
    assert result.presets[5].pan is None

    assert hikvision.methods() == [
        "GetSystemDateAndTime",
        "GetDeviceInformation",
        "GetServices",
        "GetProfiles",
        *["GetStreamUri", "GetSnapshotUri"] * 3,
        "GetPresets",
    ]


async def test_axis_probe_falls_back_to_get_capabilities(axis: CaptureReplayServer, settings: OnvifSettings) -> None:
    result = await _probe(axis, settings)
    base = f"http://127.0.0.1:{axis.port}"

    assert (result.identity.manufacturer, result.identity.model) == ("AXIS", "AXIS Q6045-E")
    assert (result.identity.firmware, result.identity.serial) == ("5.55.1.2", "00408CFAB754")
    assert result.identity.hardware_id == "1C9.2"

    # The real Axis faults on GetServices (ter:Action, "Action failed"): GetCapabilities follows.
    assert axis.methods()[2:4] == ["GetServices", "GetCapabilities"]
    assert result.used_capabilities_fallback
    assert result.media_version == 1
    assert result.services == {
        onvif_ns.DEVICE: f"{base}/onvif/device_service",
        onvif_ns.EVENTS: f"{base}/onvif/services",
        onvif_ns.MEDIA: f"{base}/onvif/services",
        onvif_ns.PTZ: f"{base}/onvif/services",
    }
    assert result.pullpoint_supported is False  # <tt:WSPullPointSupport>false

    summary = [(p.token, p.name, p.encoding, p.width, p.height, p.fps) for p in result.profiles]
    assert summary == [
        ("profile_1_h264", "profile_1 h264", "H264", 1280, 720, 30.0),
        ("profile_1_jpeg", "profile_1 jpeg", "JPEG", 1280, 720, 30.0),
    ]
    assert not any(p.is_sub_stream for p in result.profiles)
    stream = "rtsp://127.0.0.1/onvif-media/media.amp?profile=profile_1_jpeg&sessiontimeout=60&streamtype=unicast"
    snapshot = f"{base}/onvif-cgi/jpg/image.cgi?resolution=1280x720&compression=20"
    assert {p.stream_uri for p in result.profiles} == {stream}
    assert {p.snapshot_uri for p in result.profiles} == {snapshot}
    assert result.live_profile == result.analysis_profile == "profile_1_h264"

    assert result.ptz and len(result.presets) == 21
    living_room = result.presets[0]
    assert (living_room.token, living_room.name) == ("22", "Living Room")
    assert living_room.pan == pytest.approx(-4.66240772e-06)
    assert living_room.tilt == pytest.approx(5.93397374e-07)
    assert living_room.zoom == pytest.approx(1.52603152e-09)


@pytest.mark.parametrize("camera", ["hikvision", "axis"])
async def test_private_addresses_in_answers_are_rewritten_to_the_host_we_reached(
    camera: str, replay_factory: object, settings: OnvifSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """Camera quirk: the answers name 10.10.1.60 / 192.168.0.19; the client follows 127.0.0.1."""
    as_recorded = await replay_factory(camera, rewrite_addresses=False)  # type: ignore[operator]
    rewritten = await replay_factory(camera)  # type: ignore[operator]
    with caplog.at_level(logging.INFO, logger="xueliang.connectors.onvif.urls"):
        raw = await _probe(as_recorded, settings)
    clean = await _probe(rewritten, settings)

    def normalised(result: ProbeResult, port: int) -> object:
        return [(p.token, p.stream_uri, p.snapshot_uri.replace(str(port), "PORT")) for p in result.profiles]

    assert normalised(raw, as_recorded.port) == normalised(clean, rewritten.port)
    assert all("127.0.0.1" in xaddr for xaddr in raw.services.values())
    private_ip = "10.10.1.60" if camera == "hikvision" else "192.168.0.19"
    notes = [r.getMessage() for r in caplog.records if private_ip in r.getMessage()]
    assert len(notes) == 1 and f"127.0.0.1:{as_recorded.port}" in notes[0]  # logged once, names the camera


async def test_probe_signs_with_the_camera_clock_and_a_valid_digest(
    hikvision: CaptureReplayServer, settings: OnvifSettings
) -> None:
    """The capture's clock is 2018: the token's Created must follow it, and its digest must verify."""
    result = await _probe(hikvision, settings, password="s3cret")
    expected_offset = (HIK_CLOCK - datetime.now(UTC)).total_seconds()
    assert result.clock_offset_s == pytest.approx(expected_offset, abs=5)

    first, second = hikvision.requests[0], hikvision.requests[1]
    assert first.method == "GetSystemDateAndTime"
    assert b"Security" not in first.body  # the one call made without credentials
    assert second.method == "GetDeviceInformation"
    root = etree.fromstring(second.body)
    token = root.find(".//{*}Security/{*}UsernameToken")
    assert token is not None
    created = token.findtext("{*}Created")
    nonce = base64.b64decode(token.findtext("{*}Nonce"))
    assert token.findtext("{*}Username") == "admin"
    sent_at = datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert abs((sent_at - HIK_CLOCK).total_seconds()) < 30  # camera time, not ours (2018 vs now)
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"s3cret").digest()).decode()
    assert token.findtext("{*}Password") == digest


async def test_axis_clock_offset_follows_its_capture(axis: CaptureReplayServer, settings: OnvifSettings) -> None:
    result = await _probe(axis, settings)
    assert result.clock_offset_s == pytest.approx((AXIS_CLOCK - datetime.now(UTC)).total_seconds(), abs=5)


async def test_live_clock_means_no_offset(replay_factory: object, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision", live_clock=True)  # type: ignore[operator]
    result = await _probe(server, settings)
    assert abs(result.clock_offset_s) < 2
