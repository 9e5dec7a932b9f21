"""The relay's media pieces on real footage: H.264 bitstream helpers, the keyframe cache, the
continuous timeline, the RTSP/file reader (passthrough and the transcode fallback), and an
upstream against the simulator's RTSP that is refused or dropped (no WebRTC needed here)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.waiting import wait_until
from tests.wall.conftest import VIDEO, WallEnv
from xueliang.api.wall import h264
from xueliang.api.wall.cameras import camera_source
from xueliang.api.wall.errors import CameraAddressRefused, SourceUnavailable, SourceUnsupported
from xueliang.api.wall.gop import GopCache
from xueliang.api.wall.models import CLOCK_RATE, AccessUnit, SourceInfo, SourceSpec, StreamMode, UpstreamState
from xueliang.api.wall.source import SourceReader
from xueliang.api.wall.upstream import Timeline, Upstream
from xueliang.api.wall.viewer import ViewerTrack
from xueliang.gateway.wall_settings import WallSettings

SPS = bytes.fromhex("6742c01e95a0500c")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("65888040") + b"\x11" * 40
SLICE = bytes.fromhex("419a0210") + b"\x22" * 20


def unit(pts: int, key: bool = False, size: int = 10) -> AccessUnit:
    return AccessUnit(b"\x00" * size, pts, key, 0.0)


def test_nal_split_and_parameter_sets_put_in_front_of_an_idr() -> None:
    stream = h264.START_CODE + SPS + b"\x00\x00\x01" + PPS + h264.START_CODE + IDR
    assert h264.nal_types(stream) == [h264.NAL_SPS, h264.NAL_PPS, h264.NAL_IDR]
    assert h264.is_idr(stream) and not h264.is_idr(h264.START_CODE + SLICE)

    bare = h264.join_nals([bytes([0x09, 0xF0]), IDR])  # AUD + IDR, parameter sets only out of band
    fixed = h264.with_parameter_sets(bare, [SPS, PPS])
    assert h264.nal_types(fixed) == [h264.NAL_AUD, h264.NAL_SPS, h264.NAL_PPS, h264.NAL_IDR]
    assert h264.with_parameter_sets(stream, [SPS, PPS]) == stream  # already carries them
    assert h264.sps_profile([SPS, PPS]) == "42c01e"


def test_avcc_extradata_becomes_annex_b_and_truncation_is_refused() -> None:
    avcc = bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]) + len(SPS).to_bytes(2, "big") + SPS
    avcc += bytes([1]) + len(PPS).to_bytes(2, "big") + PPS
    assert h264.parameter_sets(avcc) == [SPS, PPS]
    assert h264.parameter_sets(h264.join_nals([SPS, PPS])) == [SPS, PPS]
    with pytest.raises(ValueError, match="truncated"):
        h264.avcc_to_annexb(avcc[:-2])


def test_gop_cache_keeps_from_the_last_keyframe_within_bounds_and_replays_squeezed() -> None:
    cache = GopCache(max_frames=5, max_bytes=1000)
    assert cache.add(unit(0)) and len(cache) == 0  # nothing decodable before a keyframe
    for i, key in enumerate([True, False, False]):
        assert cache.add(unit(3600 * (i + 1), key))
    assert len(cache) == 3
    replay = cache.replay()
    assert [u.pts for u in replay] == [10798, 10799, 10800]  # ends at the newest, one tick apart
    assert replay[0].keyframe

    assert cache.add(unit(20000, True)) and len(cache) == 1  # a new keyframe starts a new GOP
    for i in range(4):
        assert cache.add(unit(20001 + i))
    assert not cache.add(unit(30000))  # the sixth frame: the GOP outgrew the cache, given up
    assert len(cache) == 0 and cache.replay() == []
    assert cache.add(unit(30001)) and len(cache) == 0  # and stays empty until the next keyframe

    small = GopCache(max_frames=100, max_bytes=25)
    assert small.add(unit(0, True, size=20))
    assert not small.add(unit(1, size=20))  # bytes bound


def test_timeline_stays_increasing_across_reconnects_and_source_jumps() -> None:
    timeline = Timeline()
    assert timeline.map(900_000, now=100.0) == 0
    assert timeline.map(903_600, now=100.04) == 3600
    timeline.new_session()  # the camera restarted its clock after 2 s of silence
    restarted = timeline.map(12, now=102.04)
    assert restarted == 3600 + 2 * CLOCK_RATE
    assert timeline.map(3612, now=102.08) == restarted + 3600
    back = timeline.map(0, now=102.12)  # a jump back within a session: re-anchored forward
    assert back > restarted + 3600


@pytest.fixture(scope="module")
def h264_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds (30 frames) of vtest.avi as H.264 in MP4 (avcC extradata, length-prefixed packets)."""
    target = tmp_path_factory.mktemp("media") / "vtest-h264.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(VIDEO), "-t", "3", "-an", "-c:v", "libx264", "-preset",
         "ultrafast", "-g", "10", "-bf", "0", "-x264-params", "repeat-headers=0", str(target)],
        check=True, timeout=60,
    )  # fmt: skip
    return target


