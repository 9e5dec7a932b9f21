"""Snapshot frames: the clip decoded once, JPEG-encoded lazily at the snapshot size, shared by all cameras.

The clip is decoded a single time into JPEGs at its own size (kept in memory and cached on disk
next to the transcodes, so later runs skip the decode). A snapshot of camera k at wall time t shows
frame ``(int(t * fps) + 37 k) mod N``. Frames at another size are resized and encoded on first
use in the simulator's bounded executor and kept in an LRU bounded by ``budget_bytes``; once every
frame has been encoded (and none evicted) the set is written to the cache directory too, and the
next start at the same size and quality loads it instead of encoding again.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from xueliang.connectors.onvif.simulator.errors import VideoSourceError
from xueliang.connectors.onvif.simulator.video_cache import cache_path, write_atomic

logger = logging.getLogger(__name__)

CAMERA_FRAME_STRIDE = 37
_MAGIC = b"XLSF1"
_HEADER = struct.Struct("<5sIIId")


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """Size and rate of the source clip."""

    width: int
    height: int
    fps: float
    frame_count: int


def clip_position(camera_index: int, now: float, fps: float, count: int) -> int:
    """The frame of a ``count``-frame clip at ``fps`` camera ``camera_index`` shows at wall time ``now``
    (snapshots and RTSP streams of one camera show the same moment)."""
    return (int(now * fps) + camera_index * CAMERA_FRAME_STRIDE) % count


def probe_video(video: Path) -> VideoInfo:
    """Read the clip's size, rate and approximate frame count (blocking; run in an executor)."""
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise VideoSourceError(f"cannot open video {video}; pass a file OpenCV/FFmpeg can decode")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if width <= 0 or height <= 0:
        raise VideoSourceError(f"video {video} reports no picture size")
    return VideoInfo(width - width % 2, height - height % 2, fps, count)


def _decode_all(video: Path, quality: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(video))
    frames: list[bytes] = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            encoded_ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if encoded_ok:
                frames.append(buffer.tobytes())
    finally:
        capture.release()
    if not frames:
        raise VideoSourceError(f"video {video} decoded to no frames")
    return frames


def _pack(info: VideoInfo, frames: list[bytes]) -> bytes:
    parts = [_HEADER.pack(_MAGIC, len(frames), info.width, info.height, info.fps)]
    for frame in frames:
        parts.append(struct.pack("<I", len(frame)))
        parts.append(frame)
    return b"".join(parts)


def _unpack(data: bytes) -> list[bytes] | None:
    if len(data) < _HEADER.size or not data.startswith(_MAGIC):
        return None
    _, count, _, _, _ = _HEADER.unpack_from(data)
    offset, frames = _HEADER.size, []
    for _ in range(count):
        (size,) = struct.unpack_from("<I", data, offset)
        frames.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return frames if len(frames) == count and offset == len(data) else None


def load_source_frames(video: Path, info: VideoInfo, cache_dir: Path) -> list[bytes]:
    """The clip's frames as JPEGs at its own size, from the disk cache or decoded now (blocking)."""
    path = cache_path(cache_dir, video, "frames-q90", "bin")
    try:
        frames = _unpack(path.read_bytes())
    except OSError:
        frames = None
    if frames:
        return frames
    started = time.monotonic()
    frames = _decode_all(video, 90)
    try:
        write_atomic(path, _pack(info, frames))
    except OSError as exc:
        logger.warning("cannot cache decoded frames at %s (%s); decoding again next start", path, exc)
    logger.info("decoded %d frames of %s in %.1f s", len(frames), video, time.monotonic() - started)
    return frames


def load_sized_frames(path: Path, count: int) -> list[bytes] | None:
    """Frames already encoded at the snapshot size by an earlier run, or None (blocking)."""
    try:
        frames = _unpack(path.read_bytes())
    except OSError:
        return None
    return frames if frames is not None and len(frames) == count else None


def save_sized_frames(path: Path, info: VideoInfo, size: tuple[int, int], frames: list[bytes]) -> None:
    """Keep the encoded frames for the next run (blocking; failures only cost a re-encode later)."""
    sized = VideoInfo(size[0], size[1], info.fps, len(frames))
    try:
        write_atomic(path, _pack(sized, frames))
    except OSError as exc:
        logger.warning("cannot cache %dx%d snapshot frames at %s: %s", size[0], size[1], path, exc)


