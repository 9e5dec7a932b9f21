"""The patrol workers: take a job, grab one frame, check its quality, detect, apply the rules,
hand the anomalies to the sink, acknowledge the job.

``workers`` coroutines share one job queue (``JobFeed``: the gateway's ``JobQueue``), one
detector (it batches across cameras) and one bounded CPU executor (quality checks, evidence JPEG
encoding): the pipeline's own, or one it is given; on a small node, give it ``Detector.executor``
(and the snapshot client too), so that a visit's CPU work runs on the sessions' threads instead of
extra threads preempting them (see ``Detector.executor``). Per camera, a visit:

1. builds a source with ``source_factory(job)`` (the gateway passes snapshot / RTSP sources,
   tests a file source) and reads one frame (``grab_timeout_s`` on top of the source's own);
2. runs the quality checks (executor; a snapshot source runs them right after its decode, in the
   same hop, while the picture is in that core's cache);
3. unless the picture is black or covered, ``detector.detect`` with the camera's class filter;
4. runs the zone rules (on the loop: a few boxes against a few polygons costs less than a hop to
   the executor); when something fired, builds the anomalies with the frame as evidence (the
   camera's own JPEG when it sent one, else encoded once in the executor, only then), and awaits
   ``sink(anomaly)`` for each.

Failures, by kind, counted in ``stats().failures``; none stops a worker:

- source (``SourceError``, ``CorruptFrame``, grab timeout): the camera's run of consecutive
  failures grows; from ``unreachable_after`` on, each failed visit sends a ``camera.unreachable``
  anomaly (``camera.auth_failed`` when the credentials were refused); the job is acknowledged;
- detector (``DetectorError``; ``ValueError`` for a class name the model does not know, counted
  as ``bad_classes``): quality anomalies are still sent, the rules are skipped;
- sink (``SinkError``, the gateway's bus cannot take it now): the job is NOT acknowledged, the
  queue hands it out again after its visibility timeout (at-least-once);
- a job payload that is not a ``PatrolJob``: logged, acknowledged (it would never get better);
- anything else is a bug: logged with its traceback and counted as ``internal``; the worker goes on.

Cancellation: a cancelled visit closes its source and re-raises; its job is not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar, cast

import cv2
from pydantic import ValidationError

from xueliang.inference.anomaly import Anomaly
from xueliang.inference.errors import CorruptFrame, DetectorError, InferenceError, SourceAuthFailed, SourceError
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.patrol.camera_state import CameraState, LruMap
from xueliang.inference.patrol.models import PatrolJob
from xueliang.inference.patrol.settings import PipelineSettings
from xueliang.inference.patrol.stats import PipelineState, PipelineStats, Rate, Window
from xueliang.inference.quality import QualityChecker, QualityReport, QualityState, quality_anomalies
from xueliang.inference.rules.base import RuleHit
from xueliang.inference.rules.engine import CameraRules
from xueliang.inference.rules.evidence import FrameEvidence, hit_to_anomaly
from xueliang.inference.rules.settings import QualitySettings, RuleSettings
from xueliang.inference.sources.base import FrameSource, ReadThen, reads_then

log = logging.getLogger(__name__)


class SinkError(InferenceError):
    """The sink could not take an anomaly now; the job is handed out again later."""


class JobLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


J = TypeVar("J", bound=JobLike)


class JobFeed(Protocol[J]):
    """What the workers need of the gateway's ``JobQueue``."""

    async def take(self, consumer: str, timeout_s: float) -> J | None: ...

    async def ack(self, job: J) -> None: ...


