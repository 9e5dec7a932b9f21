"""Hostile and broken camera answers to the probe (what a bulk import runs per camera).

The replayed Hikvision capture is mutated one answer at a time. Each case ends in either a
precise ``OnvifError`` naming the camera and the operation, or a probe that goes on without the
optional part; never a bare exception, a hang, or the password in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.onvif.conftest import capture
from xueliang.connectors.onvif import OnvifClient, OnvifSettings, ProbeResult
from xueliang.connectors.onvif.errors import DeviceFault, MalformedResponse, OnvifError, Timeout
from xueliang.connectors.onvif.replay import CaptureReplayServer

Factory = Callable[..., Awaitable[CaptureReplayServer]]
PASSWORD = "Pa55-w0rd!"
STREAM = b"rtsp://10.10.1.60:554"  # hikvision/media/GetStreamUri.Response.xml
SNAPSHOT = b"http://10.10.1.60/onvif/snapshot"  # hikvision/media/GetSnapshotUri.Response.xml
MEDIA_XADDR = b"http://10.10.1.60/onvif/Media"  # hikvision/core/GetServices.Response.xml


def _edited(service: str, method: str, old: bytes, new: bytes) -> bytes:
    body = capture("hikvision", service, f"{method}.Response")
    assert old in body, f"{old!r} not in the {method} capture"
    return body.replace(old, new)


async def _mutated(factory: Factory, service: str, method: str, old: bytes, new: bytes) -> CaptureReplayServer:
    """A replayed Hikvision whose ``method`` answer has ``old`` replaced by ``new``."""
    server = await factory("hikvision")
    server.answer(service, method, _edited(service, method, old, new))
    return server


async def _probe(server: CaptureReplayServer, settings: OnvifSettings) -> ProbeResult:
    async with OnvifClient("127.0.0.1", server.port, "admin", PASSWORD, settings=settings) as client:
        return await client.probe()


async def _probe_error(server: CaptureReplayServer, settings: OnvifSettings) -> OnvifError:
    with pytest.raises(OnvifError) as caught:
        await _probe(server, settings)
    error = caught.value
    assert error.camera == f"127.0.0.1:{server.port}"
    assert PASSWORD not in str(error) and PASSWORD not in error.message_zh
    return error


# ---------------------------------------------------------------- numbers and dates


@pytest.mark.parametrize("width", [b"INF", b"1e400", b"NaN", b"-1280"])
async def test_absurd_resolution_is_malformed_naming_the_profile(
    width: bytes, replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Old code: INF and 1e400 escaped as a bare OverflowError; -1280 was accepted as a width."""
    server = await replay_factory("hikvision")
    server.answer(
        "media", "GetProfiles", _edited("media", "GetProfiles", b">1280</tt:Width>", b">" + width + b"</tt:Width>")
    )
    error = await _probe_error(server, settings)
    assert isinstance(error, MalformedResponse) and error.operation == "GetProfiles"
    assert "Profile_1" in error.detail


@pytest.mark.parametrize("fps", [b"NaN", b"INF", b"-10"])
async def test_absurd_frame_rate_is_unknown(fps: bytes, replay_factory: Factory, settings: OnvifSettings) -> None:
    """Old code: the profile carried fps nan / inf / -10.0. An optional number: unknown (0.0)."""
    server = await replay_factory("hikvision")
    edited = _edited("media", "GetProfiles", b">10</tt:FrameRateLimit>", b">" + fps + b"</tt:FrameRateLimit>")
    server.answer("media", "GetProfiles", edited)
    result = await _probe(server, settings)
    assert [p.fps for p in result.profiles] == [0.0, 30.0, 30.0]


