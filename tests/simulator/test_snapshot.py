"""Snapshots: JPEG frames of the video over HTTP digest authentication, each camera at its own offset."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import httpx
import numpy as np
from onvif import ONVIFCamera

from tests.simulator.conftest import PASSWORD
from xueliang.connectors.onvif.simulator import CameraSimulator


def _url(sim: CameraSimulator, index: int) -> str:
    return f"http://{sim.cameras[index].address}:{sim.http_port}/onvif/snapshot/1.jpg"


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


async def test_digest_protected_jpeg_of_the_video(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    denied = await http.get(_url(sim, 0))
    assert denied.status_code == 401
    challenge = denied.headers["www-authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge
    wrong = await http.get(_url(sim, 0), auth=httpx.DigestAuth("admin", "nope"))
    assert wrong.status_code == 401
    response = await http.get(_url(sim, 0), auth=httpx.DigestAuth("admin", PASSWORD))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    image = await asyncio.to_thread(_decode, response.content)
    assert image.shape == (576, 768, 3)
    assert float(image.std()) > 10.0  # a real picture, not a flat colour


async def test_cameras_show_different_moments(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    auth = httpx.DigestAuth("admin", PASSWORD)
    first = (await http.get(_url(sim, 0), auth=auth)).content
    second = (await http.get(_url(sim, 1), auth=auth)).content
    a, b = await asyncio.gather(asyncio.to_thread(_decode, first), asyncio.to_thread(_decode, second))
    assert float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) > 1.0  # 37 frames apart


async def test_upscaled_snapshot_like_a_real_camera(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = await start_sim(snapshot_size=(1920, 1080), count=2)
    client = ONVIFCamera(sim.cameras[1].address, sim.http_port, "admin", PASSWORD)
    try:
        await client.update_xaddrs()
        data = await client.get_snapshot("Profile_1")  # the onvif library's own digest client
    finally:
        await client.close()
    assert data is not None
    image = await asyncio.to_thread(_decode, data)
    assert image.shape == (1080, 1920, 3)


async def test_basic_credentials_are_accepted_too(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    response = await http.get(_url(sim, 2), auth=httpx.BasicAuth("admin", PASSWORD))
    assert response.status_code == 200


def _write_clip(path: Path, frames: int) -> None:
    """A short synthetic MJPEG clip: a bright square moving over a gradient."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    for i in range(frames):
        image = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        cv2.rectangle(image, (i * 3 % 80, 20), (i * 3 % 80 + 16, 36), (0, 255, 255), -1)
        writer.write(image)
    writer.release()


async def test_encoded_frames_are_cached_for_the_next_start(start_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    video = tmp_path / "clip.avi"
    await asyncio.to_thread(_write_clip, video, 30)
    cache = tmp_path / "cache"
    first = await start_sim(video=video, snapshot_size=(160, 120), count=2, cache_dir=cache)
    await first.preload_snapshots()
    assert first.counters()["frames"]["encodes"] == 30
    assert any(p.name.startswith("frames-160x120") for p in cache.iterdir())
    await first.stop()
    second = await start_sim(video=video, snapshot_size=(160, 120), count=2, cache_dir=cache)
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        response = await http.get(_url(second, 1), auth=httpx.DigestAuth("admin", PASSWORD))
    assert response.status_code == 200
    assert (await asyncio.to_thread(_decode, response.content)).shape == (120, 160, 3)
    assert second.counters()["frames"]["encodes"] == 0  # served from the cache written by the first run
