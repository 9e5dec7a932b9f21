"""Snapshot source against a real HTTP server on loopback that demands digest auth, as cameras do.

The server (aiohttp) serves a 1920x1080 JPEG made from the real footage, a truncated one and a
file that is no JPEG, and counts requests; another socket accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web

from xueliang.connectors.onvif.policy import guarded_socket_factory
from xueliang.gateway.cameras.guard import NetworkGuard
from xueliang.inference.detector import Detector
from xueliang.inference.errors import CorruptFrame, SourceAuthFailed, SourceTimeout, SourceUnavailable
from xueliang.inference.frames import Frame, Image
from xueliang.inference.settings import DetectorSettings, SourceSettings
from xueliang.inference.sources import FrameSource, SnapshotClient
from xueliang.inference.sources.base import ReadThen
from xueliang.inference.sources.jpeg import decode_jpeg, jpeg_size, reduction_for
from xueliang.inference.sources.snapshot import redact

USER, PASSWORD, REALM, NONCE = "admin", "S3cret-pw", "IP Camera", "5f3c9a1b7e"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Camera:
    """The test camera: its URL base and what it saw."""

    base: str
    jpeg: bytes
    requests: list[str] = field(default_factory=list)


def _authorised(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Digest "):
        return False
    p = {k: v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header[7:])}
    ha1 = _md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = _md5(f"{request.method}:{p.get('uri', '')}")
    expected = _md5(f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:{p.get('qop')}:{ha2}")
    return p.get("username") == USER and p.get("nonce") == NONCE and p.get("response") == expected


@pytest.fixture
def big_jpeg(vtest_frame: Callable[[int], Image]) -> bytes:
    image = cv2.resize(vtest_frame(100), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


@pytest.fixture
async def camera(big_jpeg: bytes) -> AsyncIterator[Camera]:
    bodies = {"/snap.jpg": big_jpeg, "/truncated.jpg": big_jpeg[: len(big_jpeg) // 2], "/text.jpg": b"<html>no</html>"}
    bodies["/double.jpg"] = big_jpeg + big_jpeg
    cam = Camera(base="", jpeg=big_jpeg)

    async def handle(request: web.Request) -> web.StreamResponse:
        cam.requests.append(request.path)
        if request.path == "/basic.jpg":  # an older camera that only knows basic auth
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {token}":
                return web.Response(status=401, headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
            return web.Response(body=big_jpeg, content_type="image/jpeg")
        if not _authorised(request):
            challenge = f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth", algorithm=MD5'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        if request.path == "/endless.jpg":  # chunked, no length announced: only the count can stop it
            stream = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            for start in range(0, 2 * len(big_jpeg), 4096):
                await stream.write(big_jpeg[start % len(big_jpeg) :][:4096])
            await stream.write_eof()
            return stream
        body = bodies.get(request.path)
        if body is None:
            return web.Response(status=404, text="no such snapshot")
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    cam.base = f"http://{host}:{port}"
    yield cam
    await runner.cleanup()


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/snap.jpg"
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


SETTINGS = SourceSettings(snapshot_timeout_s=2.0, snapshot_connect_timeout_s=1.0)


async def test_snapshot_decodes_at_reduced_scale_and_keeps_the_jpeg(camera: Camera, models_dir: Path) -> None:
    async with SnapshotClient(SETTINGS, target_size=(416, 416)) as client:
        source = client.source("gate-1", camera.base + "/snap.jpg", username=USER, password=PASSWORD)
        assert isinstance(source, FrameSource)
        frame = await source.read()
        again = await source.read()
        # a source asked for again per visit is the same one: its digest challenge is reused
        same = client.source("gate-1", camera.base + "/snap.jpg", username=USER, password=PASSWORD)
        assert same is source
        await same.read()
        other = client.source("gate-1", camera.base + "/snap.jpg", username=USER, password="changed")
        assert other is not source
    assert frame.image.shape == (270, 480, 3)  # 1/4: the largest DCT scale still >= the 416 letterbox
    assert frame.scale == 0.25
    assert frame.jpeg == camera.jpeg
    assert (frame.camera_id, frame.source, frame.seq, again.seq) == ("gate-1", "snapshot", 1, 2)
    # digest: challenge once, then the kept challenge makes each snapshot one round trip
    assert camera.requests == ["/snap.jpg"] * 4
    stats = source.stats()
    assert (stats.frames, stats.corrupt, stats.errors, stats.bytes) == (3, 0, 0, 3 * len(camera.jpeg))
    # the reduced picture is still good enough for the detector
    detector = Detector(DetectorSettings(model_path=models_dir / "yolox_nano.onnx"))
    [people] = detector.detect_sync([frame], classes=frozenset({"person"}), min_score=0.5)
    assert len(people) >= 5
    assert all(d.x2 <= 480 and d.y2 <= 270 for d in people)  # boxes in the reduced image's pixels


async def test_read_then_runs_a_function_on_the_frame_in_the_decode_thread(camera: Camera) -> None:
    seen: list[tuple[str, int]] = []

    def inspect(frame: Frame) -> float:
        seen.append((threading.current_thread().name, frame.seq))
        return float(frame.image.mean())

    async with SnapshotClient(SETTINGS, target_size=(416, 416)) as client:
        source = client.source("gate-10", camera.base + "/snap.jpg", username=USER, password=PASSWORD)
        frame, mean = await source.read_then(inspect)
        plain = await source.read()
        corrupt = client.source("gate-10", camera.base + "/truncated.jpg", username=USER, password=PASSWORD)
        with pytest.raises(CorruptFrame, match="truncated JPEG") as caught:
            await corrupt.read_then(inspect)
    assert isinstance(source, ReadThen) and caught.value.camera_id == "gate-10"
    assert mean == float(plain.image.mean()) and np.array_equal(frame.image, plain.image)
    assert (frame.seq, plain.seq, frame.jpeg, frame.scale) == (1, 2, camera.jpeg, 0.25)
    assert seen == [("jpeg_0", 1)]  # on the decoder's thread, and never for a frame that did not decode
    assert corrupt.stats().corrupt == 1 and source.stats().frames == 2


async def test_full_scale_when_reduced_decode_is_off(camera: Camera) -> None:
    settings = SETTINGS.model_copy(update={"reduced_decode": False})
    async with SnapshotClient(settings, target_size=(416, 416)) as client:
        frame = await client.source("gate-1", camera.base + "/snap.jpg", username=USER, password=PASSWORD).read()
    assert frame.image.shape == (1080, 1920, 3) and frame.scale == 1.0


async def test_basic_auth_on_request(camera: Camera) -> None:
    async with SnapshotClient(SETTINGS) as client:
        good = client.source("gate-9", camera.base + "/basic.jpg", username=USER, password=PASSWORD, auth="basic")
        frame = await good.read()
        bad = client.source("gate-9", camera.base + "/basic.jpg", username=USER, password="nope", auth="basic")
        refused = r"camera gate-9: .*refused the credentials \(user 'admin', HTTP 401\)"
        with pytest.raises(SourceAuthFailed, match=refused):
            await bad.read()
    assert frame.jpeg == camera.jpeg
    assert camera.requests == ["/basic.jpg"] * 2  # basic: the credentials go with the first request


async def test_wrong_password_is_refused_clearly(camera: Camera) -> None:
    async with SnapshotClient(SETTINGS) as client:
        source = client.source("gate-2", camera.base + "/snap.jpg", username=USER, password="wrong-one")
        with pytest.raises(SourceAuthFailed) as caught:
            await source.read()
    message = str(caught.value)
    assert caught.value.camera_id == "gate-2"
    assert "camera gate-2" in message and "refused the credentials (user 'admin', HTTP 401)" in message
    assert "username and password" in message and "wrong-one" not in message
    assert source.stats().errors == 1


async def test_corrupt_jpegs_are_counted_and_not_fatal(camera: Camera) -> None:
    async with SnapshotClient(SETTINGS, target_size=(416, 416)) as client:
        truncated = client.source("gate-3", camera.base + "/truncated.jpg", username=USER, password=PASSWORD)
        text = client.source("gate-3", camera.base + "/text.jpg", username=USER, password=PASSWORD)
        good = client.source("gate-3", camera.base + "/snap.jpg", username=USER, password=PASSWORD)
        with pytest.raises(CorruptFrame, match=r"camera gate-3: snapshot from .*truncated\.jpg: truncated JPEG"):
            await truncated.read()
        with pytest.raises(CorruptFrame, match=r"not a JPEG"):
            await text.read()
        frame = await good.read()  # the client goes on
        assert frame.image.shape == (270, 480, 3)
        totals = client.stats()
    assert truncated.stats().corrupt == 1 and text.stats().corrupt == 1
    assert (totals.corrupt, totals.frames) == (2, 1)
    # every byte received is counted, decodable or not
    assert totals.bytes == len(camera.jpeg) // 2 + len(b"<html>no</html>") + len(camera.jpeg)


async def test_http_errors_and_unreachable_cameras(camera: Camera) -> None:
    async with SnapshotClient(SETTINGS) as client:
        missing = client.source("gate-4", camera.base + "/missing.jpg", username=USER, password=PASSWORD)
        with pytest.raises(SourceUnavailable, match=r"answered HTTP 404 Not Found: check the snapshot URI"):
            await missing.read()
        # a port nobody listens on
        sock = __import__("socket").socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        closed = client.source("gate-5", f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/snap.jpg")
        with pytest.raises(SourceUnavailable) as caught:
            await closed.read()
    assert "cannot be reached (ClientConnectorError" in str(caught.value)
    assert PASSWORD not in str(caught.value)  # credentials in the URL are never shown


async def test_a_socket_factory_refusing_the_address_stops_the_connection(camera: Camera) -> None:
    """The gateway's guard, at connect time (after DNS): the camera never sees a request."""
    guard = NetworkGuard([ipaddress.ip_network("10.0.0.0/8")])
    async with SnapshotClient(SETTINGS, socket_factory=guarded_socket_factory(guard)) as client:
        source = client.source("gate-10", camera.base + "/snap.jpg", username=USER, password=PASSWORD)
        with pytest.raises(SourceUnavailable, match=r"outside the allowed networks 10\.0\.0\.0/8"):
            await source.read()
    assert camera.requests == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/snap.jpg", "snap.jpg", f"http://{USER}:{PASSWORD}@[::1/snap.jpg"])
