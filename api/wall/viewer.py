"""One viewer of one camera: an aiortc track that hands the relay's H.264 access units to a sender.

The track returns ``av.Packet`` objects, so aiortc packetizes them without encoding anything.
On its first ``recv()`` (when the peer connection is up) the viewer is primed with the upstream's
keyframe cache, re-timed to decode at once: the first picture does not wait for the camera's next
keyframe. Afterwards it gets live units through a bounded queue.

Overflow policy: when the queue is full (the viewer's link cannot keep up) the queue is emptied and
the viewer re-primes from the cache, i.e. jumps to the present picture; the lost units are counted
as ``dropped`` and the jump as a ``resync``. Without a cache it waits for the next keyframe.

Picture loss: a passthrough relay cannot make the camera send a keyframe, so a browser's PLI/FIR
(``request_keyframe``) re-primes the viewer from the cache instead, at most once per
``KEYFRAME_REQUEST_GAP_S``: the picture is whole again at once, not after the rest of the GOP.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from xueliang.api.wall.models import TIME_BASE, AccessUnit, ViewerCounters

if TYPE_CHECKING:
    from xueliang.api.wall.upstream import Upstream


KEYFRAME_REQUEST_GAP_S = 1.0


class ViewerTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, upstream: Upstream, queue_frames: int) -> None:
        super().__init__()
        self.upstream = upstream
        self.camera_id = upstream.camera_id
        self.counters = ViewerCounters(attached_at=time.monotonic())
        self._limit = upstream.settings.gop_cache_frames + queue_frames
        self._queue: deque[AccessUnit] = deque()
        self._wake = asyncio.Event()
        self._primed = False
        self._need_keyframe = True
        self._last_pts = -1
        self._keyframe_wanted = False
        self._keyframe_served_at = 0.0

    # --- relay side ------------------------------------------------------------------------------

    def offer(self, unit: AccessUnit) -> bool:
        """Queue a live unit; False when it was not taken (not primed yet, or waiting for a keyframe)."""
        if not self._primed:
            return False
        if self._need_keyframe:
            if not unit.keyframe:
                self.counters.dropped += 1
                return False
            self._need_keyframe = False
        if len(self._queue) >= self._limit:
            self.counters.dropped += len(self._queue) + 1
            self._queue.clear()
            self.resync()
            return False
        self._queue.append(unit)
        self._wake.set()
        return True

    def resync(self) -> None:
        """Forget what is queued and start again from the cache (or the next keyframe)."""
        if not self._primed:
            return  # not streaming yet: the first recv() primes it
        self.counters.resyncs += 1
        self._queue.clear()
        self._prime()

    def _prime(self) -> None:
        replay = self.upstream.gop.replay()
        self._primed = True
        self._need_keyframe = not replay
        self._queue.extend(replay)
        self.counters.replayed += len(replay)
        if replay:
            self._wake.set()

    # --- sender side -----------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """The receiver lost the picture (RTCP PLI/FIR): serve the cached GOP again on the next recv()."""
        self._keyframe_wanted = True
        self._wake.set()

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._primed:
            self._prime()
        elif self._keyframe_wanted:
            self._keyframe_wanted = False
            now = time.monotonic()
            if now - self._keyframe_served_at >= KEYFRAME_REQUEST_GAP_S:
                self._keyframe_served_at = now
                self.counters.keyframe_requests += 1
                self.resync()
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
            if self.readyState != "live":
                raise MediaStreamError
        unit = self._queue.popleft()
        pts = max(unit.pts, self._last_pts + 1)
        self._last_pts = pts
        packet = av.Packet(unit.data)
        packet.pts = pts
        packet.time_base = TIME_BASE
        counters = self.counters
        if not counters.sent:
            counters.first_sent_at = time.monotonic()
        counters.sent += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._wake.set()
            self.upstream.detach(self)
