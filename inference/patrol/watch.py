"""Watch mode: cameras under continuous watch get a stream, not one snapshot per visit.

A ``WatchSession`` reads its camera's source at ``fps``, runs the cheap motion gate on each frame
(executor) and sends only frames with motion to the detector, plus one every ``idle_detect_s``
without motion so the tracks of people standing still stay alive (loitering). Detections feed
the camera's tracker and rules (``continuous=True``); each anomaly goes to the sink, at most once
per rule and zone every ``repeat_s`` (the events side aggregates them into one incident anyway).
Counters: frames seen, frames passed to the detector, and why.

A source that fails (``SourceError``) is closed and reopened after ``restart_delay_s``; a finite
source that ends (a file) ends the session. ``WatchManager`` keeps one session per watched camera
(at most ``max_cameras``; the others are refused and counted) and follows the camera list.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from xueliang.inference.errors import DetectorError, SourceError
from xueliang.inference.frames import Frame
from xueliang.inference.motion import MotionGate
from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.settings import WatchSettings
from xueliang.inference.pipeline import DetectorLike, Sink, SinkError
from xueliang.inference.rules.engine import CameraRules
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.sources.base import FrameSource, paced

log = logging.getLogger(__name__)

WatchSourceFactory = Callable[[PatrolTarget], FrameSource]


class WatchState(enum.StrEnum):
    CREATED = "created"
    STREAMING = "streaming"
    RESTARTING = "restarting"  # waiting to reopen a failed source
    ENDED = "ended"  # a finite source delivered its last frame
    STOPPED = "stopped"


@dataclass(slots=True)
class WatchCounters:
    frames_seen: int = 0
    frames_motion: int = 0  # passed because the gate saw motion
    frames_idle: int = 0  # passed without motion, to keep tracks alive
    frames_detected: int = 0  # detector answered
    detector_errors: int = 0
    source_errors: int = 0
    anomalies: int = 0
    repeats_suppressed: int = 0
    sink_errors: int = 0  # anomalies the sink could not take (dropped: the next frame fires again)
    clock_steps_back: int = 0  # frames older than the one before (the wall clock stepped back)

    @property
    def frames_passed(self) -> int:
        return self.frames_motion + self.frames_idle


class WatchSession:
    """One camera under watch."""

    def __init__(
        self,
        target: PatrolTarget,
        source_factory: WatchSourceFactory,
        detector: DetectorLike,
        sink: Sink,
        *,
        executor: Executor,
        settings: WatchSettings | None = None,
        rules: RuleSettings | None = None,
    ) -> None:
        self.target = target
        self._factory = source_factory
        self._detector = detector
        self._sink = sink
        self._executor = executor
        self._s = settings or WatchSettings()
        self.rules = CameraRules(target.camera_id, rules)
        self.gate = MotionGate(self._s.motion)
        self.counters = WatchCounters()
        self.state = WatchState.CREATED
        self._last_detect: float | None = None
        self._last_sent: dict[tuple[str, str], float] = {}
        self._last_frame_at: float | None = None
        self._classes = frozenset(target.classes) if target.classes is not None else None

    @property
    def camera_id(self) -> str:
        return self.target.camera_id

    async def run(self) -> None:
        """Stream until the source ends or the task is cancelled (the source is closed either way)."""
        try:
            while True:
                source = self._factory(self.target)
                self.state = WatchState.STREAMING
                try:
                    async for frame in paced(source, self._s.fps):
                        await self._on_frame(frame)
                    self.state = WatchState.ENDED
                    log.info("camera %s: watch source ended", self.camera_id)
                    return
                except SourceError as exc:
                    self.counters.source_errors += 1
                    self.state = WatchState.RESTARTING
                    log.warning(
                        "camera %s: watch stream failed, reopening in %.1f s: %s",
                        self.camera_id,
                        self._s.restart_delay_s,
                        exc,
                    )
                finally:
                    await source.close()
                self.gate.reset()
                await asyncio.sleep(self._s.restart_delay_s)
        finally:
            if self.state is not WatchState.ENDED:
                self.state = WatchState.STOPPED

    async def _on_frame(self, frame: Frame) -> None:
        self.counters.frames_seen += 1
        if self._last_frame_at is not None and frame.captured_at < self._last_frame_at:
            self._clock_stepped_back(self._last_frame_at - frame.captured_at)
        self._last_frame_at = frame.captured_at
        loop = asyncio.get_running_loop()
        motion = await loop.run_in_executor(self._executor, self.gate.check, frame.image)
        idle_due = self._last_detect is None or frame.captured_at - self._last_detect >= self._s.idle_detect_s
        if not motion.moved and not idle_due:
            return
        if motion.moved:
            self.counters.frames_motion += 1
        else:
            self.counters.frames_idle += 1
        self._last_detect = frame.captured_at
        try:
            detections = await self._detector.detect(frame, classes=self._classes, min_score=self.target.min_score)
        except DetectorError as exc:
            self.counters.detector_errors += 1
            log.debug("camera %s: watch frame %d not detected: %s", self.camera_id, frame.seq, exc)
            return
        self.counters.frames_detected += 1
        anomalies = await loop.run_in_executor(
            self._executor,
            lambda: self.rules.anomalies(frame, detections, self.target.zones, continuous=True),
        )
        for anomaly in anomalies:
            key = (anomaly.rule, anomaly.zone)
            last = self._last_sent.get(key)
            if last is not None and frame.captured_at - last < self._s.repeat_s:
                self.counters.repeats_suppressed += 1
                continue
            try:
                await self._sink(anomaly)
            except SinkError as exc:
                self.counters.sink_errors += 1
                log.warning("camera %s: %s anomaly not accepted: %s", self.camera_id, anomaly.rule, exc)
                continue
            self._last_sent[key] = frame.captured_at
            self.counters.anomalies += 1

    def _clock_stepped_back(self, seconds: float) -> None:
        """A frame older than the one before: the wall clock stepped back (NTP, a manual set). The
        pacing times move back with it, as the tracker's do, so that idle checks and repeated
        anomalies go on at their pace instead of stopping for the length of the step."""
        self.counters.clock_steps_back += 1
        if self._last_detect is not None:
            self._last_detect -= seconds
        self._last_sent = {key: at - seconds for key, at in self._last_sent.items()}


class WatchManager:
    """Sessions for the watched cameras of the camera list. Run ``run()`` in the node's TaskGroup
    and call ``update(targets)`` whenever the list changes (a list given before ``run()`` has
    started is applied when it starts)."""

    def __init__(
        self,
        source_factory: WatchSourceFactory,
        detector: DetectorLike,
        sink: Sink,
        *,
        executor: Executor,
        settings: WatchSettings | None = None,
        rules: RuleSettings | None = None,
    ) -> None:
        self._factory = source_factory
        self._detector = detector
        self._sink = sink
        self._executor = executor
        self._s = settings or WatchSettings()
        self._rules = rules
        self._sessions: dict[str, tuple[WatchSession, asyncio.Task[None]]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._waiting: Sequence[PatrolTarget] | None = None  # a list given while not running
        self._stop = asyncio.Event()
        self.refused = 0  # watched cameras beyond max_cameras

    @property
    def sessions(self) -> dict[str, WatchSession]:
        return {camera_id: session for camera_id, (session, _) in self._sessions.items()}

    async def run(self) -> None:
        """Hold the sessions until ``stop()``; then cancel them and wait for each to close."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            if self._waiting is not None:
                targets, self._waiting = self._waiting, None
                self.update(targets)
            try:
                await self._stop.wait()
            finally:
                self._group = None
                for _session, task in self._sessions.values():
                    task.cancel()
        self._sessions.clear()

    def stop(self) -> None:
        self._stop.set()

    def update(self, targets: Sequence[PatrolTarget]) -> None:
        """Start sessions for newly watched cameras, stop those no longer watched (or changed)."""
        group = self._group
        if group is None:  # not running (yet): the newest list is applied when run() starts
            self._waiting = targets
            return
        wanted = {t.camera_id: t for t in targets if t.enabled and t.watch}
        for camera_id, (session, task) in list(self._sessions.items()):
            if wanted.get(camera_id) != session.target or task.done():
                task.cancel()
                del self._sessions[camera_id]
        for camera_id, target in wanted.items():
            if camera_id in self._sessions:
                continue
            if len(self._sessions) >= self._s.max_cameras:
                self.refused += 1
                log.warning("camera %s: not watched, %d cameras under watch already", camera_id, self._s.max_cameras)
                continue
            session = WatchSession(
                target,
                self._factory,
                self._detector,
                self._sink,
                executor=self._executor,
                settings=self._s,
                rules=self._rules,
            )
            task = group.create_task(session.run(), name=f"watch-{camera_id}")
            self._sessions[camera_id] = (session, task)
            log.info("camera %s: under watch at %.1f fps", camera_id, self._s.fps)