async def test_a_snapshot_uri_that_is_no_http_url_is_refused_on_read(url: str) -> None:
    """Parsed once when the source is made; what yarl or aiohttp refuses fails the read, not the patrol."""
    async with SnapshotClient(SETTINGS) as client:
        source = client.source("gate-9", url, username=USER, password=PASSWORD)
        refused = r"camera gate-9: .* the URI is not a usable http\(s\) URL"
        with pytest.raises(SourceUnavailable, match=refused) as caught:
            await source.read()
    assert source.stats().last_error == "bad url"
    assert PASSWORD not in str(caught.value)


async def test_answers_bigger_than_the_limit_are_refused(camera: Camera) -> None:
    limit = len(camera.jpeg) + 1
    settings = SETTINGS.model_copy(update={"snapshot_max_bytes": limit})
    async with SnapshotClient(settings) as client:
        announced = client.source("gate-7", camera.base + "/double.jpg", username=USER, password=PASSWORD)
        with pytest.raises(SourceUnavailable, match=rf"camera gate-7: .* sent more than {limit} bytes: not a snapshot"):
            await announced.read()
        endless = client.source("gate-7", camera.base + "/endless.jpg", username=USER, password=PASSWORD)
        with pytest.raises(SourceUnavailable, match=rf"endless\.jpg sent more than {limit} bytes"):
            await endless.read()
        # the client goes on: a snapshot within the limit still comes
        assert (await client.source("gate-8", camera.base + "/snap.jpg", username=USER, password=PASSWORD).read()).jpeg
    assert announced.stats().last_error == "too big" and endless.stats().errors == 1


