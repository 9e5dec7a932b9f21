"""RTSP outages that a clean server stop does not show: a stream that stalls mid-flow (sockets open,
no bytes: the read timeout must end the wait) and a camera that stays away for a while (the
reconnects must back off, not spin).

A loopback TCP proxy (``tests.stalling_proxy``, given the camera's RTSP address) stands
between the RTSP source and the camera simulator's real RTSP server; ``stall()`` stops it
forwarding in both directions while every connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.inference.rtsp_url import stream_url
from tests.stalling_proxy import StallingProxy
from tests.waiting import wait_until
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources import RtspSource, SourceState


@pytest.fixture
async def simulator(vtest_path: Path) -> AsyncIterator[CameraSimulator]:
    config = SimulatorConfig(count=1, rtsp_count=1, video=vtest_path, main_fps=10)
    async with CameraSimulator(config) as sim:
        yield sim


# read timeout 1 s: OpenCV's own default is 30 s, so a source that lost the setting would sit in a
# stalled read far past the bounds below
STALL = SourceSettings(rtsp_open_timeout_s=3.0, rtsp_read_timeout_s=1.0, reconnect_initial_s=0.2, reconnect_max_s=1.0)
# a stalled read ends after the read timeout; the bound leaves a busy 2-core host ample slack, and
# stays well under OpenCV's 30 s default
NOTICED_WITHIN = 8 * STALL.rtsp_read_timeout_s


async def test_a_stalled_stream_ends_by_the_read_timeout_and_resumes_when_bytes_flow(
    simulator: CameraSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with StallingProxy(stream_url(simulator)) as proxy:
        source = RtspSource("stall-1", proxy.url, STALL, rng=random.Random(3))
        await source.start()
        try:
            first = await source.latest(within=20)
            await wait_until(lambda: source.stats().frames >= first.seq + 3, "frames to flow", 20)
            assert source.state is SourceState.STREAMING
            errors_before = source.stats().errors
            caplog.set_level(logging.WARNING, logger="xueliang.inference.sources.rtsp")
            proxy.stall()  # the sockets stay open; not one byte more comes
            await wait_until(
                lambda: source.state is not SourceState.STREAMING,
                f"the reader to leave STREAMING (read timeout {STALL.rtsp_read_timeout_s:g} s)",
                NOTICED_WITHIN,
            )
            stats = source.stats()
            assert stats.errors > errors_before
            assert any("stream lost" in r.getMessage() and "stall-1" in r.getMessage() for r in caplog.records)
            stalled_at = source.stats().frames
            # while it stays stalled no frame comes, and the source keeps trying (open timeouts)
            await wait_until(lambda: source.stats().errors >= stats.errors + 1, "a failed reopen while stalled", 20)
            assert source.stats().frames == stalled_at and source.state is not SourceState.STREAMING
            last_error = source.stats().last_error
            assert "stream lost" in last_error or "no RTSP answer" in last_error, last_error
            proxy.resume()
            await wait_until(lambda: source.stats().frames > stalled_at, "frames after the proxy forwards again", 30)
            fresh = await source.latest(within=15)
            assert fresh.seq > stalled_at and fresh.image.shape == (576, 768, 3)
            assert source.state is SourceState.STREAMING and source.stats().reconnects >= 1
        finally:
            proxy.resume()
            await source.stop()
    assert source._thread is not None and not source._thread.is_alive()
    assert source.state is SourceState.STOPPED


async def test_stop_during_a_stalled_read_leaves_no_reader_behind(simulator: CameraSimulator) -> None:
    async with StallingProxy(stream_url(simulator)) as proxy:
        source = RtspSource("stall-2", proxy.url, STALL)
        await source.start()
        try:
            await source.latest(within=20)
            proxy.stall()
            # the reader takes what the socket buffers still hold, then waits in a read no byte will
            # end: the count stands still (no new frame for 3 frame intervals at 10 fps)
            previous = -1
            async with asyncio.timeout(30):  # a liveness bound: the count must stop once bytes do
                while (count := source.stats().frames) != previous:
                    previous = count
                    await asyncio.sleep(0.3)
        finally:
            await source.stop()
            proxy.resume()
    assert source._thread is not None and not source._thread.is_alive()
    assert source.state is SourceState.STOPPED


BACKOFF = SourceSettings(
    rtsp_open_timeout_s=2.0,
    rtsp_read_timeout_s=1.0,
    reconnect_initial_s=0.1,
    reconnect_max_s=0.8,
    reconnect_jitter=0.2,
)
OUTAGE_S = 4.0


def most_attempts(settings: SourceSettings, seconds: float) -> int:
    """The most reconnect delays that can end within ``seconds``: each at least its nominal delay
    less the jitter, doubling from ``reconnect_initial_s`` up to ``reconnect_max_s``."""
    spent, attempts = 0.0, 0
    while True:
        nominal = min(settings.reconnect_max_s, settings.reconnect_initial_s * 2.0**attempts)
        spent += nominal * (1.0 - settings.reconnect_jitter)
        if spent > seconds:
            return attempts
        attempts += 1


async def test_reconnects_back_off_while_the_camera_stays_away(vtest_path: Path) -> None:
    sim = CameraSimulator(SimulatorConfig(count=1, rtsp_count=1, video=vtest_path, main_fps=10))
    await sim.start()
    source = RtspSource("away-1", stream_url(sim), BACKOFF, rng=random.Random(11))
    await source.start()
    try:
        await source.latest(within=20)
        await sim.stop()  # every reopen is now refused at once: only the backoff spaces them
        await wait_until(lambda: source.stats().errors >= 1, "the lost stream to be noticed", 20)
        before, started = source.stats().reconnects, time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        attempts, elapsed = source.stats().reconnects - before, time.monotonic() - started
        stats = source.stats()
    finally:
        await source.stop()
    assert source._thread is not None and not source._thread.is_alive()
    # a loop without delay would reopen hundreds of times in these seconds; without the doubling,
    # every reconnect_initial_s (about 40 times)
    bound = most_attempts(BACKOFF, elapsed) + 1  # +1: an attempt under way when the window opened
    assert 2 <= attempts <= bound, (attempts, bound, elapsed)
    assert stats.frames >= 1 and stats.errors >= attempts  # each reopen failed and was counted
    assert "cannot open the stream" in stats.last_error and "refused the connection" in stats.last_error
