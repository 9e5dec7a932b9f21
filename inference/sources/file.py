"""Video files and image folders as frame sources, for tests, benchmarks and replaying footage.

``realtime=True`` delivers at the file's native rate (a folder at ``fps``), otherwise as fast as
the reader goes; ``loop=True`` starts over at the end instead of raising :class:`SourceEnded`.
Undecodable images are skipped and counted; a video that ends before the frame count in its
header is counted as one corrupt (truncated) file. Decoding runs in the source's own single
thread (a ``cv2.VideoCapture`` must stay on one thread), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from xueliang.inference.errors import CorruptFrame, SourceEnded, SourceUnavailable
from xueliang.inference.frames import Frame, Image
from xueliang.inference.sources.base import SourceCounters, SourceState, SourceStats
from xueliang.inference.sources.jpeg import decode_jpeg

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


class FileSource:
    """A video file or a folder of images (sorted by name) as a :class:`FrameSource`."""

    def __init__(
        self,
        camera_id: str,
        path: Path,
        *,
        realtime: bool = False,
        loop: bool = False,
        fps: float = 10.0,
        target_size: tuple[int, int] | None = None,
    ) -> None:
        """``fps`` paces image folders in realtime mode; ``target_size`` enables reduced JPEG decode."""
        self._camera_id = camera_id
        self.path = path
        self.realtime = realtime
        self.loop = loop
        self.target_size = target_size
        self.counters = SourceCounters()
        self.state = SourceState.READY
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"file-{camera_id}")
        self._cap: cv2.VideoCapture | None = None
        self._images: list[Path] | None = None
        self._index = 0  # next image of a folder / frames read from the current pass over a video
        self._expected = 0  # frame count from the video header
        self._period = 1.0 / fps
        self._next_at = 0.0
        self._seq = 0
        self._ended = False
        if path.is_dir():
            try:
                self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as exc:
                raise SourceUnavailable(
                    f"camera {camera_id}: cannot list folder {path}: {exc.strerror or exc}", camera_id=camera_id
                ) from exc
            if not self._images:
                raise SourceUnavailable(
                    f"camera {camera_id}: folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                    camera_id=camera_id,
                )
        elif not path.exists():
            raise SourceUnavailable(
                f"camera {camera_id}: {path} does not exist: check the path (a video file or a folder of images)",
                camera_id=camera_id,
            )
        elif not path.is_file():
            raise SourceUnavailable(
                f"camera {camera_id}: {path} is neither a video file nor a folder", camera_id=camera_id
            )

    @property
    def camera_id(self) -> str:
        return self._camera_id

    async def read(self) -> Frame:
        """The next frame; skips (and counts) undecodable images; SourceEnded at the end unless looping."""
        if self.state is SourceState.STOPPED:
            raise SourceUnavailable(f"camera {self._camera_id}: file source {self.path} is closed")
        loop = asyncio.get_running_loop()
        image, scale, jpeg = await loop.run_in_executor(self._executor, self._next)
        if self.realtime:
            now = time.monotonic()
            self._next_at = max(self._next_at + self._period, now - self._period)
            await asyncio.sleep(max(0.0, self._next_at - now))
        self._seq += 1
        self.counters.add(frames=1)
        return Frame(
            camera_id=self._camera_id,
            image=image,
            captured_at=time.time(),
            seq=self._seq,
            source="file",
            scale=scale,
            jpeg=jpeg,
        )

    def stats(self) -> SourceStats:
        return self.counters.snapshot(self.state)

    async def close(self) -> None:
        if self.state is SourceState.STOPPED:
            return
        self.state = SourceState.STOPPED
        await asyncio.get_running_loop().run_in_executor(self._executor, self._release)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    # --- executor side ------------------------------------------------------------------------

    def _next(self) -> tuple[Image, float, bytes | None]:
        return self._next_image() if self._images is not None else self._next_video()

    def _next_image(self) -> tuple[Image, float, bytes | None]:
        assert self._images is not None
        bad_in_a_row = 0
        while True:
            if self._index >= len(self._images):
                if not self.loop or bad_in_a_row >= len(self._images):
                    raise SourceEnded(f"camera {self._camera_id}: folder {self.path} has no more images")
                self._index = 0
            path = self._images[self._index]
            self._index += 1
            try:
                return self._decode_file(path)
            except CorruptFrame as exc:
                self._skip(str(exc))
            except OSError as exc:
                self._skip(f"image {path} unreadable: {exc}")
            bad_in_a_row += 1

    def _decode_file(self, path: Path) -> tuple[Image, float, bytes | None]:
        data = path.read_bytes()
        self.counters.add(bytes=len(data))
        if not data:
            raise CorruptFrame(f"image {path}: empty file (0 bytes)")
        try:
            if path.suffix.lower() in (".jpg", ".jpeg"):
                image, scale = decode_jpeg(data, target=self.target_size, what=f"image {path}")
                return image, scale, data
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV's decode limit
            raise CorruptFrame(f"image {path}: the decoder refused {len(data)} bytes: {exc.err or exc}") from exc
        if decoded is None or decoded.ndim != 3:
            raise CorruptFrame(f"image {path}: the decoder rejected {len(data)} bytes")
        return cast(Image, decoded), 1.0, None

    def _skip(self, why: str) -> None:
        self.counters.error(why, corrupt=True)
        log.warning("camera %s: %s (skipped)", self._camera_id, why)

    def _next_video(self) -> tuple[Image, float, bytes | None]:
        if self._ended:
            raise SourceEnded(f"camera {self._camera_id}: video {self.path} ended")
        for _ in range(2):  # at most one rewind per call
            if self._cap is None:
                cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
                if not cap.isOpened():
                    cap.release()
                    raise SourceUnavailable(
                        f"camera {self._camera_id}: cannot open video {self.path}: {self._why_unopened()}",
                        camera_id=self._camera_id,
                    )
                self._cap, self._index = cap, 0
                self._expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                fps = cap.get(cv2.CAP_PROP_FPS)
                if fps and fps > 0:
                    self._period = 1.0 / fps
            ok, image = self._cap.read()
            if ok and image is not None:
                self._index += 1
                return cast(Image, image), 1.0, None
            if self._expected and self._index < self._expected:
                self._skip(f"video {self.path} ended after {self._index} of {self._expected} frames (truncated?)")
            self._release()
            if self._index == 0 or not self.loop:
                self._ended = True
                what = "has no readable frame" if self._index == 0 else "ended"
                raise SourceEnded(f"camera {self._camera_id}: video {self.path} {what}")
        raise SourceEnded(f"camera {self._camera_id}: video {self.path} ended")

    def _why_unopened(self) -> str:
        """Why FFmpeg could not open the video, as far as the file system tells."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return "the file no longer exists"
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})"
        if size == 0:
            return "the file is empty (0 bytes)"
        return f"not a video, or a codec FFmpeg cannot decode ({size} bytes): convert it to H.264 MP4"

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
