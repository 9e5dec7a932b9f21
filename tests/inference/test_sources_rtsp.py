"""RTSP source against the camera simulator's real RTSP server streaming the real footage as H.264.

(FFmpeg cannot serve RTSP by itself: its muxer only pushes to a server, ``-rtsp_flags listen``
is for the demuxer. The simulator is a real RTSP/1.0 server with digest auth, RTP over TCP.)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.inference.clip_match import assert_people_as_on_the_clip
from tests.inference.rtsp_url import stream_url
from tests.waiting import wait_until
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.inference.detector import Detector
from xueliang.inference.errors import SourceAuthFailed
from xueliang.inference.settings import DetectorSettings, SourceSettings
from xueliang.inference.sources import FrameSource, RtspSource, SourceState
from xueliang.inference.sources.rtsp import backoff_delay

FAST = SourceSettings(rtsp_open_timeout_s=2.0, rtsp_read_timeout_s=1.0, reconnect_initial_s=0.2, reconnect_max_s=1.0)


def simulator_config(vtest_path: Path, rtsp_port: int = 0) -> SimulatorConfig:
    return SimulatorConfig(count=2, rtsp_count=2, video=vtest_path, rtsp_port=rtsp_port, main_fps=10)


@pytest.fixture
async def simulator(vtest_path: Path) -> AsyncIterator[CameraSimulator]:
    async with CameraSimulator(simulator_config(vtest_path)) as sim:
        yield sim


async def test_reads_real_frames_and_finds_people(simulator: CameraSimulator, models_dir: Path) -> None:
    """The consumer reads a frame only once two more came since the last one it read: the one in
    between is replaced unread (newest wins) and counted as a drop, however slow the machine."""
    source = RtspSource("sim-0", stream_url(simulator), FAST, max_fps=5)
    assert isinstance(source, FrameSource)
    detector = Detector(DetectorSettings(model_path=models_dir / "yolox_nano.onnx"))
    async with source:
        frames = [await source.latest(within=20)]
        while len(frames) < 4:
            last = frames[-1].seq
            await wait_until(lambda last=last: source.stats().frames >= last + 2, "two more frames from the stream")
            frames.append(await source.latest(within=20))
        assert source.state is SourceState.STREAMING
        stats = source.stats()
    assert all(f.image.shape == (576, 768, 3) and f.source == "rtsp" and f.camera_id == "sim-0" for f in frames)
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})  # each one newer than the last
    assert stats.frames >= 4 and stats.errors == 0
    # the reader converted more than it delivered; every one skipped was counted as a drop
    assert stats.drops > 0 and stats.frames >= len(frames) + stats.drops, stats
    assert frames[-1].seq - frames[0].seq > len(frames) - 1  # the consumer saw newest frames, not each one
    people = detector.detect_sync(frames, classes=frozenset({"person"}), min_score=0.5)
    assert max(len(p) for p in people) >= 2, people  # the campus path always has walkers on it
    assert_people_as_on_the_clip(frames, people, detector, min_score=0.5)
    assert source.state is SourceState.STOPPED
    assert source._thread is not None and not source._thread.is_alive()


async def test_reconnects_with_backoff_when_the_server_comes_back(vtest_path: Path) -> None:
    sim = CameraSimulator(simulator_config(vtest_path))
    await sim.start()
    port = sim.rtsp_port
    source = RtspSource("sim-1", stream_url(sim), FAST, rng=random.Random(7))
    await source.start()
    try:
        first = await source.latest(within=10)
        await sim.stop()  # the camera goes away mid-stream
        await wait_until(lambda: source.stats().errors >= 1, "the lost stream to be noticed")
        await wait_until(lambda: source.state is not SourceState.STREAMING, "the reader to leave STREAMING")
        assert "stream lost" in source.stats().last_error or "cannot open" in source.stats().last_error
        before = source.stats().frames  # frame seq counts every frame published
        await asyncio.sleep(0.5)  # a few failed attempts while the camera is down
        assert source.stats().frames == before and source.state is not SourceState.STREAMING
        async with CameraSimulator(simulator_config(vtest_path, rtsp_port=port)) as again:
            assert again.rtsp_port == port
            await wait_until(lambda: source.stats().frames > before, "frames from the camera that came back")
            fresh = await source.latest(within=15)
            assert fresh.seq > before > first.seq and fresh.image.shape == (576, 768, 3)
            assert source.state is SourceState.STREAMING
            assert source.stats().reconnects >= 1
    finally:
        await source.stop()
    assert source._thread is not None and not source._thread.is_alive()
    assert source.state is SourceState.STOPPED


async def test_a_one_shot_grab_needs_no_start(simulator: CameraSimulator) -> None:
    """Patrol takes one frame: read() opens the stream, close() ends the reader."""
    source = RtspSource("sim-4", stream_url(simulator, index=1), FAST)
    frame = await source.read()
    await source.close()
    assert frame.image.shape == (576, 768, 3) and frame.seq >= 1
    assert source.state is SourceState.STOPPED
    assert source._thread is not None and not source._thread.is_alive()


async def test_wrong_password_is_refused_with_the_reason(simulator: CameraSimulator) -> None:
    source = RtspSource("sim-2", stream_url(simulator, password="not-it"), FAST)
    async with source:
        with pytest.raises(SourceAuthFailed) as caught:
            await source.latest(within=10)
    message = str(caught.value)
    assert "camera sim-2: rtsp://127.1.0.1:" in message
    assert "refused the password of user 'admin' (RTSP 401)" in message and "not-it" not in message
    assert source.stats().frames == 0 and source.stats().errors == 1


async def test_stop_returns_while_the_camera_never_answers(simulator: CameraSimulator) -> None:
    simulator.cameras[1].faults.timeout = True  # accepts the connection, never answers
    source = RtspSource("sim-3", stream_url(simulator, index=1), FAST)
    await source.start()
    await wait_until(lambda: source.state is SourceState.CONNECTING, "the reader to try")
    await asyncio.sleep(0.3)  # now blocked inside FFmpeg's open
    await source.stop()
    assert source._thread is not None and not source._thread.is_alive()
    assert source.state is SourceState.STOPPED


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    settings = SourceSettings(reconnect_initial_s=0.5, reconnect_max_s=8.0, reconnect_jitter=0.2)
    rng = random.Random(1)
    delays = [backoff_delay(n, settings, rng) for n in range(8)]
    for n, delay in enumerate(delays):
        nominal = min(8.0, 0.5 * 2**n)
        assert nominal * 0.8 <= delay <= nominal * 1.2, (n, delay)
    assert len({round(d, 6) for d in delays[5:]}) == 3  # capped, but spread so cameras do not reconnect in step
    still = SourceSettings(reconnect_initial_s=1.0, reconnect_max_s=4.0, reconnect_jitter=0.0)
    assert [backoff_delay(n, still, rng) for n in range(4)] == [1.0, 2.0, 4.0, 4.0]
