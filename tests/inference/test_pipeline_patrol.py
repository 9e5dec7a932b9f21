"""The patrol pipeline end to end: the gateway's in-process job queue, real snapshot sources
against a real HTTP server on loopback serving real frames, the real detector (yolox_nano)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.inference.logic_fixtures import (
    GRASS,
    T0,
    VTEST,
    WALKWAY,
    FakeClock,
    black,
    clip_image,
    covered,
    jpeg,
    zone,
)
from xueliang.gateway.stores.sqlite.jobs import LocalJobQueue
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.detector import Detector
from xueliang.inference.frames import Frame
from xueliang.inference.patrol.models import Credentials, PatrolJob, PatrolTarget
from xueliang.inference.patrol.scheduler import PatrolScheduler
from xueliang.inference.patrol.settings import PipelineSettings
from xueliang.inference.patrol.stats import PipelineState
from xueliang.inference.pipeline import PatrolPipeline, SinkError
from xueliang.inference.rules import evidence as evidence_module
from xueliang.inference.rules.engine import CameraRules
from xueliang.inference.rules.evidence import FrameEvidence
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources import FileSource, SnapshotClient
from xueliang.inference.sources.base import FrameSource, SourceCounters, SourceState, SourceStats
from xueliang.inference.zones import Zone, ZoneKind


@functools.cache
def picture(name: str) -> bytes:
    """What the test camera serves: frame 100 of vtest.avi as it is, black, or covered."""
    craft = {"walk": lambda image: image, "black": black, "covered": covered}[name]
    return jpeg(craft(clip_image(100)))


class Camera:
    """A real HTTP server standing in for the cameras' snapshot URIs."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.release = asyncio.Event()
        self.port = 0

    async def snap(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name == "auth":
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cam"'})
        if name == "hang":
            await self.release.wait()
        if name == "flaky" and self.hits[name] % 2:  # every other answer breaks off half way
            whole = picture("walk")
            return web.Response(body=whole[: len(whole) // 2], content_type="image/jpeg")
        return web.Response(body=picture("walk" if name in ("hang", "flaky") else name), content_type="image/jpeg")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/snap/{name}"


@pytest.fixture
async def camera() -> AsyncIterator[Camera]:
    cam = Camera()
    app = web.Application()
    app.router.add_get("/snap/{name}", cam.snap)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cam.port = runner.addresses[0][1]
    yield cam
    cam.release.set()
    await runner.cleanup()


@pytest.fixture
async def snapshots() -> AsyncIterator[SnapshotClient]:
    async with SnapshotClient(SourceSettings(snapshot_timeout_s=3.0, snapshot_connect_timeout_s=1.0)) as client:
        yield client


class Sink:
    def __init__(self, fail_first: int = 0) -> None:
        self.anomalies: list[Anomaly] = []
        self.fail_first = fail_first

    async def __call__(self, anomaly: Anomaly) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise SinkError("bus unavailable (test)")
        self.anomalies.append(anomaly)


def factory(client: SnapshotClient) -> Callable[[PatrolJob], FrameSource]:
    def make(job: PatrolJob) -> FrameSource:
        creds = job.credentials
        return client.source(
            job.camera_id,
            job.snapshot_url,
            username=creds.username or None,
            password=creds.password.get_secret_value(),
            auth="basic",
        )

    return make


def job(camera_id: str, url: str, zones: tuple[Zone, ...] = (), **kw: Any) -> PatrolJob:
    return PatrolJob(
        camera_id=camera_id,
        due_at=1_700_000_000.0,
        queued_at=1_700_000_000.0,
        interval_s=60.0,
        priority=1,
        snapshot_url=url,
        zones=zones,
        **kw,
    )


async def wait_for(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not predicate():
            await asyncio.sleep(0.01)


async def run_until(pipeline: PatrolPipeline[Any], predicate: Callable[[], bool]) -> None:
    """Run the pipeline's workers until ``predicate`` holds, then stop them and wait for the end."""
    task = asyncio.create_task(pipeline.run())
    try:
        await wait_for(predicate)
    finally:
        pipeline.stop()
        await task


def workers_on_a_queue(
    client: SnapshotClient, detector: Detector, workers: int
) -> tuple[LocalJobQueue, Sink, PatrolPipeline[Any]]:
    """The gateway's in-process job queue, a sink, and ``workers`` patrol workers between them."""
    queue = LocalJobQueue(capacity=10, visibility_s=60)
    sink = Sink()
    settings = PipelineSettings(workers=workers, take_timeout_s=0.05)
    return queue, sink, PatrolPipeline(queue, factory(client), detector, sink, settings)


async def test_a_queued_job_becomes_an_anomaly_with_evidence(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    queue, sink, pipeline = workers_on_a_queue(snapshots, detector, workers=2)
    walkway = zone(ZoneKind.INTRUSION, WALKWAY)
    assert await queue.put("walk-1", job("walk-1", camera.url("walk"), (walkway,)).model_dump(mode="json"))
    await run_until(pipeline, lambda: pipeline.stats().frames == 1)
    assert pipeline.state is PipelineState.STOPPED
    [anomaly] = sink.anomalies
    assert anomaly.camera_id == "walk-1" and anomaly.rule == "intrusion" and anomaly.zone == walkway.id
    assert anomaly.value == 5.0 and anomaly.threshold == 1.0
    assert anomaly.evidence is not None and anomaly.evidence.jpeg == picture("walk")  # the camera's own JPEG
    assert (anomaly.evidence.width, anomaly.evidence.height) == (768, 576)
    assert len(anomaly.evidence.boxes) == 5
    decoded = cv2.imdecode(np.frombuffer(anomaly.evidence.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (576, 768, 3)
    queued = await queue.stats()
    assert queued.depth == 0 and queued.in_flight == 0  # taken and acknowledged
    stats = pipeline.stats()
    assert stats.jobs == 1 and stats.anomalies == 1 and stats.failures == {}
    assert stats.latency_p50_ms > 0 and stats.wait_p50_s > 0


async def test_a_black_picture_is_reported_and_not_detected_on(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    sink = Sink()
    pipeline = PatrolPipeline(LocalJobQueue(1, 60), factory(snapshots), detector, sink)
    before = detector.stats()
    anomalies = await pipeline.process(job("dark-1", camera.url("black"), (zone(ZoneKind.INTRUSION, WALKWAY),)))
    assert [a.rule for a in anomalies] == ["quality.black"]
    assert sink.anomalies == anomalies
    assert pipeline.stats().skipped_detection == 1
    assert detector.stats() == before  # the detector never saw it
    covered_anomalies = await pipeline.process(job("bag-1", camera.url("covered"), (zone(ZoneKind.CROWD, GRASS),)))
    assert [a.rule for a in covered_anomalies] == ["quality.occluded"]


async def test_rules_quiet_on_a_normal_frame(camera: Camera, snapshots: SnapshotClient, detector: Detector) -> None:
    pipeline = PatrolPipeline(LocalJobQueue(1, 60), factory(snapshots), detector, Sink())
    zones = (zone(ZoneKind.INTRUSION, GRASS), zone(ZoneKind.CROWD, WALKWAY, min_count=8, id="crowd"))
    assert await pipeline.process(job("walk-2", camera.url("walk"), zones)) == []
    assert pipeline.stats().frames == 1


async def test_an_unreachable_camera_is_reported_after_three_failed_visits(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    sink = Sink()
    pipeline = PatrolPipeline(LocalJobQueue(1, 60), factory(snapshots), detector, sink)
    gone = job("gone-1", f"http://127.0.0.1:{free_port()}/snap")
    assert await pipeline.process(gone) == []
    assert await pipeline.process(gone) == []
    [third] = await pipeline.process(gone)
    assert third.rule == "camera.unreachable" and third.source == "camera"
    assert third.value == 3.0 and third.threshold == 3.0
    assert third.detail["error"] == "source_unavailable" and "gone-1" in str(third.detail["message"])
    assert [a.rule for a in await pipeline.process(gone)] == ["camera.unreachable"]  # while it lasts
    assert pipeline.stats().failures == {"source_unavailable": 4}
    # the camera comes back: the run of failures is over
    back = job("gone-1", camera.url("walk"))
    assert await pipeline.process(back) == []
    state = pipeline.camera_state("gone-1")
    assert state is not None and state.failures == 0


async def test_refused_credentials_are_named(camera: Camera, snapshots: SnapshotClient, detector: Detector) -> None:
    pipeline = PatrolPipeline(
        LocalJobQueue(1, 60), factory(snapshots), detector, Sink(), PipelineSettings(unreachable_after=2)
    )
    locked = job("locked-1", camera.url("auth"), credentials=Credentials(username="admin", password="wrong"))
    assert await pipeline.process(locked) == []
    [anomaly] = await pipeline.process(locked)
    assert anomaly.rule == "camera.auth_failed" and anomaly.value == 2.0
    assert "wrong" not in anomaly.model_dump_json()  # the password never leaves in an anomaly


async def test_a_sink_that_refuses_gets_the_job_again(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    queue = LocalJobQueue(capacity=10, visibility_s=0.3)
    sink = Sink(fail_first=1)
    pipeline = PatrolPipeline(
        queue, factory(snapshots), detector, sink, PipelineSettings(workers=1, take_timeout_s=0.05)
    )
    await queue.put("bag-2", job("bag-2", camera.url("covered")).model_dump(mode="json"))
    await run_until(pipeline, lambda: len(sink.anomalies) == 1 and pipeline.stats().busy == 0)
    assert [a.rule for a in sink.anomalies] == ["quality.occluded"]
    assert camera.hits["covered"] == 2  # visited again after the visibility timeout
    assert pipeline.stats().failures == {"sink": 1}
    assert (await queue.stats()).in_flight == 0


async def test_a_bad_job_is_dropped_and_the_worker_goes_on(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    queue, sink, pipeline = workers_on_a_queue(snapshots, detector, workers=1)
    await queue.put("junk", {"camera_id": "junk", "due_at": "yesterday"})
    await queue.put("bag-3", job("bag-3", camera.url("covered")).model_dump(mode="json"))
    await run_until(pipeline, lambda: pipeline.stats().jobs == 2 and pipeline.stats().busy == 0)
    assert pipeline.stats().failures == {"bad_job": 1}
    assert [a.rule for a in sink.anomalies] == ["quality.occluded"]
    assert (await queue.stats()).in_flight == 0


async def test_a_truncated_snapshot_is_counted_and_the_next_visit_still_finds_its_anomaly(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    queue, sink, pipeline = workers_on_a_queue(snapshots, detector, workers=1)
    visit = job("flaky-1", camera.url("flaky"), (zone(ZoneKind.INTRUSION, WALKWAY),)).model_dump(mode="json")
    task = asyncio.create_task(pipeline.run())
    try:
        assert await queue.put("flaky-1", visit)  # the camera's answer breaks off half way
        await wait_for(lambda: pipeline.stats().jobs == 1 and pipeline.stats().busy == 0)
        assert sink.anomalies == [] and pipeline.stats().frames == 0
        assert pipeline.stats().failures == {"corrupt_frame": 1}
        state = pipeline.camera_state("flaky-1")
        assert state is not None and state.failures == 1
        kind, message, auth = state.last_error
        assert kind == "corrupt_frame" and "truncated JPEG" in message and "flaky-1" in message and not auth
        assert await queue.put("flaky-1", visit)  # the next visit: a whole picture
        await wait_for(lambda: pipeline.stats().jobs == 2 and pipeline.stats().busy == 0)
    finally:
        pipeline.stop()
        await task
    [anomaly] = sink.anomalies
    assert anomaly.camera_id == "flaky-1" and anomaly.rule == "intrusion" and anomaly.value == 5.0
    assert anomaly.evidence is not None and anomaly.evidence.jpeg == picture("walk")
    stats = pipeline.stats()
    assert stats.frames == 1 and stats.failures == {"corrupt_frame": 1}  # counted once, not again
    assert state.failures == 0 and camera.hits["flaky"] == 2
    assert snapshots.stats().corrupt == 1 and snapshots.stats().frames == 1
    queued = await queue.stats()
    assert queued.depth == 0 and queued.in_flight == 0  # both visits acknowledged


async def test_cancelling_mid_visit_reraises_and_leaves_the_job_unacknowledged(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    queue, _, pipeline = workers_on_a_queue(snapshots, detector, workers=2)
    await queue.put("slow-1", job("slow-1", camera.url("hang")).model_dump(mode="json"))
    task = asyncio.create_task(pipeline.run())
    await wait_for(lambda: camera.hits.get("hang", 0) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipeline.state is PipelineState.STOPPED
    assert (await queue.stats()).in_flight == 1  # handed out again after its visibility timeout


async def test_camera_state_is_bounded(camera: Camera, snapshots: SnapshotClient, detector: Detector) -> None:
    pipeline = PatrolPipeline(
        LocalJobQueue(1, 60), factory(snapshots), detector, Sink(), PipelineSettings(max_cameras=2)
    )
    for name in ("a", "b", "c"):
        await pipeline.process(job(name, camera.url("walk")))
    stats = pipeline.stats()
    assert stats.cameras == 2 and stats.evicted == 1
    assert pipeline.camera_state("a") is None and pipeline.camera_state("c") is not None


async def test_from_the_scheduler_to_anomalies_with_file_sources(detector: Detector) -> None:
    """Scheduler -> the gateway's job queue -> workers reading vtest.avi -> detector -> rules -> sink."""
    walkway = zone(ZoneKind.INTRUSION, WALKWAY)
    targets = [
        PatrolTarget(camera_id=f"file-{i}", priority=1, stream_url=str(VTEST), zones=(walkway,)) for i in range(3)
    ]
    targets.append(PatrolTarget(camera_id="missing", priority=1, stream_url="/nonexistent/clip.avi"))

    async def camera_list() -> list[PatrolTarget]:
        return targets

    queue = LocalJobQueue(capacity=10, visibility_s=60)
    clock = FakeClock(T0)
    scheduler = PatrolScheduler(queue, camera_list, clock=clock)
    for _ in range(61):  # one minute: every camera comes due once
        await scheduler.tick()
        clock.t += 1
    assert scheduler.stats().enqueued == 4

    def files(job: PatrolJob) -> FrameSource:
        return FileSource(job.camera_id, Path(job.stream_url))

    sink = Sink()
    pipeline = PatrolPipeline(queue, files, detector, sink, PipelineSettings(workers=3, take_timeout_s=0.05))
    await run_until(pipeline, lambda: pipeline.stats().jobs == 4 and pipeline.stats().busy == 0)
    assert sorted(a.camera_id for a in sink.anomalies) == ["file-0", "file-1", "file-2"]
    for anomaly in sink.anomalies:
        assert anomaly.rule == "intrusion" and anomaly.value == 3.0  # three people on frame 0
        assert anomaly.evidence is not None and len(anomaly.evidence.boxes) == 3
        assert cv2.imdecode(np.frombuffer(anomaly.evidence.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (576, 768, 3)
    assert pipeline.stats().failures == {"source_unavailable": 1}  # the missing file, not reported yet
    assert (await queue.stats()).in_flight == 0


async def test_an_unknown_class_filter_skips_the_rules_not_the_quality_checks(
    camera: Camera, snapshots: SnapshotClient, detector: Detector
) -> None:
    pipeline = PatrolPipeline(LocalJobQueue(1, 60), factory(snapshots), detector, Sink())
    bad = job("odd-1", camera.url("walk"), (zone(ZoneKind.INTRUSION, WALKWAY),), classes=("unicorn",))
    assert await pipeline.process(bad) == []
    assert pipeline.stats().failures == {"bad_classes": 1} and pipeline.stats().frames == 1


class OneFrame:
    """A source without a JPEG of its own (as RTSP and file frames): frame 0 of the clip, once."""

    def __init__(self, camera_id: str) -> None:
        self._camera_id = camera_id

    @property
    def camera_id(self) -> str:
        return self._camera_id

    async def read(self) -> Frame:
        return Frame(self._camera_id, clip_image(0), T0, seq=1)

    def stats(self) -> SourceStats:
        return SourceCounters().snapshot(SourceState.READY)

    async def close(self) -> None:
        return None


async def test_evidence_is_encoded_only_when_something_fires_and_once_per_frame(
    detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[tuple[int, ...]] = []
    real_imencode = cv2.imencode

    def counting_imencode(ext: str, image: np.ndarray, params: list[int]) -> tuple[bool, np.ndarray]:
        encoded.append(image.shape)
        return real_imencode(ext, image, params)

    monkeypatch.setattr(evidence_module.cv2, "imencode", counting_imencode)
    pipeline = PatrolPipeline(LocalJobQueue(1, 60), lambda job: OneFrame(job.camera_id), detector, Sink())
    # quiet: nobody on the grass, a crowd of 8 nowhere; the frame is never encoded
    quiet = (zone(ZoneKind.INTRUSION, GRASS), zone(ZoneKind.CROWD, WALKWAY, min_count=8, id="crowd"))
    assert await pipeline.process(job("file-q", "", quiet)) == []
    assert encoded == []
    # two rules fire on one frame: one encode, both anomalies carry the same evidence picture
    firing = (zone(ZoneKind.INTRUSION, WALKWAY), zone(ZoneKind.CROWD, WALKWAY, min_count=3, id="crowd"))
    anomalies = await pipeline.process(job("file-f", "", firing))
    assert sorted(a.rule for a in anomalies) == ["crowd", "intrusion"]
    assert encoded == [(576, 768, 3)]
    first, second = (a.evidence for a in anomalies)
    assert first is not None and second is not None and first.jpeg == second.jpeg
    # and it is the evidence the rules module builds for that frame and those boxes
    frame = Frame("file-f", clip_image(0), T0, seq=1)
    [people] = detector.detect_sync([frame])
    hits = CameraRules("file-f").evaluate(frame, people, firing)
    expected = FrameEvidence(frame)
    assert first == expected.evidence(hits[0].objects) and second == expected.evidence(hits[1].objects)
    decoded = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (576, 768, 3)


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that remembers what it was asked to run."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="shared")
        self.ran: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.ran.append(getattr(fn, "__name__", type(fn).__name__))
        return super().submit(fn, *args, **kwargs)


async def test_decode_and_quality_run_on_a_borrowed_executor_which_outlives_them(
    camera: Camera, detector: Detector
) -> None:
    pool = CountingPool()
    queue = LocalJobQueue(capacity=10, visibility_s=60)
    sink = Sink()
    async with SnapshotClient(SourceSettings(snapshot_timeout_s=3.0), executor=pool) as client:
        pipeline = PatrolPipeline(
            queue, factory(client), detector, sink, PipelineSettings(workers=1, take_timeout_s=0.05), executor=pool
        )
        assert await queue.put(
            "walk-2", job("walk-2", camera.url("walk"), (zone(ZoneKind.INTRUSION, WALKWAY),)).model_dump(mode="json")
        )
        await run_until(pipeline, lambda: pipeline.stats().frames == 1)
    [anomaly] = sink.anomalies
    assert anomaly.rule == "intrusion" and anomaly.value == 5.0
    # one hop: the JPEG decode and, right after it on the same thread, the quality checks
    assert pool.ran == ["_decode_then"]
    camera_state = pipeline.camera_state("walk-2")
    assert camera_state is not None and camera_state.quality.visits == 1
    assert pool.submit(sum, (1, 2)).result() == 3  # neither the client nor the pipeline shut it down
    pool.shutdown()


async def test_a_node_on_the_detectors_threads_finds_the_same(camera: Camera, detector: Detector) -> None:
    """The small-node wiring: decode and quality on ``Detector.executor``; same anomalies as apart."""
    walkway = (zone(ZoneKind.INTRUSION, WALKWAY),)
    async with SnapshotClient(SourceSettings(snapshot_timeout_s=3.0), executor=detector.executor) as shared:
        on_detector = PatrolPipeline(
            LocalJobQueue(1, 60), factory(shared), detector, Sink(), executor=detector.executor
        )
        together = await on_detector.process(job("walk-3", camera.url("walk"), walkway))
    async with SnapshotClient(SourceSettings(snapshot_timeout_s=3.0)) as own:
        apart = await PatrolPipeline(LocalJobQueue(1, 60), factory(own), detector, Sink()).process(
            job("walk-3", camera.url("walk"), walkway)
        )
    assert [(a.rule, a.value, a.evidence) for a in together] == [(a.rule, a.value, a.evidence) for a in apart]
    assert len(await detector.detect(Frame("after", clip_image(100), T0))) >= 5  # the detector still runs


async def test_the_workers_keep_opencv_to_the_threads_they_run_on(detector: Detector) -> None:
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    pipeline = PatrolPipeline(
        LocalJobQueue(1, 60), lambda job: OneFrame(job.camera_id), detector, Sink(),
        PipelineSettings(workers=1, take_timeout_s=0.05, opencv_threads=1),
    )  # fmt: skip
    task = asyncio.create_task(pipeline.run())
    try:
        await wait_for(lambda: pipeline.state is PipelineState.RUNNING)
        assert cv2.getNumThreads() == 1
    finally:
        pipeline.stop()
        await task
        cv2.setNumThreads(before)  # a process-wide setting: leave it as the other tests found it
