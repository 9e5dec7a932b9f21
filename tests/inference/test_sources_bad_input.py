"""Bad input to the RTSP and file sources: each gets a precise SourceError/CorruptFrame (what, which
one, what to do), never a bare ValueError/cv2.error, never a password in a message, log or stat.

RTSP cases run against the camera simulator's real RTSP server (digest auth) or a closed port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest

from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.inference.errors import CorruptFrame, SourceAuthFailed, SourceUnavailable
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources import FileSource, RtspSource, SourceState, paced
from xueliang.inference.sources.rtsp_probe import BadRtspUrl, diagnose, parse_rtsp_url

FAST = SourceSettings(rtsp_open_timeout_s=2.0, rtsp_read_timeout_s=1.0, reconnect_initial_s=0.2, reconnect_max_s=1.0)
PASSWORD = "p@ss:w/rd%"  # every character that must be percent-encoded in a URL
PATH = "/Streaming/Channels/101"


@pytest.fixture
async def simulator(vtest_path: Path) -> AsyncIterator[CameraSimulator]:
    config = SimulatorConfig(count=1, rtsp_count=1, video=vtest_path, main_fps=10, password=PASSWORD)
    async with CameraSimulator(config) as sim:
        yield sim


def url_of(sim: CameraSimulator, password: str = PASSWORD, path: str = PATH) -> str:
    return f"rtsp://admin:{quote(password, safe='')}@{sim.cameras[0].address}:{sim.rtsp_port}{path}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_secret(text: str) -> None:
    for secret in ("w/rd", "w%2Frd", "wrong", "s3cret"):
        assert secret not in text, text


async def test_percent_encoded_special_credentials_open_the_stream(simulator: CameraSimulator) -> None:
    """Pins: a password with '@', ':', '/', '%' works once percent-encoded (FFmpeg decodes it)."""
    source = RtspSource("cam-enc", url_of(simulator), FAST)
    frame = await source.read()
    await source.close()
    assert frame.image.shape == (576, 768, 3)
    assert source.stats().errors == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"rtsp://admin:{PASSWORD}@127.0.0.1:554{PATH}", "percent-encode"),  # raw specials: bare ValueError before
        ("rtsp://admin:s3cret@[::1/x", "unclosed '['"),
        ("rtsp://admin:s3cret@127.0.0.1:99999/x", "port"),
        ("http://admin:s3cret@127.0.0.1/x", "scheme http:// is not rtsp://"),
        ("127.0.0.1/x", "scheme missing"),
        ("", "empty"),
        ("rtsp://admin:s3cret@host/x\nInjected: 1", "control characters"),
        ("rtsp:///x", "no host"),
    ],
)
async def test_an_unusable_url_is_refused_on_read_without_its_password(
    url: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Old code: a bare ValueError from the constructor, or FFmpeg retried for ever ("cannot open")."""
    caplog.set_level(logging.DEBUG)
    source = RtspSource("cam-bad", url, FAST)  # constructing never raises: the patrol and watch carry on
    with pytest.raises(SourceUnavailable) as caught:
        await source.read()
    await source.close()
    message = str(caught.value)
    assert message.startswith("camera cam-bad: stream URL ") and why in message, message
    assert "correct the camera's stream URI" in message
    assert source._thread is None  # never handed to FFmpeg
    assert "bad stream URL" in source.stats().last_error
    for text in (message, source.stats().last_error, caplog.text):
        assert_no_secret(text)