async def test_unreadable_preset_position_is_none(replay_factory: Factory, settings: OnvifSettings) -> None:
    """Old code: a pan of "NaN" became float('nan')."""
    server = await replay_factory("axis")
    presets = capture("axis", "ptz", "GetPresets.Response")
    assert b'x="-4.66240772E-06"' in presets
    server.answer("ptz", "GetPresets", presets.replace(b'x="-4.66240772E-06"', b'x="NaN"', 1))
    result = await _probe(server, settings)
    assert result.presets[0].name == "Living Room" and result.presets[0].pan is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<tt:Hour>18</tt:Hour>", b"<tt:Hour>999999999999</tt:Hour>"),
        (b"<tt:Month>2</tt:Month>", b"<tt:Month>13</tt:Month>"),
    ],
)
async def test_impossible_clock_is_malformed(
    old: bytes, new: bytes, replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Old code: an hour of 10^12 escaped as a bare OverflowError (month 13 pins the old behaviour)."""
    server = await _mutated(replay_factory, "core", "GetSystemDateAndTime", old, new)
    error = await _probe_error(server, settings)
    assert isinstance(error, MalformedResponse) and error.operation == "GetSystemDateAndTime"
    assert "impossible date" in error.detail


# ---------------------------------------------------------------- encodings


@pytest.mark.parametrize("declared", [b"GB2312", b"gbk"])
async def test_chinese_gb_encodings_are_read(declared: bytes, replay_factory: Factory, settings: OnvifSettings) -> None:
    """Camera quirk: firmwares declare GB2312 and send GBK-only characters (镕 is not in GB2312).
    Old code: 'Invalid bytes in character encoding' and the camera failed its probe."""
    server = await replay_factory("hikvision")
    body = capture("hikvision", "core", "GetDeviceInformation.Response")
    body = body.replace(b'encoding="UTF-8"', b'encoding="' + declared + b'"')
    server.answer("core", "GetDeviceInformation", body.replace(b"HIKVISION", "海康威视镕".encode("gbk")))
    result = await _probe(server, settings)
    assert result.identity.manufacturer == "海康威视镕"


# ---------------------------------------------------------------- URIs and addresses


@pytest.mark.parametrize(
    "uri", [b"/Streaming/Channels/3", b"http://[::1/Streaming", b"rtsp://10.10.1.60:99999/x", b"http://10.10.1.60/x"]
)
async def test_unusable_stream_uri_is_left_empty_and_the_probe_goes_on(
    uri: bytes, replay_factory: Factory, settings: OnvifSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """Old code: 'http://[::1' escaped as a bare ValueError; the others were stored as stream URIs."""
    server = await replay_factory("hikvision")
    body = capture("hikvision", "media", "GetStreamUri.Response")
    start = body.index(STREAM)
    server.answer("media", "GetStreamUri", body[:start] + uri + body[body.index(b"</tt:Uri>") :])
    with caplog.at_level(logging.WARNING, logger="xueliang.connectors.onvif.media"):
        result = await _probe(server, settings)
    assert [p.stream_uri for p in result.profiles] == ["", "", ""]
    assert all(p.snapshot_uri.endswith("/onvif/snapshot") for p in result.profiles)
    assert len(result.presets) == 255  # the rest of the probe went on
    notes = [r.getMessage() for r in caplog.records if "stream URI of profile" in r.getMessage()]
    assert len(notes) == 3 and f"127.0.0.1:{server.port}" in notes[0] and "Profile_1" in notes[0]


@pytest.mark.parametrize(
    "answer",
    [
        _edited("media", "GetSnapshotUri", SNAPSHOT, b""),  # no Uri: cameras without snapshots
        capture("hikvision", "media", "GetSnapshotUri.Response")[:200],  # truncated
        _edited("media", "GetSnapshotUri", SNAPSHOT, b"http://10.10.1.60:abc/snap"),  # not a URL
    ],
    ids=["empty", "truncated", "bad-port"],
)
async def test_broken_snapshot_answer_is_no_snapshot(
    answer: bytes, replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Snapshots are optional. Old code: empty and truncated answers failed the whole probe."""
    server = await replay_factory("hikvision")
    server.answer("media", "GetSnapshotUri", answer)
    result = await _probe(server, settings)
    assert [p.snapshot_uri for p in result.profiles] == ["", "", ""]
    assert all(p.stream_uri.startswith("rtsp://127.0.0.1:554/") for p in result.profiles)


@pytest.mark.parametrize(
    ("xaddr", "wanted"),
    [
        (b"ftp://10.10.1.60/onvif/Media", "unusable address 'ftp://"),
        (b"http://[::1/onvif/Media", "the Media service: its address"),
        (b"http://admin:" + PASSWORD.encode() + b"@10.10.1.60:x/onvif/Media", "'http://***@10.10.1.60:x/"),
    ],
)
async def test_unusable_service_address_is_malformed_naming_it(
    xaddr: bytes, wanted: str, replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Old code: bare aiohttp.NonHttpUrlClientError / ValueError out of the probe."""
    server = await _mutated(replay_factory, "core", "GetServices", MEDIA_XADDR, xaddr)
    error = await _probe_error(server, settings)
    assert isinstance(error, MalformedResponse) and wanted in error.detail


async def test_credentials_in_an_unreachable_address_are_not_shown(
    replay_factory: Factory, settings: OnvifSettings, closed_port: int
) -> None:
    """Old code: 'cannot connect to http://admin:<password>@127.0.0.1:...' in the error text."""
    server = await replay_factory("hikvision")
    xaddr = f"http://admin:{PASSWORD}@127.0.0.1:{closed_port}/onvif/Media".encode()
    server.answer("core", "GetServices", _edited("core", "GetServices", MEDIA_XADDR, xaddr))
    error = await _probe_error(server, settings)
    assert error.operation == "GetProfiles" and f"http://***@127.0.0.1:{closed_port}/" in error.detail


# ---------------------------------------------------------------- faults


async def test_fault_with_http_200_is_a_device_fault(replay_factory: Factory, settings: OnvifSettings) -> None:
    """Pins: a fault is a fault whatever the HTTP status (the real Axis fault, served with 200)."""
    server = await replay_factory("hikvision")
    server.answer("media", "GetProfiles", capture("axis", "core", "GetServices.Error"), status=200)
    error = await _probe_error(server, settings)
    assert isinstance(error, DeviceFault) and error.operation == "GetProfiles" and "Action failed" in error.detail


async def test_fault_with_unknown_nested_subcodes_on_stream_uri_degrades(
    replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Pins: vendor subcodes nobody knows are a refusal of that stream, not of the camera."""
    fault = (
        b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>'
        b"<s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>hik:Busy</s:Value><s:Subcode>"
        b"<s:Value>hik:Later</s:Value></s:Subcode></s:Subcode></s:Code>"
        b"<s:Reason><s:Text>busy</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"
    )
    server = await replay_factory("hikvision")
    server.answer("media", "GetStreamUri", fault, status=500)
    result = await _probe(server, settings)
    assert [p.stream_uri for p in result.profiles] == ["", "", ""] and len(result.presets) == 255


# ---------------------------------------------------------------- size and time


async def test_gigantic_answer_is_refused_by_size(replay_factory: Factory, settings: OnvifSettings) -> None:
    """Old code had no limit: a 1 MB name was read and parsed (here over a 64 KiB limit)."""
    server = await replay_factory("hikvision")
    huge = _edited("core", "GetDeviceInformation", b"HIKVISION", b"H" * (1 << 20))
    server.answer("core", "GetDeviceInformation", huge)
    error = await _probe_error(server, settings.model_copy(update={"max_answer_bytes": 1 << 16}))
    assert isinstance(error, MalformedResponse) and error.operation == "GetDeviceInformation"
    assert "onvif.max_answer_bytes" in error.detail


@contextlib.asynccontextmanager
async def _dripping_camera(chunked: bool) -> AsyncIterator[int]:
    """Answers HTTP 200 at once, then one body byte every 50 ms until the test ends."""
    stop = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.read(65536)
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 1000000"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n" + framing + b"\r\n\r\n")
        while not stop.is_set() and not writer.is_closing():
            writer.write(b"1\r\n<\r\n" if chunked else b"<")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        stop.set()
        await asyncio.gather(*handlers, return_exceptions=True)
        server.close()
        await server.wait_closed()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("chunked", [False, True])
async def test_camera_answering_byte_by_byte_hits_the_total_timeout(chunked: bool, settings: OnvifSettings) -> None:
    """Pins: the total timeout holds while bytes keep arriving (never tested before: only silence)."""
    async with _dripping_camera(chunked) as port:
        quick = settings.model_copy(update={"timeout_s": 0.5})
        async with OnvifClient("127.0.0.1", port, "admin", PASSWORD, settings=quick) as client:
            with pytest.raises(Timeout) as caught:
                await client.probe()
    assert caught.value.operation == "GetSystemDateAndTime" and "0.5 s" in caught.value.detail