def _reencode(source: bytes, size: tuple[int, int], quality: int) -> bytes:
    image = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoSourceError("cached frame is not a decodable JPEG; delete the simulator cache directory")
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    ok, buffer = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoSourceError(f"OpenCV could not encode a {size} JPEG")
    return bytes(buffer.tobytes())


class FrameStore:
    """JPEG frames for every camera's snapshot."""

    def __init__(
        self,
        *,
        video: Path,
        info: VideoInfo,
        size: tuple[int, int],
        quality: int,
        cache_dir: Path,
        budget_bytes: int,
        executor: Executor,
    ) -> None:
        self.video, self.info, self.size, self.quality = video, info, size, quality
        self.cache_dir, self.budget_bytes, self.executor = cache_dir, budget_bytes, executor
        self._source: list[bytes] | None = None
        self._loading: asyncio.Future[list[bytes]] | None = None
        self._encoded: OrderedDict[int, bytes] = OrderedDict()
        self._encoded_bytes = 0
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._saved = False
        self._save: asyncio.Future[None] | None = None
        self.evictions = 0
        self.encodes = 0
        self.sized_path = cache_path(cache_dir, video, f"frames-{size[0]}x{size[1]}-q{quality}", "bin")

    @property
    def resizes(self) -> bool:
        """Whether snapshots are re-encoded at a size other than the clip's."""
        return self.size != (self.info.width, self.info.height)

    async def load(self) -> list[bytes]:
        """Decode (or read from cache) the source frames once; concurrent callers share the work."""
        if self._source is not None:
            return self._source
        if self._loading is None:
            loop = asyncio.get_running_loop()
            self._loading = asyncio.ensure_future(
                loop.run_in_executor(self.executor, load_source_frames, self.video, self.info, self.cache_dir)
            )
        source = await asyncio.shield(self._loading)
        if self._source is None and self.resizes:
            loop = asyncio.get_running_loop()
            sized = await loop.run_in_executor(self.executor, load_sized_frames, self.sized_path, len(source))
            if sized is not None and sum(map(len, sized)) <= self.budget_bytes:
                for index, data in enumerate(sized):
                    self._encoded[index] = data
                    self._encoded_bytes += len(data)
                self._saved = True
        self._source = source
        return source

    async def preload(self) -> None:
        """Decode the clip and encode every frame at the snapshot size now (and cache them on disk)."""
        source = await self.load()
        if self.resizes:
            missing = [i for i in range(len(source)) if i not in self._encoded]
            await asyncio.gather(*(self._encode(i, source[i]) for i in missing))
        if self._save is not None:
            await self._save

    def jpeg_for(self, camera_index: int) -> bytes | Awaitable[bytes]:
        """The current snapshot of a camera: bytes at once when ready, else something to await."""
        source = self._source
        if source is None:
            return self._jpeg_after_load(camera_index)
        index = clip_position(camera_index, time.time(), self.info.fps, len(source))
        if not self.resizes:
            return source[index]
        cached = self._encoded.get(index)
        if cached is not None:
            self._encoded.move_to_end(index)
            return cached
        return self._encode(index, source[index])

    async def _jpeg_after_load(self, camera_index: int) -> bytes:
        await self.load()
        result = self.jpeg_for(camera_index)
        return result if isinstance(result, bytes) else await result

    async def _encode(self, index: int, source: bytes) -> bytes:
        pending = self._pending.get(index)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(
                loop.run_in_executor(self.executor, _reencode, source, self.size, self.quality)
            )
            self._pending[index] = pending
            pending.add_done_callback(lambda fut: self._store(index, fut))
        return await asyncio.shield(pending)

    def _store(self, index: int, future: asyncio.Future[bytes]) -> None:
        self._pending.pop(index, None)
        if future.cancelled() or future.exception() is not None:
            return
        data = future.result()
        self.encodes += 1
        self._encoded[index] = data
        self._encoded_bytes += len(data)
        while self._encoded_bytes > self.budget_bytes and len(self._encoded) > 1:
            _, dropped = self._encoded.popitem(last=False)
            self._encoded_bytes -= len(dropped)
            self.evictions += 1
        source = self._source
        if not self._saved and self.evictions == 0 and source is not None and len(self._encoded) == len(source):
            self._saved = True  # every frame encoded once: keep them on disk for the next start
            frames = [self._encoded[i] for i in range(len(source))]
            loop = asyncio.get_running_loop()
            self._save = asyncio.ensure_future(
                loop.run_in_executor(self.executor, save_sized_frames, self.sized_path, self.info, self.size, frames)
            )