async def test_a_camera_that_never_answers_times_out(silent_url: str) -> None:
    settings = SourceSettings(snapshot_timeout_s=0.3, snapshot_connect_timeout_s=0.3)
    async with SnapshotClient(settings) as client:
        source = client.source("gate-6", silent_url, username=USER, password=PASSWORD)
        with pytest.raises(SourceTimeout, match=r"camera gate-6: snapshot .* gave no complete answer within 0.3 s"):
            await source.read()
    assert source.stats().errors == 1 and source.stats().last_error == "timeout"


def test_jpeg_size_from_the_frame_header(big_jpeg: bytes) -> None:
    assert jpeg_size(big_jpeg) == (1920, 1080)
    image = np.zeros((123, 321, 3), np.uint8)
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert jpeg_size(progressive) == (321, 123)
    assert jpeg_size(b"\xff\xd8\xff\xda\x00\x02") is None  # scan data before any frame header
    assert jpeg_size(b"GIF89a....") is None
    assert jpeg_size(big_jpeg[:20]) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:a:b@host:99999/x", "rtsp://host:99999/x"),  # a port urlsplit refuses
        ("http://u:p/w@h/x", "http://h/x"),  # an unencoded '/' in the password
        ("http://admin:p@ss@cam/x.jpg", "http://cam/x.jpg"),  # an unencoded '@' in the password
        ("http://admin:pw@[fd00::1]:8080/s.jpg?a=b@c", "http://[fd00::1]:8080/s.jpg?a=b@c"),  # brackets kept
        ("http://h/snap.jpg?user=a@b", "http://h/snap.jpg?user=a@b"),  # an '@' in the query is no user
    ],
)
def test_redact_drops_credentials_from_any_url(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_jpeg_header_over_the_decoder_limit_is_a_corrupt_frame() -> None:
    """OpenCV raises (not returns None) for a frame header over its pixel limit: still a CorruptFrame."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    assert jpeg_size(bytes(data)) == (60000, 60000)
    with pytest.raises(CorruptFrame, match=r"camera x: the JPEG decoder refused \d+ bytes \(60000x60000\)"):
        decode_jpeg(bytes(data), what="camera x")


@pytest.mark.parametrize(
    ("size", "target", "factor"),
    [
        ((1920, 1080), (416, 416), 4),
        ((1920, 1080), (320, 320), 4),
        ((1920, 1080), (192, 192), 8),
        ((3840, 2160), (416, 416), 8),
        ((1280, 720), (416, 416), 2),
        ((768, 576), (416, 416), 1),
        ((640, 480), (640, 640), 1),
        ((1920, 1080), None, 1),
    ],
)
def test_reduction_keeps_at_least_the_letterboxed_pixels(
    size: tuple[int, int], target: tuple[int, int] | None, factor: int
) -> None:
    assert reduction_for(size, target) == factor
    if target is not None:
        fit = min(target[0] / size[0], target[1] / size[1])
        assert size[0] / factor >= min(size[0], size[0] * fit) - 1e-9
