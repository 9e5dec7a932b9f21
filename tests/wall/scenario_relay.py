"""The media relay with aiortc viewers over WHEP, against the camera simulator's RTSP (real footage).

Runs inside the test network namespace (``test_in_netns.py``): ICE needs a non-loopback address.
"""

from __future__ import annotations

import pytest

from tests.waiting import wait_until
from tests.wall.conftest import WallEnv, sim_config
from tests.wall.helpers import WhepViewer
from xueliang.api.wall.models import StreamMode, UpstreamState
from xueliang.connectors.onvif.simulator import CameraSimulator

pytestmark = pytest.mark.usefixtures("netns")


def session_id(viewer: WhepViewer) -> str:
    return viewer.location.rsplit("/", 1)[1]


async def test_three_viewers_share_one_upstream_stopped_after_the_grace_period(env: WallEnv) -> None:
    env.wall.settings.grace_s = 2.0
    viewers = [WhepViewer(env.url, env.operator, "cam-0") for _ in range(3)]
    for viewer in viewers:
        await viewer.start()
    await wait_until(lambda: all(len(v.frames) >= 10 for v in viewers), "10 decoded frames at each of 3 viewers")

    upstream = env.wall.relay.upstream("cam-0")
    assert upstream is not None
    assert len(upstream.viewers) == 3
    assert upstream.counters.sessions == 1
    assert env.sim.counters()["rtsp"]["sessions"] == 1  # the camera saw one RTSP session, not three
    info = upstream.public()
    assert info.state is UpstreamState.STREAMING
    assert info.mode is StreamMode.PASSTHROUGH and info.codec == "h264" and info.width > 0
    for viewer in viewers:  # the camera's own pictures, not re-encoded or rescaled
        assert (viewer.frames[-1].width, viewer.frames[-1].height) == (info.width, info.height)
        pts = [f.pts for f in viewer.frames]
        assert pts == sorted(pts) and pts[-1] > pts[0]

    assert await viewers[0].stop() == 204
    assert await viewers[1].stop() == 204
    assert len(upstream.viewers) == 1 and env.wall.relay.upstream("cam-0") is upstream
    frames = len(viewers[2].frames)
    await wait_until(lambda: len(viewers[2].frames) > frames + 5, "the remaining viewer keeps playing")

    assert await viewers[2].stop() == 204
    assert not upstream.viewers
    assert env.wall.relay.upstream("cam-0") is upstream  # still running during the grace period
    await wait_until(lambda: upstream.state is UpstreamState.STOPPED, "upstream stopped after the grace period")
    assert env.wall.relay.upstream("cam-0") is None
    await wait_until(lambda: env.sim.counters()["rtsp"]["connections"] == 0, "the RTSP session closed")
    assert len(env.wall.sessions) == 0


async def test_new_viewer_of_a_running_camera_starts_from_the_gop_cache(env: WallEnv) -> None:
    first = WhepViewer(env.url, env.operator, "cam-1")
    await first.start()
    await wait_until(lambda: len(first.frames) >= 5, "the first viewer plays")
    upstream = env.wall.relay.upstream("cam-1")
    assert upstream is not None

    # The cache replays the GOP squeezed into 1-tick steps. A new viewer that joins right at a
    # keyframe gets a one-frame replay, which says less: join again until the replay has 2+ frames.
    for _attempt in range(10):
        viewer = WhepViewer(env.url, env.operator, "cam-1")
        await viewer.start()
        await wait_until(lambda v=viewer: len(v.frames) >= 3, "the new viewer decodes frames")  # type: ignore[misc]
        track = env.wall.sessions.get(session_id(viewer)).track
        replayed = track.counters.replayed
        if replayed >= 2:
            break
        await viewer.stop()
    else:
        pytest.fail("10 joins in a row landed on a keyframe: the cache never held 2 frames")

    assert upstream.counters.sessions == 1
    await wait_until(lambda: len(viewer.frames) >= replayed + 2, "the replayed GOP and live frames decoded")
    # The very first picture this viewer decoded is the cached IDR, followed at once by the rest of
    # the cached GOP (1 tick apart), then live frames (thousands of ticks apart: 90 kHz clock).
    steps = [b.pts - a.pts for a, b in zip(viewer.frames, viewer.frames[1:], strict=False)]
    assert steps[0] == 1, steps[:5]
    assert steps[: replayed - 1] == [1] * (replayed - 1)
    assert steps[replayed - 1] > 1  # then the live frames, at their own pace
    assert track.counters.first_sent_at >= track.counters.attached_at
    await viewer.stop()
    await first.stop()


async def test_upstream_reconnects_after_the_rtsp_source_drops(env: WallEnv) -> None:
    viewer = WhepViewer(env.url, env.operator, "cam-2")
    await viewer.start()
    await wait_until(lambda: len(viewer.frames) >= 5, "the viewer plays")
    upstream = env.wall.relay.upstream("cam-2")
    assert upstream is not None

    # The camera "reboots": every connection closes, then it answers again on the same ports.
    ports = {"http_port": env.sim.http_port, "rtsp_port": env.sim.rtsp_port}
    await env.sim.stop()
    await wait_until(lambda: upstream.state is UpstreamState.RECONNECTING, "the relay notices the drop")
    before = len(viewer.frames)
    async with CameraSimulator(sim_config(**ports)) as rebooted:
        await wait_until(lambda: upstream.counters.sessions == 2, "a second RTSP session", timeout_s=60)
        await wait_until(lambda: len(viewer.frames) >= before + 10, "frames flow again to the same viewer")
        assert rebooted.counters()["rtsp"]["sessions"] == 1
        assert upstream.counters.reconnects >= 1
        assert upstream.state is UpstreamState.STREAMING and upstream.public().last_error == ""
    pts = [f.pts for f in viewer.frames]
    assert pts == sorted(pts), "timestamps stay increasing across the reconnect"
    await viewer.stop()
