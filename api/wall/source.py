"""Reads one camera's RTSP stream in a worker thread (PyAV demux; blocking by nature).

H.264 is passed on untouched (``StreamMode.PASSTHROUGH``): each access unit in Annex B, an IDR
with its SPS/PPS put in front when the camera only sent them out of band. Another codec (H.265,
MJPEG, MPEG-4) is decoded and encoded to H.264 once for all viewers (``StreamMode.TRANSCODE``) when
the settings allow it, and reported as such.

The reader stops when ``stop`` is set (checked after every packet) or when the camera is silent
for ``read_timeout_s``; every failure is raised as a ``SourceError``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import av.error
from av.bitstream import BitStreamFilterContext

from xueliang.api.wall import h264
from xueliang.api.wall.errors import SourceError, SourceRefused, SourceUnavailable, SourceUnsupported
from xueliang.api.wall.models import CLOCK_RATE, TIME_BASE, SourceInfo, SourceSpec, StreamMode
from xueliang.gateway.wall_settings import WallSettings

log = logging.getLogger(__name__)

Emit = Callable[[bytes, int, bool], None]  # (Annex B access unit, pts in 90 kHz ticks, is IDR)
Opened = Callable[[SourceInfo], None]

REFUSED = (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, av.error.PermissionError)
DEFAULT_STEP = CLOCK_RATE // 25  # assumed frame interval when a packet comes without a timestamp


class Transcoder:
    """Decode anything FFmpeg reads, encode constrained-baseline H.264 (no B-frames) for browsers."""

    def __init__(self, settings: WallSettings, width: int, height: int) -> None:
        scale = min(1.0, settings.transcode_max_width / max(width, 1))
        self.width = max(16, int(width * scale) // 2 * 2)
        self.height = max(16, int(height * scale) // 2 * 2)
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width = self.width
        encoder.height = self.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = TIME_BASE
        encoder.framerate = Fraction(settings.transcode_fps, 1)
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "g": str(settings.transcode_fps * 2),
            "bf": "0",
        }
        self.encoder = encoder

    def encode(self, frame: av.VideoFrame, pts: int) -> Iterator[tuple[bytes, int, bool]]:
        picture = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        picture.pts = pts
        picture.time_base = TIME_BASE
        for packet in self.encoder.encode(picture):
            data = bytes(packet)
            yield data, int(packet.pts if packet.pts is not None else pts), h264.is_idr(data)


class SourceReader:
    """One RTSP session. ``run()`` blocks until stopped or failed; call it in a worker thread."""

    def __init__(self, spec: SourceSpec, settings: WallSettings, emit: Emit, opened: Opened) -> None:
        self.spec = spec
        self.settings = settings
        self.stop = threading.Event()
        self._emit = emit
        self._opened = opened

    def run(self) -> None:
        try:
            self._run()
        except REFUSED as exc:
            raise SourceRefused(
                f"camera {self.spec.camera_id} refused the stream {self.spec.safe_url}: {exc.strerror}; "
                "check the user name and password on record"
            ) from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(
                f"camera {self.spec.camera_id}: stream {self.spec.safe_url} failed: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from exc

    def _run(self) -> None:
        options: dict[str, str] = (
            {"rtsp_transport": self.settings.rtsp_transport} if self.spec.url.startswith("rtsp") else {}
        )
        timeout = (self.settings.open_timeout_s, self.settings.read_timeout_s)
        with av.open(self.spec.url, options=options, timeout=timeout) as container:
            if not container.streams.video:
                raise SourceUnsupported(f"camera {self.spec.camera_id}: stream {self.spec.safe_url} has no video")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec == "h264":
                self._passthrough(container, stream)
            elif self.settings.transcode_fallback:
                self._transcode(container, stream, codec)
            else:
                raise SourceUnsupported(
                    f"camera {self.spec.camera_id} sends {codec}; browsers need H.264: set the camera's "
                    "live profile to H.264 or enable wall.transcode_fallback"
                )
        if not self.stop.is_set():
            raise SourceUnavailable(f"camera {self.spec.camera_id}: stream {self.spec.safe_url} ended")

    def _passthrough(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        extradata = bytes(stream.codec_context.extradata or b"")
        sets = h264.parameter_sets(extradata)
        avcc = extradata[:1] == b"\x01"
        bsf = BitStreamFilterContext("h264_mp4toannexb", stream) if avcc else None
        width, height = stream.codec_context.width, stream.codec_context.height
        self._opened(SourceInfo("h264", StreamMode.PASSTHROUGH, width, height, h264.sps_profile(sets)))
        clock = _Clock(stream.time_base)
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            if packet.size == 0:
                continue
            for unit in bsf.filter(packet) if bsf is not None else (packet,):
                data = bytes(unit)
                keyframe = bool(unit.is_keyframe) and h264.is_idr(data)
                if keyframe:
                    data = h264.with_parameter_sets(data, sets)
                self._emit(data, clock.ticks(unit.pts), keyframe)

    def _transcode(self, container: av.container.InputContainer, stream: av.VideoStream, codec: str) -> None:
        width, height = stream.codec_context.width, stream.codec_context.height
        transcoder: Transcoder | None = None
        clock = _Clock(stream.time_base)
        log.warning(
            "camera %s sends %s: transcoding to H.264 for the wall (CPU); prefer an H.264 live profile",
            self.spec.camera_id,
            codec,
        )
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            for frame in packet.decode():
                if transcoder is None:
                    transcoder = Transcoder(self.settings, frame.width or width, frame.height or height)
                    self._opened(SourceInfo(codec, StreamMode.TRANSCODE, transcoder.width, transcoder.height, "42e01f"))
                for data, pts, keyframe in transcoder.encode(frame, clock.ticks(frame.pts)):
                    self._emit(data, pts, keyframe)


class _Clock:
    """Source timestamps to 90 kHz ticks, inventing a step for packets that come without one."""

    def __init__(self, time_base: Fraction | None) -> None:
        self.time_base = time_base or TIME_BASE
        self.last = -DEFAULT_STEP

    def ticks(self, pts: int | None) -> int:
        if pts is None:
            self.last += DEFAULT_STEP
        else:
            self.last = int(pts * self.time_base * CLOCK_RATE)
        return self.last


__all__ = ["SourceError", "SourceReader"]
