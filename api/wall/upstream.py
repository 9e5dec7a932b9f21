"""One camera's upstream: a single RTSP session fanned out to every viewer of that camera.

The reader runs in a worker thread and hands access units to the event loop with
``call_soon_threadsafe``. That hand-off is bounded (``loop_backlog_frames``): when the loop falls
that far behind, units are dropped (counted as ``loop_drops``) and everyone resyncs at the next
keyframe, since a P-frame after a gap would only smear the picture.

Timestamps are moved onto one continuous 90 kHz timeline per upstream, so a reconnect (the camera
restarts its clock) looks like a pause to viewers, not a jump back in time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from xueliang.api.wall.errors import SourceError
from xueliang.api.wall.gop import GopCache
from xueliang.api.wall.models import (
    CLOCK_RATE,
    AccessUnit,
    SourceInfo,
    SourceSpec,
    UpstreamCounters,
    UpstreamInfo,
    UpstreamState,
)
from xueliang.api.wall.source import DEFAULT_STEP, SourceReader
from xueliang.gateway.wall_settings import WallSettings

if TYPE_CHECKING:
    from xueliang.api.wall.viewer import ViewerTrack

log = logging.getLogger(__name__)

HEALTHY_SESSION_S = 10.0  # a session that streamed this long resets the reconnect backoff
MAX_JUMP_TICKS = 10 * CLOCK_RATE  # a source timestamp jump larger than this re-anchors the timeline

OnChange = Callable[["Upstream"], None]


class Timeline:
    """Maps each session's source timestamps onto one increasing timeline."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self.last = -1
        self._last_at = 0.0

    def new_session(self) -> None:
        self._offset = None

    def map(self, pts: int, now: float) -> int:
        out = pts + self._offset if self._offset is not None else None
        if out is None or out <= self.last or out - self.last > MAX_JUMP_TICKS:
            gap = round((now - self._last_at) * CLOCK_RATE) if self.last >= 0 else 0
            out = self.last + max(DEFAULT_STEP if self._offset is not None else 1, min(gap, MAX_JUMP_TICKS))
            out = max(out, 0)
            self._offset = out - pts
        self.last, self._last_at = out, now
        return out