class DetectorLike(Protocol):
    async def detect(
        self, frame: Frame, *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[Detection]: ...


SourceFactory = Callable[[PatrolJob], FrameSource]
Sink = Callable[[Anomaly], Awaitable[None]]


class PatrolPipeline(Generic[J]):
    def __init__(
        self,
        jobs: JobFeed[J],
        source_factory: SourceFactory,
        detector: DetectorLike,
        sink: Sink,
        settings: PipelineSettings | None = None,
        *,
        quality: QualitySettings | None = None,
        rules: RuleSettings | None = None,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        """``executor``: where the quality checks (and evidence encoding) run; ``None``: a pool of
        ``settings.cpu_threads`` of the pipeline's own. A small node passes ``Detector.executor``
        (see there); a borrowed executor is never shut down here."""
        self._jobs = jobs
        self._source_factory = source_factory
        self._detector = detector
        self._sink = sink
        self._s = settings or PipelineSettings()
        self._quality = QualityChecker(quality)
        self._rule_settings = rules or RuleSettings()
        self._consumer = consumer or self._s.consumer
        self._clock = clock
        self._cameras: LruMap[CameraState] = LruMap(self._s.max_cameras)
        self._executor: Executor | None = executor
        self._own_executor = executor is None
        self._state = PipelineState.CREATED
        self._stop = asyncio.Event()
        self._stats = PipelineStats(PipelineState.CREATED, workers=self._s.workers)
        self._latency = Window(self._s.latency_window)
        self._job_time = Window(self._s.latency_window)
        self._wait = Window(self._s.latency_window)
        self._rate = Rate(self._s.latency_window)

    @property
    def state(self) -> PipelineState:
        return self._state

    def stats(self) -> PipelineStats:
        st = self._stats
        return PipelineStats(
            state=self._state,
            workers=self._s.workers,
            busy=st.busy,
            jobs=st.jobs,
            frames=st.frames,
            anomalies=st.anomalies,
            frames_per_s=round(self._rate.per_second(), 3),
            latency_p50_ms=round(self._latency.percentile(50) * 1e3, 3),
            latency_p99_ms=round(self._latency.percentile(99) * 1e3, 3),
            job_p50_ms=round(self._job_time.percentile(50) * 1e3, 3),
            job_p99_ms=round(self._job_time.percentile(99) * 1e3, 3),
            wait_p50_s=round(self._wait.percentile(50), 3),
            wait_p99_s=round(self._wait.percentile(99), 3),
            skipped_detection=st.skipped_detection,
            unreachable=st.unreachable,
            cameras=len(self._cameras),
            evicted=self._cameras.evicted,
            failures=dict(st.failures),
        )

    def camera_state(self, camera_id: str) -> CameraState | None:
        return self._cameras.get(camera_id)

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until ``stop()``; each finishes its current visit first."""
        if self._state is not PipelineState.CREATED:
            raise RuntimeError(f"patrol pipeline cannot run from state {self._state}")
        self._state = PipelineState.RUNNING
        # OpenCV's own pool would add threads to cores the executors keep busy: on a 2-core node it
        # cost 0.2 ms a frame, and preempted the detector (``benchmarks/pipeline.py``)
        cv2.setNumThreads(self._s.opencv_threads)
        log.info("patrol: %d workers running as %s", self._s.workers, self._consumer)
        try:
            async with asyncio.TaskGroup() as tg:
                for index in range(self._s.workers):
                    tg.create_task(self._worker(f"{self._consumer}-{index}"), name=f"patrol-worker-{index}")
        finally:
            self._state = PipelineState.STOPPED
            if self._executor is not None and self._own_executor:
                await asyncio.to_thread(self._executor.shutdown, wait=True)
                self._executor = None
            log.info("patrol: workers stopped after %d jobs", self._stats.jobs)

    def stop(self) -> None:
        if self._state is PipelineState.RUNNING:
            self._state = PipelineState.STOPPING
        self._stop.set()

    async def _worker(self, consumer: str) -> None:
        while not self._stop.is_set():
            job = await self._jobs.take(consumer, self._s.take_timeout_s)
            if job is None:
                continue
            self._stats.jobs += 1
            self._stats.busy += 1
            try:
                if await self._handle(job):
                    await self._jobs.ack(job)
            finally:
                self._stats.busy -= 1

    async def _handle(self, job: J) -> bool:
        """Process one queued job; True when it should be acknowledged."""
        try:
            visit = PatrolJob.model_validate(dict(job.payload))
        except ValidationError as exc:
            self._fail("bad_job")
            # field paths and reasons only: the input may hold credentials
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            log.warning("patrol: job %s is not a patrol job, dropped: %s", job.id, problems)
            return True
        self._wait.add(max(0.0, self._clock() - visit.due_at))
        started = time.monotonic()
        try:
            await self.process(visit)
        except SinkError as exc:
            self._fail("sink")
            log.warning("camera %s: anomalies not accepted, the job will come back: %s", visit.camera_id, exc)
            return False
        except Exception:  # isolation boundary: one camera's bug must not stop the patrol
            self._fail("internal")
            log.exception("camera %s: visit failed unexpectedly", visit.camera_id)
        finally:
            self._job_time.add(time.monotonic() - started)
        return True

    # -- one visit -------------------------------------------------------------------------

    async def process(self, job: PatrolJob) -> list[Anomaly]:
        """Visit one camera: grab, check, detect, apply rules, send the anomalies; returns them."""
        state = self._cameras.get_or_create(job.camera_id, lambda: self._new_state(job.camera_id))
        async with state.lock:
            grabbed = await self._grab(job, state)
            if grabbed is None:
                return await self._unreachable(job, state)
            frame, report = grabbed
            started = time.monotonic()
            anomalies = await self._analyse(job, frame, report, state)
            for anomaly in anomalies:
                await self._sink(anomaly)
            self._stats.frames += 1
            self._stats.anomalies += len(anomalies)
            self._latency.add(time.monotonic() - started)
            self._rate.tick(time.monotonic())
            return anomalies

    def _new_state(self, camera_id: str) -> CameraState:
        return CameraState(QualityState(), CameraRules(camera_id, self._rule_settings))

    async def _grab(self, job: PatrolJob, state: CameraState) -> tuple[Frame, QualityReport | None] | None:
        """The frame, and its quality report when the source could run the checks right after
        decoding it (``ReadThen``: snapshots); None when no frame came."""
        source: FrameSource | None = None
        report: QualityReport | None = None
        try:
            source = self._source_factory(job)
            async with asyncio.timeout(self._s.grab_timeout_s):  # no extra task per visit, unlike wait_for
                if reads_then(type(source)):
                    checks = state.quality
                    reader = cast(ReadThen, source)
                    frame, report = await reader.read_then(lambda f: self._quality.check(f, checks))
                else:
                    frame = await source.read()
        except (SourceError, CorruptFrame, TimeoutError) as exc:
            state.failures += 1
            kind = "source_timeout" if isinstance(exc, TimeoutError) else _kind(exc)
            self._fail(kind)
            state_error = str(exc) or f"no frame within {self._s.grab_timeout_s:g} s"
            log.info("camera %s: no frame (%s, %d in a row): %s", job.camera_id, kind, state.failures, state_error)
            state.last_error = (kind, state_error[:500], isinstance(exc, SourceAuthFailed))
            return None
        finally:
            if source is not None:
                await source.close()
        if state.failures:
            log.info("camera %s: frames again after %d failed visit(s)", job.camera_id, state.failures)
        state.failures = 0
        return frame, report

    async def _unreachable(self, job: PatrolJob, state: CameraState) -> list[Anomaly]:
        if state.failures < self._s.unreachable_after:
            return []
        kind, message, auth = state.last_error
        anomaly = Anomaly(
            camera_id=job.camera_id,
            rule="camera.auth_failed" if auth else "camera.unreachable",
            value=float(state.failures),
            threshold=float(self._s.unreachable_after),
            detail={"error": kind, "message": message},
            source="camera",
        )
        await self._sink(anomaly)
        self._stats.unreachable += 1
        self._stats.anomalies += 1
        return [anomaly]

    async def _analyse(
        self, job: PatrolJob, frame: Frame, report: QualityReport | None, state: CameraState
    ) -> list[Anomaly]:
        loop = asyncio.get_running_loop()
        executor = self._cpu()
        if report is None:
            report = await loop.run_in_executor(executor, self._quality.check, frame, state.quality)
        detections: list[Detection] | None = []
        if report.blocks_detection:
            self._stats.skipped_detection += 1
        elif job.zones:
            classes = frozenset(job.classes) if job.classes is not None else None
            try:
                detections = await self._detector.detect(frame, classes=classes, min_score=job.min_score)
            except DetectorError as exc:
                self._fail(_kind(exc))
                log.warning("camera %s: detection failed, rules skipped: %s", job.camera_id, exc)
                detections = None
            except ValueError as exc:  # the detector refuses a class filter it does not know
                self._fail("bad_classes")
                log.warning("camera %s: class filter %s refused, rules skipped: %s", job.camera_id, job.classes, exc)
                detections = None
        # the zone rules: a few boxes against a few polygons (~40 us for 12 people, 2 zones), cheaper than a hop
        hits = state.rules.evaluate(frame, detections, job.zones) if detections is not None else []
        if not hits and not report.faults:
            return []
        if frame.jpeg is None:  # the evidence JPEG must be encoded (file and RTSP frames): off the loop
            return await loop.run_in_executor(executor, self._anomalies, frame, report, hits)
        return self._anomalies(frame, report, hits)  # the camera's own JPEG is the evidence

    def _anomalies(self, frame: Frame, report: QualityReport, hits: Sequence[RuleHit]) -> list[Anomaly]:
        """The anomalies of one visit, all sharing one evidence JPEG (encoded here when the frame has none)."""
        rs = self._rule_settings
        evidence = FrameEvidence(frame, jpeg_quality=rs.jpeg_quality, max_boxes=rs.max_boxes)
        anomalies = quality_anomalies(report, frame, evidence)
        anomalies += (hit_to_anomaly(hit, frame, evidence, mode="patrol") for hit in hits)
        return anomalies

    def _cpu(self) -> Executor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._s.cpu_threads, thread_name_prefix="patrol-cpu")
        return self._executor

    def _fail(self, kind: str) -> None:
        self._stats.failures[kind] = self._stats.failures.get(kind, 0) + 1


def _kind(exc: BaseException) -> str:
    """Failure kind from an exception class: SourceTimeout -> source_timeout."""
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
