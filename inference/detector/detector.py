"""The detector as the pipeline sees it: ``await detector.detect(frame)`` from any number of cameras.

Requests go into one bounded queue, keyed by camera. Policy when a frame arrives:

- the camera already has a frame waiting: the newer frame replaces it, the older request fails
  with :class:`FrameDropped` (counted for that camera): a detector that falls behind analyses the
  freshest picture, not a backlog;
- the queue is full (``queue_size`` cameras waiting): the oldest waiting frame is dropped the same
  way (counted for its camera).

One dispatcher task takes frames off the queue when a session is free. A model with a dynamic
batch dimension gets cross-camera batches: up to ``max_batch`` frames, or what arrived within
``max_wait_ms`` of the oldest waiting one, whichever comes first. A fixed-batch model (all of
``shared/models``) gets frames back to back, without waiting: the dispatcher keeps one frame per
session handed to the executor ahead of time (``LOOKAHEAD``), so a session that finishes starts
its next frame at once instead of waiting for the event loop to notice (on a busy 2-core node
that round trip left each session idle 9 % of the time, see ``benchmarks/pipeline.py``); only
those few frames are past the queue policy. Letterbox, ``session.run`` and the output decode
run in a bounded executor (one thread per session), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType

from xueliang.inference.detector.engine import Ask, Engine
from xueliang.inference.detector.stats import DetectorStats, StatsRecorder
from xueliang.inference.errors import DetectorNotRunning, FrameDropped, InferenceError
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.settings import DetectorSettings

log = logging.getLogger(__name__)

#: frames handed to the executor per session beyond the one running (fixed-batch models only: a
#: dynamic-batch model's next batch keeps filling in the queue until a session is free)
LOOKAHEAD = 1


class DetectorState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class _Request:
    frame: Frame
    ask: Ask
    future: asyncio.Future[list[Detection]]
    enqueued: float = field(default_factory=time.monotonic)


class Detector:
    """ONNX object detector shared by all cameras of a node. Use ``async with Detector(settings):``."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.state = DetectorState.NEW
        self._stats = StatsRecorder()
        self._engine: Engine | None = None
        self._executor = ThreadPoolExecutor(max_workers=settings.sessions, thread_name_prefix="detector")
        self._queue: OrderedDict[str, _Request] = OrderedDict()
        self._arrived = asyncio.Event()
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._dispatcher: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The loaded engine (sessions, adapter); loads synchronously on first use outside ``start()``."""
        if self._engine is None:
            self._engine = Engine(self.settings, self._stats)
        return self._engine

    async def start(self) -> None:
        """Load the model off the loop (raises :class:`ModelError`) and start serving."""
        if self.state is not DetectorState.NEW:
            raise DetectorNotRunning(f"detector cannot start from state {self.state.value}")
        self.state = DetectorState.STARTING
        loop = asyncio.get_running_loop()
        try:
            if self._engine is None:
                self._engine = await loop.run_in_executor(self._executor, Engine, self.settings, self._stats)
        except BaseException:
            self.state = DetectorState.STOPPED
            self._executor.shutdown(wait=False)
            raise
        ahead = LOOKAHEAD if self.engine.max_batch == 1 else 0
        self._slots = asyncio.Semaphore(self.settings.sessions * (1 + ahead))
        self._dispatcher = asyncio.create_task(self._dispatch(), name="detector-dispatch")
        self._dispatcher.add_done_callback(self._dispatcher_done)
        self.state = DetectorState.RUNNING

    async def stop(self) -> None:
        """Stop serving: waiting requests fail with :class:`DetectorNotRunning`; returns once the executor
        threads are done (a running ``session.run`` cannot be interrupted: its requests get its results)."""
        if self.state in (DetectorState.STOPPING, DetectorState.STOPPED):
            return
        self.state = DetectorState.STOPPING
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            # Wait for the dispatcher without swallowing a cancellation of stop()'s own caller.
            await asyncio.wait({self._dispatcher})
        self._fail_waiting("detector stopped before this frame was analysed")
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self.state = DetectorState.STOPPED
        log.info("detector stopped: %s", self.stats())

    async def __aenter__(self) -> Detector:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- the API -------------------------------------------------------------------------------

    @property
    def executor(self) -> Executor:
        """The detector's threads (one per session). On a small node the visit's other CPU work (JPEG
        decode, quality checks) is best run here too: each thread then does a whole visit's CPU work
        back to back, as the benchmark's limit does, instead of extra threads preempting the sessions
        and evicting their caches (about 1 ms of CPU a frame on 2 cores, ``benchmarks/pipeline.py``).
        Borrowers never shut it down; ``stop()`` does, so stop them first."""
        return self._executor

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the model input: frame sources use it to pick a reduced decode scale."""
        return self.engine.adapter.input_size

    @property
    def labels(self) -> tuple[str, ...]:
        return self.engine.adapter.labels

    async def detect(
        self, frame: Frame, *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[Detection]:
        """Detections on ``frame`` (in ``frame.image`` pixels), best first.

        ``classes`` keeps only those class names (default: ``settings.classes``, else all);
        ``min_score`` defaults to ``settings.min_score``. Raises :class:`FrameDropped` when a newer
        frame of the same camera (or queue overflow) displaced this one, :class:`DetectorNotRunning`
        when the detector is not running, :class:`DetectorError` when the model failed, and
        ValueError for a class name the model does not know.
        """
        if self.state is not DetectorState.RUNNING:
            raise DetectorNotRunning(
                f"detector is {self.state.value}: start it (async with Detector(...)) before detect()",
                camera_id=frame.camera_id,
            )
        _check_image(frame)
        req = _Request(frame, self._ask(classes, min_score), asyncio.get_running_loop().create_future())
        self._enqueue(req)
        try:
            result = await req.future
        except asyncio.CancelledError:
            if self._queue.get(frame.camera_id) is req:
                del self._queue[frame.camera_id]
            raise
        self._stats.latency((time.monotonic() - req.enqueued) * 1e3)
        return result

    async def detect_many(
        self, frames: Iterable[Frame], *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[list[Detection] | InferenceError]:
        """detect() on several frames at once (one per camera); failures are returned in place."""

        async def one(frame: Frame) -> list[Detection] | InferenceError:
            try:
                return await self.detect(frame, classes=classes, min_score=min_score)
            except InferenceError as exc:
                return exc

        return list(await asyncio.gather(*(one(f) for f in frames)))

    def detect_sync(
        self, frames: Sequence[Frame], *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[list[Detection]]:
        """Blocking detection of ``frames`` as one batch in the calling thread (benchmarks, tools).

        For a fixed-batch model the frames run one after another. Never call it on the event loop.
        """
        ask = self._ask(classes, min_score)
        engine = self.engine
        step = engine.max_batch
        out: list[list[Detection]] = []
        for i in range(0, len(frames), step):
            chunk = frames[i : i + step]
            out += engine.infer(chunk, [ask] * len(chunk))
        return out

    def stats(self) -> DetectorStats:
        providers = self._engine.providers if self._engine is not None else ()
        return self._stats.snapshot(len(self._queue), self._in_flight, providers)

    # --- internals -----------------------------------------------------------------------------

    def _ask(self, classes: frozenset[str] | None, min_score: float | None) -> Ask:
        if classes is None and self.settings.classes is not None:
            classes = frozenset(self.settings.classes)
        score = self.settings.min_score if min_score is None else min_score
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1], got {score}")
        return Ask(self.engine.class_filter(classes), score)

    def _enqueue(self, req: _Request) -> None:
        cam = req.frame.camera_id
        older = self._queue.pop(cam, None)
        if older is not None:
            self._drop(older, "a newer frame of the same camera replaced it")
        elif len(self._queue) >= self.settings.queue_size:
            _, oldest = self._queue.popitem(last=False)
            self._drop(oldest, f"the detector queue was full ({self.settings.queue_size} frames)")
        self._queue[cam] = req
        self._arrived.set()

    def _drop(self, req: _Request, why: str) -> None:
        self._stats.dropped(req.frame.camera_id)
        log.debug("camera %s: frame %d dropped from the detector queue: %s", req.frame.camera_id, req.frame.seq, why)
        _fail(
            req,
            FrameDropped(
                f"camera {req.frame.camera_id}: frame {req.frame.seq} dropped: {why}", camera_id=req.frame.camera_id
            ),
        )

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("detector dispatcher failed, detector stopped: %r", exc, exc_info=exc)
        self.state = DetectorState.STOPPED
        self._fail_waiting(f"detector failed: {exc!r}")

    def _fail_waiting(self, why: str) -> None:
        """Fail every request still waiting in the queue with :class:`DetectorNotRunning`."""
        while self._queue:
            _, req = self._queue.popitem(last=False)
            _fail(req, DetectorNotRunning(why, camera_id=req.frame.camera_id))

    async def _dispatch(self) -> None:
        assert self._slots is not None
        engine = self.engine
        max_batch = engine.max_batch
        wait_s = self.settings.max_wait_ms / 1000.0
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if max_batch > 1 and len(self._queue) < max_batch:
                oldest = next(iter(self._queue.values()))
                left = oldest.enqueued + wait_s - time.monotonic()
                if left > 0:
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            await self._arrived.wait()
                    continue
            await self._slots.acquire()
            batch = [self._queue.popitem(last=False)[1] for _ in range(min(max_batch, len(self._queue)))]
            if not batch:
                self._slots.release()
                continue
            self._in_flight += 1
            # a plain callback back to the loop, no task per batch: on a busy node every step the
            # loop saves per frame is CPU the sessions get
            running = self._executor.submit(engine.infer, [r.frame for r in batch], [r.ask for r in batch])
            running.add_done_callback(partial(_back_to_loop, loop, partial(self._deliver, batch)))

    def _deliver(self, batch: list[_Request], running: Future[list[list[Detection]]]) -> None:
        """On the loop: a batch's results (or its failure) to each of its requests."""
        assert self._slots is not None
        self._in_flight -= 1
        self._slots.release()
        exc = running.exception()
        if exc is None:
            for req, dets in zip(batch, running.result(), strict=True):
                if not req.future.done():
                    req.future.set_result(dets)
            return
        if isinstance(exc, InferenceError):
            log.warning("detector batch of %d failed: %s", len(batch), exc)
        else:  # a defect in decode/preprocess: each caller gets it, the detector goes on
            log.error("detector batch of %d failed unexpectedly", len(batch), exc_info=exc)
        for req in batch:
            _fail(req, exc)


def _back_to_loop(
    loop: asyncio.AbstractEventLoop,
    deliver: Callable[[Future[list[list[Detection]]]], None],
    running: Future[list[list[Detection]]],
) -> None:
    """Executor-thread side of a finished batch: hand it to the loop (gone at interpreter exit: dropped)."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for these results
        loop.call_soon_threadsafe(deliver, running)


def _check_image(frame: Frame) -> None:
    img = frame.image
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0 or img.dtype.name != "uint8":
        raise ValueError(
            f"camera {frame.camera_id}: frame {frame.seq} is not an H x W x 3 uint8 BGR image "
            f"(shape {img.shape}, dtype {img.dtype})"
        )


def _fail(req: _Request, exc: BaseException) -> None:
    if not req.future.done():
        req.future.set_exception(exc)