class Upstream:
    """The RTSP session of one camera, its keyframe cache and its viewers."""

    def __init__(self, spec: SourceSpec, settings: WallSettings, executor: Executor, on_change: OnChange) -> None:
        self.spec = spec
        self.camera_id = spec.camera_id
        self.settings = settings
        self.state = UpstreamState.NEW
        self.info: SourceInfo | None = None
        self.counters = UpstreamCounters()
        self.gop = GopCache(settings.gop_cache_frames, settings.gop_cache_bytes)
        self.viewers: set[ViewerTrack] = set()
        self.idle_since: float | None = time.monotonic()
        self.last_error = ""
        self.task: asyncio.Task[None] | None = None
        self._executor = executor
        self._on_change = on_change
        self._timeline = Timeline()
        self._lock = threading.Lock()
        self._backlog = 0
        self._session = 0
        self._resync = False
        self._warned_gop = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- viewers ---------------------------------------------------------------------------------

    def attach(self, viewer: ViewerTrack) -> None:
        self.viewers.add(viewer)
        self.idle_since = None
        self._on_change(self)

    def detach(self, viewer: ViewerTrack) -> None:
        self.viewers.discard(viewer)
        if not self.viewers:
            self.idle_since = time.monotonic()
        self._on_change(self)

    def public(self) -> UpstreamInfo:
        info, c = self.info, self.counters
        return UpstreamInfo(
            camera_id=self.camera_id,
            state=self.state,
            mode=info.mode if info else None,
            codec=info.codec if info else "",
            width=info.width if info else 0,
            height=info.height if info else 0,
            viewers=len(self.viewers),
            gop_cached=len(self.gop),
            last_error=self.last_error,
            sessions=c.sessions,
            reconnects=c.reconnects,
            frames=c.frames,
            keyframes=c.keyframes,
            loop_drops=c.loop_drops,
            gop_overflows=c.gop_overflows,
        )

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stream until cancelled, reconnecting with exponential backoff when the camera drops."""
        self._loop = asyncio.get_running_loop()
        delay = self.settings.reconnect_min_s
        try:
            while True:
                self._set_state(UpstreamState.CONNECTING)
                started = time.monotonic()
                try:
                    await self._session_once()
                except SourceError as exc:
                    self.last_error = str(exc)
                    log.warning("camera %s: upstream dropped: %s", self.camera_id, exc)
                if time.monotonic() - started >= HEALTHY_SESSION_S:
                    delay = self.settings.reconnect_min_s
                self.counters.reconnects += 1
                self._drop_decoding_state()
                self._set_state(UpstreamState.RECONNECTING)
                log.info("camera %s: reconnecting in %.1f s", self.camera_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
        finally:
            self._set_state(UpstreamState.STOPPED)
            for viewer in list(self.viewers):
                viewer.stop()

    async def _session_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._session += 1
        session = self._session
        self._timeline.new_session()
        reader = SourceReader(
            self.spec,
            self.settings,
            emit=lambda data, pts, key: self._from_thread(session, data, pts, key),
            opened=lambda info: self._opened_from_thread(loop, session, info),
        )
        future = loop.run_in_executor(self._executor, reader.run)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            self._set_state(UpstreamState.STOPPING)
            reader.stop.set()
            try:
                await future  # the reader notices within one frame, or read_timeout_s
            except SourceError as exc:
                log.debug("camera %s: reader ended while stopping: %s", self.camera_id, exc)
            raise

    def _opened_from_thread(self, loop: asyncio.AbstractEventLoop, session: int, info: SourceInfo) -> None:
        loop.call_soon_threadsafe(self._opened, session, info)

    def _opened(self, session: int, info: SourceInfo) -> None:
        if session != self._session:
            return
        self.info = info
        self.last_error = ""
        self.counters.sessions += 1
        log.info(
            "camera %s: streaming %s %dx%d (%s) from %s",
            self.camera_id,
            info.codec,
            info.width,
            info.height,
            info.mode.value,
            self.spec.safe_url,
        )
        self._set_state(UpstreamState.STREAMING)

    def _set_state(self, state: UpstreamState) -> None:
        if state is not self.state:
            self.state = state
            self._on_change(self)

    def _drop_decoding_state(self) -> None:
        self.gop.clear()
        for viewer in self.viewers:
            viewer.resync()

    # --- media -----------------------------------------------------------------------------------

    def _from_thread(self, session: int, data: bytes, pts: int, keyframe: bool) -> None:
        """Runs in the reader thread: bounded hand-off to the loop."""
        loop = self._loop
        assert loop is not None
        with self._lock:
            if self._backlog >= self.settings.loop_backlog_frames:
                self.counters.loop_drops += 1
                self._resync = True
                return
            self._backlog += 1
        loop.call_soon_threadsafe(self._on_unit, session, data, pts, keyframe, time.monotonic())

    def _on_unit(self, session: int, data: bytes, pts: int, keyframe: bool, received_at: float) -> None:
        with self._lock:
            self._backlog -= 1
            resync, self._resync = self._resync, False
        if session != self._session or self.state is not UpstreamState.STREAMING:
            return
        if resync:
            self._drop_decoding_state()
        unit = AccessUnit(data, self._timeline.map(pts, received_at), keyframe, received_at)
        counters = self.counters
        counters.frames += 1
        counters.bytes += len(data)
        if keyframe:
            counters.keyframes += 1
        if not self.gop.add(unit):
            counters.gop_overflows += 1
        if counters.gop_overflows == 1 and not self._warned_gop:
            self._warned_gop = True
            log.warning(
                "camera %s: GOP longer than the cache (%d frames / %d bytes): new viewers wait for the next "
                "keyframe; shorten the camera's I-frame interval",
                self.camera_id,
                self.settings.gop_cache_frames,
                self.settings.gop_cache_bytes,
            )
        for viewer in self.viewers:
            if viewer.offer(unit):
                counters.fanned_out += 1