async def test_wrong_password_is_auth_failed_at_once_and_not_retried(
    simulator: CameraSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Old code: SourceTimeout after the whole wait, 'refused, unreachable, timeout or bad credentials'."""
    caplog.set_level(logging.DEBUG)
    source = RtspSource("cam-login", url_of(simulator, password="wrong@pw"), FAST)
    with pytest.raises(SourceAuthFailed) as caught:
        await source.latest(within=30)
    await source.close()
    message = str(caught.value)
    assert f"camera cam-login: rtsp://{simulator.cameras[0].address}:{simulator.rtsp_port}{PATH}" in message
    assert "refused the password of user 'admin' (RTSP 401)" in message
    assert source.stats().errors == 1 and source.stats().reconnects == 0  # no second try of a bad password
    for text in (message, source.stats().last_error, caplog.text):
        assert_no_secret(text)


async def test_no_credentials_and_an_unknown_path_are_told_apart(simulator: CameraSimulator) -> None:
    bare = RtspSource("cam-anon", f"rtsp://{simulator.cameras[0].address}:{simulator.rtsp_port}{PATH}", FAST)
    with pytest.raises(SourceAuthFailed, match="asks for credentials and the URL has none"):
        await bare.read()
    await bare.close()
    lost = RtspSource("cam-404", url_of(simulator, path="/no/such/stream"), FAST)
    with pytest.raises(SourceUnavailable, match=r"no stream rtsp://.*/no/such/stream \(RTSP 404\): re-probe"):
        await lost.latest(within=1.0)
    await lost.close()


async def test_a_closed_port_is_unavailable_with_the_reason() -> None:
    """Old code: SourceTimeout, 'refused, unreachable, timeout or bad credentials'."""
    port = closed_port()
    source = RtspSource("cam-off", f"rtsp://admin:s3cret@127.0.0.1:{port}{PATH}", FAST)
    with pytest.raises(SourceUnavailable) as caught:
        await source.latest(within=0.5)
    await source.close()
    assert f"127.0.0.1:{port} refused the connection: nothing listens there" in str(caught.value)
    assert source.state is SourceState.STOPPED


async def test_the_diagnosis_answers_the_digest_challenge_correctly(simulator: CameraSimulator) -> None:
    """A right password must pass the diagnosis' own DESCRIBE, or a good camera would be called 'wrong password'."""
    kind, why = await asyncio.to_thread(diagnose, parse_rtsp_url(url_of(simulator)), 2.0)
    assert kind is SourceUnavailable and "RTSP 200" in why
    kind, why = await asyncio.to_thread(diagnose, parse_rtsp_url(url_of(simulator, password="nope")), 2.0)
    assert kind is SourceAuthFailed and "(RTSP 401)" in why


async def test_a_camera_that_never_answers_is_a_timeout(simulator: CameraSimulator) -> None:
    """The diagnosis' own reads are bounded: a camera that accepts and never answers is a timeout."""
    simulator.cameras[0].faults.timeout = True
    kind, why = await asyncio.to_thread(diagnose, parse_rtsp_url(url_of(simulator)), 0.3)
    assert kind.__name__ == "SourceTimeout" and "gave no RTSP answer within 0.3 s" in why


async def test_a_port_that_answers_http_is_not_a_timeout() -> None:
    """FFmpeg raises the same InvalidDataError for 'no answer' and 'not RTSP': an answer at once is the latter."""

    async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        kind, why = await asyncio.to_thread(diagnose, parse_rtsp_url(f"rtsp://admin:s3cret@127.0.0.1:{port}/x"), 5.0)
    assert kind is SourceUnavailable and f"127.0.0.1:{port} does not speak RTSP" in why
    assert_no_secret(why)


def test_parse_keeps_ipv6_brackets_and_decodes_credentials() -> None:
    target = parse_rtsp_url("rtsp://ad%3Amin:p%40ss@[::1]:8554/live?ch=1")
    assert (target.host, target.port, target.uri) == ("::1", 8554, "rtsp://[::1]:8554/live?ch=1")
    assert (target.username, target.password) == ("ad:min", "p@ss")
    assert parse_rtsp_url("rtsps://cam/x").port == 322 and parse_rtsp_url("RTSP://cam").port == 554
    with pytest.raises(BadRtspUrl, match="an '@' after the host"):
        parse_rtsp_url("rtsp://us/er:s3cret@cam/x")  # unencoded '/' in the user name: host would be 'us'


# --- files --------------------------------------------------------------------------------------


async def test_images_the_decoder_refuses_are_skipped_not_raised(tmp_path: Path) -> None:
    """Old code: a bare cv2.error (empty PNG; PNG header claiming 60000x60000) ended the folder."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    (tmp_path / "1-empty.png").write_bytes(b"")
    (tmp_path / "2-huge.png").write_bytes(bomb)
    (tmp_path / "3-good.png").write_bytes(cv2.imencode(".png", np.full((8, 8, 3), 99, np.uint8))[1].tobytes())
    source = FileSource("folder-bad", tmp_path)
    frames = [f async for f in paced(source)]
    stats = source.stats()
    await source.close()
    assert [f.image.shape for f in frames] == [(8, 8, 3)]
    assert (stats.frames, stats.corrupt) == (1, 2)
    with pytest.raises(CorruptFrame, match=r"2-huge\.png: the decoder refused \d+ bytes: .*CV_IO_MAX_IMAGE_PIXELS"):
        FileSource("folder-bad", tmp_path)._decode_file(tmp_path / "2-huge.png")
    with pytest.raises(CorruptFrame, match=r"1-empty\.png: empty file \(0 bytes\)"):
        FileSource("folder-bad", tmp_path)._decode_file(tmp_path / "1-empty.png")


def test_a_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    """Old code: 'neither a video file nor a folder' for a path that is simply not there."""
    with pytest.raises(SourceUnavailable, match=r"camera x: .*missing\.avi does not exist: check the path"):
        FileSource("x", tmp_path / "missing.avi")


async def test_an_empty_or_vanished_video_says_so(tmp_path: Path) -> None:
    """Old code: 'not a video, or unsupported codec' for both."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    source = FileSource("x", empty)
    with pytest.raises(SourceUnavailable, match=r"cannot open video .*empty\.mp4: the file is empty \(0 bytes\)"):
        await source.read()
    await source.close()
    gone = tmp_path / "gone.mp4"
    gone.write_bytes(b"x" * 10)
    source = FileSource("x", gone)
    gone.unlink()
    with pytest.raises(SourceUnavailable, match=r"gone\.mp4: the file no longer exists"):
        await source.read()
    await source.close()
