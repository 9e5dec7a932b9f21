"""The patrol inside a node: the scheduler reads the registry and queues visits, the workers grab
frames (ONVIF snapshots, RTSP for watch mode), check quality, detect and apply the rules, and put
anomalies on the bus for the case side; detections also go to the live feed for the wall overlays.

Credentials never travel in job payloads: the scheduler's targets carry none, and the source
factory decrypts the camera's password from this node's registry cache when it opens a source.
When the configured model file is missing the patrol says which model it needs and where to set
it, and runs with the video quality checks only.

A job queue that cannot be reached (Redis down or restarting) stops nothing: the workers look again
at growing intervals (``PatrolJobs``), a scheduler whose put failed is started again, the watch
sessions go on; one warning says so, one line says when the queue answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from xueliang.connectors.onvif.policy import guarded_socket_factory
from xueliang.gateway.cameras.errors import CameraAddressError
from xueliang.gateway.cameras.export import all_cameras
from xueliang.gateway.casework import CaseWork
from xueliang.gateway.errors import GatewayError, StoreError
from xueliang.gateway.leadership import Role, lead
from xueliang.gateway.models import CameraRecord, CameraStatus
from xueliang.gateway.node import Node
from xueliang.gateway.outage import OutageLog
from xueliang.gateway.stores.base import Job, JobQueue, QueueStats
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.detector import Detector
from xueliang.inference.errors import SourceUnavailable
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.patrol.models import PatrolJob, PatrolTarget
from xueliang.inference.patrol.scheduler import PatrolScheduler, SchedulerState, TargetsUnavailable
from xueliang.inference.patrol.settings import AnalyticsSettings
from xueliang.inference.patrol.watch import WatchManager
from xueliang.inference.pipeline import PatrolPipeline, SinkError
from xueliang.inference.settings import DetectorSettings, SourceSettings
from xueliang.inference.sources.base import FrameSource
from xueliang.inference.sources.rtsp import RtspSource
from xueliang.inference.sources.snapshot import SnapshotClient

log = logging.getLogger(__name__)

PATROLLED = frozenset({CameraStatus.ONLINE, CameraStatus.DEGRADED, CameraStatus.OFFLINE})


class QualityOnly:
    """Stands in for the detector when no model is configured: no detections, quality checks run."""

    async def detect(
        self, frame: Frame, *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[Detection]:
        del frame, classes, min_score
        return []


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


class LiveDetector:
    """Wraps the detector: every result is also published to the live feed (wall overlays)."""

    def __init__(self, inner: Detector | QualityOnly, node: Node) -> None:
        self.inner = inner
        self.node = node

    async def detect(
        self, frame: Frame, *, classes: frozenset[str] | None = None, min_score: float | None = None
    ) -> list[Detection]:
        detections = await self.inner.detect(frame, classes=classes, min_score=min_score)
        height, width = frame.image.shape[:2]
        boxes = [
            {"x1": d.x1, "y1": d.y1, "x2": d.x2, "y2": d.y2, "label": d.label, "score": round(d.score, 3)}
            for d in detections
        ]
        data = {"width": width, "height": height, "boxes": boxes, "ts": frame.captured_at}
        self.node.live.publish("detections", frame.camera_id, data)
        return detections


class PatrolJobs:
    """The node's job queue as the patrol sees it, through a store outage.

    ``take`` that fails returns None (the workers' "nothing yet"), and until the next retry (``OutageLog``:
    0.5 s growing to 10 s) each ``take`` waits out at most its own ``timeout_s`` without calling the
    store, so a stopping pipeline is noticed as fast as when the queue is idle; a failed ``ack`` is
    dropped (the queue hands the job out again after its visibility timeout: the visit is repeated);
    ``put`` and ``stats`` (the scheduler's) raise, after logging. One outage log for all callers."""

    def __init__(self, queue: JobQueue, node_name: str) -> None:
        self.queue = queue
        self.outage = OutageLog(
            log,
            "patrol",
            store="the job queue",
            meanwhile="the workers and the scheduler retry at growing intervals (up to 10 s) until it answers; "
            "a job whose acknowledgement failed is handed out again after the queue's visibility timeout "
            "(storage.job_visibility_s) and visited again",
            extra={"node": node_name},
        )
        self._retry_at = 0.0  # monotonic time the store is called again after a failure

    def _failed(self, reason: str) -> None:
        self.outage.failed(f"job queue unavailable: {reason}")
        self._retry_at = time.monotonic() + self.outage.retry_in_s()

    def retry_in_s(self) -> float:
        return max(0.0, self._retry_at - time.monotonic())

    async def take(self, consumer: str, timeout_s: float) -> Job | None:
        if self.outage.failing and (wait := self.retry_in_s()) > 0:
            await asyncio.sleep(min(wait, timeout_s))
            return None
        try:
            job = await self.queue.take(consumer, timeout_s)
        except StoreError as exc:
            self._failed(str(exc))
            return None
        self.outage.answered()
        return job

    async def ack(self, job: Job) -> None:
        try:
            await self.queue.ack(job)
        except StoreError as exc:
            self._failed(f"camera {job.key}: job {job.id} not acknowledged (handed out again later): {exc}")
            return
        self.outage.answered()

    async def put(self, key: str, payload: dict[str, Any]) -> bool:
        try:
            queued = await self.queue.put(key, payload)
        except StoreError as exc:
            self._failed(str(exc))
            raise
        self.outage.answered()
        return queued

    async def stats(self) -> QueueStats:
        try:
            return await self.queue.stats()
        except StoreError as exc:
            self._failed(str(exc))
            raise


def with_credentials(url: str, login: Login | None) -> str:
    """An RTSP URL carrying the camera's credentials (how RTSP clients take them)."""
    if login is None or not login.username:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # the RTSP source refuses it on read, saying why
        return url
    address = parts.netloc.rpartition("@")[2]  # host and port as written (IPv6 brackets kept)
    netloc = f"{quote(login.username, safe='')}:{quote(login.password, safe='')}@{address}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_for(camera: CameraRecord) -> PatrolTarget:
    profile = next((p for p in camera.profiles if p.token == camera.analysis_profile), None)
    return PatrolTarget(
        camera_id=camera.id,
        priority=camera.policy.priority,
        category=camera.category,
        interval_s=camera.policy.interval_s,
        enabled=camera.policy.enabled and camera.status in PATROLLED,
        watch=camera.policy.watch,
        snapshot_url=profile.snapshot_uri if profile else "",
        stream_url=profile.stream_uri if profile else "",
        profile=camera.analysis_profile,
        classes=tuple(camera.policy.classes) if camera.policy.classes is not None else None,
        min_score=camera.policy.min_score,
        zones=tuple(camera.zones),
    )


class Patrol:
    """Owns the detector, scheduler, workers and watch sessions of one node."""

    def __init__(
        self,
        node: Node,
        cases: CaseWork,
        detector: DetectorSettings,
        sources: SourceSettings,
        analytics: AnalyticsSettings,
    ) -> None:
        self.node = node
        self.cases = cases
        self.detector_settings = detector
        self.source_settings = sources
        self.analytics = analytics
        self.detector: Detector | QualityOnly = QualityOnly()
        self.snapshots: SnapshotClient | None = None
        self._logins: dict[str, Login] = {}
        self.guard = node.guard
        self._warned: set[str] = set()
        self.scheduler_role = Role("patrol-scheduler")
        self._latest: tuple[float, list[PatrolTarget]] | None = None  # (monotonic time, targets)
        self._plain: dict[str, str | GatewayError] = {}  # ciphertext -> password (this node's memory only)
        self._executor = ThreadPoolExecutor(max_workers=analytics.pipeline.cpu_threads, thread_name_prefix="watch")
        self._live = LiveDetector(self.detector, node)
        self._runs = 0
        self.jobs = PatrolJobs(node.stores.jobs, node.name)
        self._build_parts()

    def _new_scheduler(self) -> PatrolScheduler:
        return PatrolScheduler(self.jobs, self.targets, self.analytics.scheduler)

    def _build_parts(self) -> None:
        """The scheduler, the workers and the watch manager. Each runs once: a restart gets new ones."""
        node, analytics = self.node, self.analytics
        self.scheduler = self._new_scheduler()
        self.pipeline: PatrolPipeline[Job] = PatrolPipeline(
            self.jobs,
            self.source_for_job,
            self._live,
            self.sink,
            analytics.pipeline,
            quality=analytics.quality,
            rules=analytics.rules,
            consumer=node.name,
            executor=self._shared_executor(),
        )
        self.watch = WatchManager(
            self.source_for_target,
            self._live,
            self.sink,
            executor=self._executor,
            settings=analytics.watch,
            rules=analytics.rules,
        )

    async def start(self) -> None:
        model = self.detector_settings.model_path
        if model.is_file():
            detector = Detector(self.detector_settings)
            await detector.start()
            self.detector = detector
            size = detector.engine.adapter.input_size
            log.info("patrol: detector %s ready (input %sx%s)", model, *size)
        else:
            size = None
            log.warning(
                "patrol: no detector model at %s: running the video quality checks only. Put the model there "
                "(e.g. yolox_nano.onnx from the YOLOX release) or set detector.model_path / "
                "XUELIANG_DETECTOR__MODEL_PATH",
                model,
            )
        self._live.inner = self.detector
        # On a small node JPEG decode and quality checks run on the detector's session threads: one
        # hand-off less per frame (benchmarks/pipeline.py: 0.86 of the hardware limit on 2 cores; the
        # detection in that same hand-off too measured no better, see there).
        self.snapshots = SnapshotClient(
            self.source_settings,
            target_size=size,
            executor=self._shared_executor(),
            socket_factory=guarded_socket_factory(self.node.guard),  # a name resolving outside is refused too
        )
        self._build_parts()
        self.node.metrics.add_sampler("patrol", self._sample)

    def _shared_executor(self) -> Executor | None:
        return self.detector.executor if isinstance(self.detector, Detector) else None

    async def run(self) -> None:
        """The node service ``patrol``. A failure propagates to the node's supervisor, which runs this
        again: with new scheduler, workers and watch manager, the same detector and sources; only the
        node stopping (cancellation) closes those."""
        if self._runs:
            self._build_parts()
        self._runs += 1
        try:
            async with asyncio.TaskGroup() as group:
                if self.node.settings.node.mode == "scaleout":  # one scheduler for all nodes
                    group.create_task(lead(self.node, self.scheduler_role, self._schedule), name="patrol-scheduler")
                else:
                    group.create_task(self._schedule(), name="patrol-scheduler")
                group.create_task(self.pipeline.run(), name="patrol-workers")
                group.create_task(self.watch.run(), name="watch-sessions")
                group.create_task(self._follow_watch(), name="watch-follow")
        except asyncio.CancelledError:
            await self.close()
            raise

    async def _schedule(self) -> None:
        """Run the scheduler (in scale-out: each time this node takes the role). A scheduler runs once,
        so each start gets a new one; one stopped by the job queue failing (logged by ``PatrolJobs``)
        is started again once the queue is due to be tried again."""
        while True:
            if self.scheduler.state is not SchedulerState.CREATED:
                self.scheduler = self._new_scheduler()
            try:
                await self.scheduler.run()
                return
            except StoreError:
                await asyncio.sleep(max(self.jobs.retry_in_s(), self.jobs.outage.first_s))

    async def close(self) -> None:
        if isinstance(self.detector, Detector):
            await self.detector.stop()
        if self.snapshots is not None:
            await self.snapshots.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def targets(self) -> list[PatrolTarget]:
        """Every camera as a patrol target (credentials kept aside, decrypted, in this node only)."""
        try:
            cameras = [camera async for camera in all_cameras(self.node.stores.cameras)]
        except StoreError as exc:
            raise TargetsUnavailable(f"camera registry unreadable: {exc}") from exc
        targets = [target_for(camera) for camera in cameras]
        refused = await self._refused_hosts(targets)
        if refused:
            targets = [self._without(t, refused) for t in targets]
        self._logins = await self._decrypt_logins(cameras)
        self._latest = (time.monotonic(), targets)
        return targets

    async def recent_targets(self, max_age_s: float) -> list[PatrolTarget]:
        """The targets of the last registry read if younger than ``max_age_s`` (the scheduler's
        refresh), else a fresh read: the watch follower and the scheduler share one read per refresh."""
        if self._latest is not None and time.monotonic() - self._latest[0] < max_age_s:
            return self._latest[1]
        return await self.targets()

    async def _decrypt_logins(self, cameras: list[CameraRecord]) -> dict[str, Login]:
        """Credentials by camera id. Only ciphertexts not seen before are decrypted, in a worker
        thread (a city's worth of Fernet decrypts would hold the event loop for a noticeable time)."""
        wanted = {c.password_enc for c in cameras}
        fresh = wanted - self._plain.keys()

        def decrypt_all() -> dict[str, str | GatewayError]:
            out: dict[str, str | GatewayError] = {}
            for token in fresh:
                try:
                    out[token] = self.node.cipher.decrypt(token)
                except GatewayError as exc:
                    out[token] = exc
            return out

        decrypted = await asyncio.to_thread(decrypt_all) if fresh else {}
        known = {**self._plain, **decrypted}
        self._plain = known = {token: known[token] for token in wanted}  # removed cameras' passwords go
        logins = {}
        for camera in cameras:
            plain = known[camera.password_enc]
            if isinstance(plain, GatewayError):
                if camera.id not in self._warned:
                    self._warned.add(camera.id)
                    log.warning("camera %s: %s", camera.id, plain, extra={"camera_id": camera.id})
                continue
            logins[camera.id] = Login(camera.username, plain)
        return logins

    async def _refused_hosts(self, targets: list[PatrolTarget]) -> set[str]:
        """Hosts of snapshot/stream URIs outside ``security.allowed_networks`` (a camera may report
        URIs pointing anywhere): the patrol never connects to them."""
        hosts = {urlsplit(url).hostname or "" for t in targets for url in (t.snapshot_url, t.stream_url) if url}
        refused = set()
        for host in hosts:
            try:
                await self.guard.check(host)
            except CameraAddressError as exc:
                refused.add(host)
                if host not in self._warned:
                    self._warned.add(host)
                    log.warning("patrol: not connecting to %s: %s", host, exc)
        return refused

    @staticmethod
    def _without(target: PatrolTarget, refused: set[str]) -> PatrolTarget:
        def allowed(url: str) -> str:
            return "" if (urlsplit(url).hostname or "") in refused else url

        snapshot, stream = allowed(target.snapshot_url), allowed(target.stream_url)
        if (snapshot, stream) == (target.snapshot_url, target.stream_url):
            return target
        return target.model_copy(
            update={
                "snapshot_url": snapshot,
                "stream_url": stream,
                "enabled": target.enabled and bool(snapshot or stream),
            }
        )

    def _login(self, camera_id: str) -> Login | None:
        return self._logins.get(camera_id)

    def source_for_job(self, job: PatrolJob) -> FrameSource:
        login = self._login(job.camera_id)
        if job.snapshot_url and self.snapshots is not None:
            return self.snapshots.source(
                job.camera_id,
                job.snapshot_url,
                username=login.username if login else None,
                password=login.password if login else None,
            )
        if job.stream_url:
            return RtspSource(job.camera_id, with_credentials(job.stream_url, login), self.source_settings)
        raise SourceUnavailable(
            f"camera {job.camera_id} has neither a snapshot nor a stream URI: re-probe it", camera_id=job.camera_id
        )

    def source_for_target(self, target: PatrolTarget) -> FrameSource:
        login = self._login(target.camera_id)
        url = with_credentials(target.stream_url, login)
        return RtspSource(target.camera_id, url, self.source_settings, max_fps=self.analytics.watch.fps)

    async def sink(self, anomaly: Anomaly) -> None:
        try:
            await self.cases.publish(anomaly)
        except StoreError as exc:
            raise SinkError(f"camera {anomaly.camera_id}: the bus refused the anomaly: {exc}") from exc

    async def _follow_watch(self) -> None:
        refresh = self.analytics.scheduler.refresh_s
        outage = OutageLog(
            log,
            "watch mode",
            store="the camera registry",
            meanwhile="keeping the current sessions until it answers",
            extra={"node": self.node.name},
        )
        while True:
            try:
                self.watch.update(await self.recent_targets(refresh))
            except TargetsUnavailable as exc:
                outage.failed(str(exc))
            else:
                outage.answered()
            await asyncio.sleep(refresh)

    async def _sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        sched = self.scheduler.stats()
        for key in ("cameras", "pending", "enqueued", "refused", "coalesced"):
            values[f"scheduler_{key}"] = float(getattr(sched, key))
        values["scheduler_lag_seconds"] = sched.lag_s  # Prometheus names carry base units: seconds
        pipe = self.pipeline.stats()
        for key in ("frames", "anomalies", "busy"):
            values[f"pipeline_{key}"] = float(getattr(pipe, key))
        values |= {
            "pipeline_frames_per_second": pipe.frames_per_s,
            "pipeline_latency_p50_seconds": pipe.latency_p50_ms / 1e3,
            "pipeline_latency_p99_seconds": pipe.latency_p99_ms / 1e3,
            "pipeline_wait_p99_seconds": pipe.wait_p99_s,
        }
        for kind, count in pipe.failures.items():
            values[f"pipeline_failures_{kind}"] = float(count)
        if isinstance(self.detector, Detector):
            det = self.detector.stats()
            values |= {
                "detector_frames": det.frames,
                "detector_batches": det.batches,
                "detector_drops": det.drops,
                "detector_queue_depth": det.queue_depth,
                "detector_inference_p50_seconds": det.inference_ms.p50 / 1e3,
                "detector_inference_p99_seconds": det.inference_ms.p99 / 1e3,
            }
            for size, count in det.batch_sizes.items():
                values[f"detector_batch_size_{size}"] = float(count)
        jobs = await self.node.stores.jobs.stats()
        values |= {"jobs_depth": jobs.depth, "jobs_in_flight": jobs.in_flight, "jobs_refused": jobs.refused}
        values["sampled_timestamp_seconds"] = time.time()
        return values
