"""The media relay: one upstream per camera, however many operators watch it.

``Relay.run()`` is a node service. It owns a task group holding every upstream and a janitor that
stops an upstream once its last viewer has been gone for ``grace_s`` (a viewer coming back within
the grace period finds the camera running and its keyframe cache warm: instant start). Readers run
in one bounded thread pool (``max_upstreams`` threads, one per relayed camera).

Usage::

    relay = Relay(settings)                      # relay.run() runs as a node service
    track = relay.attach(SourceSpec(camera_id, url, safe_url))
    pc.addTransceiver(track, direction="sendonly")
    ...
    track.stop()                                 # detaches; the janitor stops the upstream later
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from xueliang.api.wall.errors import CapacityReached, RelayNotRunning
from xueliang.api.wall.models import SourceSpec, UpstreamInfo
from xueliang.api.wall.upstream import Upstream
from xueliang.api.wall.viewer import ViewerTrack
from xueliang.gateway.wall_settings import WallSettings

log = logging.getLogger(__name__)

JANITOR_TICK_S = 0.25


class RelayState(enum.StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Relay:
    def __init__(self, settings: WallSettings, on_change: Callable[[UpstreamInfo], None] | None = None) -> None:
        self.settings = settings
        self.state = RelayState.NEW
        self._on_change = on_change
        self._upstreams: dict[str, Upstream] = {}
        self._group: asyncio.TaskGroup | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled; stopping cancels every upstream and waits for its reader thread.
        The node's supervisor may run it again after a failure: it starts afresh."""
        if self.state is RelayState.RUNNING:
            raise RuntimeError("relay already running")
        self._executor = ThreadPoolExecutor(self.settings.max_upstreams, thread_name_prefix="wall-rtsp")
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self.state = RelayState.RUNNING
                self._running.set()
                await self._janitor()
        finally:
            self.state = RelayState.STOPPED
            self._running.clear()
            self._group = None
            self._upstreams.clear()
            self._executor.shutdown(wait=False)
            log.info("wall relay stopped")

    async def wait_running(self) -> None:
        await self._running.wait()

    def attach(self, spec: SourceSpec) -> ViewerTrack:
        """A new viewer of ``spec.camera_id``; starts the camera's upstream if it is not running."""
        upstream = self._upstreams.get(spec.camera_id) or self._start(spec)
        viewer = ViewerTrack(upstream, self.settings.viewer_queue_frames)
        upstream.attach(viewer)
        return viewer

    def warm(self, spec: SourceSpec) -> UpstreamInfo:
        """Start (or keep) ``spec.camera_id``'s upstream without a viewer, for ``grace_s``: a tour warms
        its next cameras so that they show at once when their turn comes."""
        upstream = self._upstreams.get(spec.camera_id) or self._start(spec)
        if not upstream.viewers:
            upstream.idle_since = time.monotonic()
        return upstream.public()

    def _start(self, spec: SourceSpec) -> Upstream:
        if self.state is not RelayState.RUNNING or self._group is None or self._executor is None:
            raise RelayNotRunning("the wall relay is not running (gateway starting or stopping): retry shortly")
        if len(self._upstreams) >= self.settings.max_upstreams:
            raise CapacityReached(
                f"this node already relays {len(self._upstreams)} cameras (wall.max_upstreams): "
                f"camera {spec.camera_id} cannot be added; close other tiles or raise the limit"
            )
        upstream = Upstream(spec, self.settings, self._executor, self._changed)
        self._upstreams[spec.camera_id] = upstream
        upstream.task = self._group.create_task(upstream.run(), name=f"wall-upstream-{spec.camera_id}")
        log.info("camera %s: upstream started", spec.camera_id)
        return upstream

    def upstream(self, camera_id: str) -> Upstream | None:
        return self._upstreams.get(camera_id)

    def upstreams(self) -> list[UpstreamInfo]:
        return [upstream.public() for upstream in self._upstreams.values()]

    @property
    def viewers(self) -> int:
        return sum(len(upstream.viewers) for upstream in self._upstreams.values())

    async def _janitor(self) -> None:
        tick = min(JANITOR_TICK_S, max(self.settings.grace_s / 4, 0.05))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for upstream in list(self._upstreams.values()):
                idle = upstream.idle_since
                if not upstream.viewers and idle is not None and now - idle >= self.settings.grace_s:
                    self._stop(upstream)

    def _stop(self, upstream: Upstream) -> None:
        log.info("camera %s: no viewer for %.0f s, stopping its upstream", upstream.camera_id, self.settings.grace_s)
        del self._upstreams[upstream.camera_id]
        if upstream.task is not None:
            upstream.task.cancel()

    def _changed(self, upstream: Upstream) -> None:
        if self._on_change is not None:
            self._on_change(upstream.public())