def read(
    url: str, limit: int, settings: WallSettings | None = None
) -> tuple[list[SourceInfo], list[tuple[bytes, bool]]]:
    """Run a reader in a thread until ``limit`` units came; returns what it opened and emitted."""
    infos: list[SourceInfo] = []
    units: list[tuple[bytes, bool]] = []

    def emit(data: bytes, pts: int, key: bool) -> None:
        units.append((data, key))
        if len(units) >= limit:
            reader.stop.set()

    reader = SourceReader(SourceSpec("cam-file", url, url), settings or WallSettings(), emit, infos.append)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reader.run()
        except SourceUnavailable as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert not errors, errors
    return infos, units


def test_h264_file_is_passed_through_with_parameter_sets_in_front_of_each_idr(h264_mp4: Path) -> None:
    infos, units = read(str(h264_mp4), 25)
    assert infos[0].mode is StreamMode.PASSTHROUGH and (infos[0].width, infos[0].height) == (768, 576)
    keyframes = [data for data, key in units if key]
    assert len(keyframes) >= 2  # GOP of 10
    for data in keyframes:  # out-of-band SPS/PPS (avcC) are put in band for new viewers
        types = h264.nal_types(data)
        assert types.index(h264.NAL_SPS) < types.index(h264.NAL_PPS) < types.index(h264.NAL_IDR), types
    assert all(h264.NAL_SLICE in h264.nal_types(data) for data, key in units if not key)


def test_non_h264_source_is_transcoded_once_and_reported_as_such() -> None:
    infos, units = read(str(VIDEO), 12, WallSettings(transcode_max_width=384, transcode_fps=5))
    assert infos[0].mode is StreamMode.TRANSCODE and infos[0].codec == "msmpeg4"
    assert (infos[0].width, infos[0].height) == (384, 288)
    types = h264.nal_types(units[0][0])
    assert units[0][1] and types.index(h264.NAL_SPS) < types.index(h264.NAL_IDR), types
    assert sum(key for _, key in units) >= 2  # keyframe every 2 s of 5 fps


def test_transcode_refused_when_disabled_names_the_codec() -> None:
    reader = SourceReader(
        SourceSpec("cam-x", str(VIDEO), str(VIDEO)),
        WallSettings(transcode_fallback=False),
        emit=lambda *a: None,
        opened=lambda info: None,
    )
    with pytest.raises(SourceUnsupported, match=r"cam-x sends msmpeg4.*transcode_fallback"):
        reader.run()


def test_unreachable_camera_is_reported_with_its_url_without_password() -> None:
    spec = SourceSpec("cam-gone", "rtsp://admin:s3cret@127.0.0.1:9/Streaming/Channels/101", "rtsp://127.0.0.1:9/x")
    reader = SourceReader(spec, WallSettings(open_timeout_s=2), emit=lambda *a: None, opened=lambda i: None)
    with pytest.raises(SourceUnavailable) as caught:
        reader.run()
    assert "cam-gone" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.fixture
def quiet_grace(env: WallEnv) -> Iterator[WallEnv]:
    env.wall.settings.grace_s = 30.0
    env.wall.settings.reconnect_min_s = 0.2
    yield env


async def test_wrong_camera_password_is_reported_as_refused(quiet_grace: WallEnv) -> None:
    env = quiet_grace
    env.sim.cameras[1].faults.wrong_password = True
    camera = await env.gateway.node.stores.cameras.get("cam-1")
    info = env.wall.relay.warm(await camera_source(env.gateway.node, camera))
    assert info.viewers == 0
    upstream = env.wall.relay.upstream("cam-1")
    assert upstream is not None
    await wait_until(lambda: "refused" in upstream.last_error, "the refusal recorded")
    assert "check the user name and password" in upstream.last_error
    assert upstream.state in (UpstreamState.RECONNECTING, UpstreamState.CONNECTING)
    env.sim.cameras[1].faults.wrong_password = False
    await wait_until(lambda: upstream.state is UpstreamState.STREAMING, "streaming once the password fits")
    await wait_until(lambda: len(upstream.gop) > 0, "a keyframe cached for the first viewer")
    assert upstream.public().mode is StreamMode.PASSTHROUGH


async def test_credentials_go_into_the_rtsp_url_but_never_into_the_safe_url(env: WallEnv) -> None:
    camera = await env.gateway.node.stores.cameras.get("cam-0")
    camera = camera.model_copy(update={"password_enc": env.gateway.node.cipher.encrypt("p@ss:w/rd")})
    spec = await camera_source(env.gateway.node, camera)
    assert spec.url.startswith("rtsp://admin:p%40ss%3Aw%2Frd@127.1.0.1:")
    assert "p@ss" not in spec.safe_url and "admin" not in spec.safe_url
    assert spec.safe_url.endswith("/Streaming/Channels/102")


async def test_a_stream_uri_outside_the_allowed_networks_is_refused(env: WallEnv) -> None:
    camera = await env.gateway.node.stores.cameras.get("cam-0")
    moved = [p.model_copy(update={"stream_uri": "rtsp://10.20.30.40:554/live"}) for p in camera.profiles]
    with pytest.raises(CameraAddressRefused, match=r"10\.20\.30\.40 is outside the allowed networks"):
        await camera_source(env.gateway.node, camera.model_copy(update={"profiles": moved}))


def fed_upstream(settings: WallSettings) -> Upstream:
    """An upstream fed by hand, as its reader thread would (no camera needed)."""
    upstream = Upstream(
        SourceSpec("cam-u", "rtsp://x/1", "rtsp://x/1"), settings, ThreadPoolExecutor(1), lambda u: None
    )
    upstream.state = UpstreamState.STREAMING
    return upstream


def feed(upstream: Upstream, pts: int, key: bool) -> bytes:
    data = h264.join_nals([SPS, PPS, IDR] if key else [SLICE]) + pts.to_bytes(4, "big")
    upstream._on_unit(upstream._session, data, pts, key, 0.0)
    return data


async def test_viewer_starts_from_the_cache_and_a_picture_loss_replays_it() -> None:
    upstream = fed_upstream(WallSettings())
    sent = [feed(upstream, 3600 * i, i == 1) for i in range(1, 4)]
    viewer = ViewerTrack(upstream, queue_frames=10)
    upstream.attach(viewer)
    first = [await viewer.recv() for _ in range(3)]
    assert [bytes(p) for p in first] == sent and [p.pts for p in first] == [7198, 7199, 7200]  # 0-based timeline
    assert viewer.counters.replayed == 3
    live = feed(upstream, 14400, False)
    assert bytes(await viewer.recv()) == live

    viewer.request_keyframe()  # the browser sent a PLI: the cached GOP again, after what was sent
    again = [await viewer.recv() for _ in range(4)]
    assert bytes(again[0]) == sent[0] and [p.pts for p in again] == [10801, 10802, 10803, 10804]
    assert viewer.counters.keyframe_requests == 1
    viewer.request_keyframe()  # a second PLI within a second is not served again
    later = feed(upstream, 18000, False)
    assert bytes(await viewer.recv()) == later and viewer.counters.keyframe_requests == 1
    viewer.stop()
    assert not upstream.viewers and upstream.idle_since is not None


async def test_a_viewer_that_cannot_keep_up_jumps_to_the_present_and_counts_the_drop() -> None:
    upstream = fed_upstream(WallSettings(gop_cache_frames=4, viewer_queue_frames=2))
    viewer = ViewerTrack(upstream, queue_frames=2)
    upstream.attach(viewer)
    feed(upstream, 3600, True)
    assert (await viewer.recv()).pts == 0  # primed with the one cached frame
    for i in range(2, 9):  # nobody reads: 7 frames for a queue of 4 + 2
        feed(upstream, 3600 * i, i == 5)
    assert viewer.counters.resyncs == 1 and viewer.counters.dropped > 0
    resumed = await viewer.recv()
    assert h264.is_idr(bytes(resumed))  # from the keyframe cached at 5 * 3600, not a broken P-frame
    assert upstream.counters.frames == 8 and upstream.counters.keyframes == 2
