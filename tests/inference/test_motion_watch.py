"""Motion gate and watch mode: only frames with change reach the detector; a watched camera's
stream is tracked, so loitering fires (real frames, real detector)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.inference.logic_fixtures import SEQUENCE, T0, WALKWAY, clip_image, jpeg, zone
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.detector import Detector
from xueliang.inference.frames import Frame
from xueliang.inference.motion import MotionGate
from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.settings import MotionSettings, WatchSettings
from xueliang.inference.patrol.watch import WatchManager, WatchSession, WatchState
from xueliang.inference.sources import FileSource
from xueliang.inference.sources.base import FrameSource, SourceStats
from xueliang.inference.zones import ZoneKind


def noisy(image: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, 2.0, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["diff", "mog2"])
def test_the_gate_passes_walking_people_and_stops_a_still_picture(method: str) -> None:
    gate = MotionGate(MotionSettings(method=method))
    still = clip_image(0)
    assert gate.check(still).moved  # nothing to compare the first frame with
    for seed in range(5):
        result = gate.check(noisy(still, seed))
        assert not result.moved and result.changed_ratio < 0.002
    walked = gate.check(clip_image(SEQUENCE[5]))  # 1.5 s later: people moved
    assert walked.moved and walked.changed_ratio > 0.005
    assert gate.frames_seen == 7 and gate.frames_moved == 2


def test_a_small_change_is_motion_and_reset_forgets_the_previous_frame() -> None:
    gate = MotionGate()
    base = clip_image(0)
    gate.check(base)
    person = base.copy()
    person[300:380, 100:130] = 20  # someone 30 x 80 px appears on the grass
    assert gate.check(person).moved
    assert not gate.check(person).moved
    gate.reset()
    assert gate.check(person).moved


class ClipTime:
    """A file source whose frames carry the clip's own time (0.3 s apart), not the wall clock:
    the footage plays fast in the test but dwell times are those of the recording."""

    def __init__(self, inner: FileSource, step_s: float) -> None:
        self._inner = inner
        self._step_s = step_s
        self.closed = False

    @property
    def camera_id(self) -> str:
        return self._inner.camera_id

    async def read(self) -> Frame:
        frame = await self._inner.read()
        return dataclasses.replace(frame, captured_at=T0 + (frame.seq - 1) * self._step_s)

    def stats(self) -> SourceStats:
        return self._inner.stats()

    async def close(self) -> None:
        self.closed = True
        await self._inner.close()


@pytest.fixture(scope="module")
def sequence_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SEQUENCE frames of vtest.avi as a folder of JPEGs (a camera at 3.3 fps for 24 s)."""
    folder = tmp_path_factory.mktemp("sequence")
    for n, index in enumerate(SEQUENCE):
        (folder / f"{n:04d}.jpg").write_bytes(jpeg(clip_image(index)))
    return folder


@pytest.fixture(scope="module")
def still_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten noisy copies of one frame, then five frames of people walking."""
    folder = tmp_path_factory.mktemp("still")
    for n in range(10):
        (folder / f"{n:04d}.jpg").write_bytes(jpeg(noisy(clip_image(0), n), 95))
    for n, index in enumerate(SEQUENCE[10:15]):
        (folder / f"{10 + n:04d}.jpg").write_bytes(jpeg(clip_image(index), 95))
    return folder


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="test-watch")
    yield pool
    pool.shutdown(wait=True)


class Sink:
    def __init__(self) -> None:
        self.anomalies: list[Anomaly] = []

    async def __call__(self, anomaly: Anomaly) -> None:
        self.anomalies.append(anomaly)


def folder_source(folder: Path, opened: list[ClipTime]) -> Callable[[PatrolTarget], FrameSource]:
    def make(target: PatrolTarget) -> FrameSource:
        source = ClipTime(FileSource(target.camera_id, folder), 0.3)
        opened.append(source)
        return source

    return make


async def test_only_frames_with_motion_reach_the_detector(
    still_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    opened: list[ClipTime] = []
    target = PatrolTarget(camera_id="watch-1", watch=True, zones=(zone(ZoneKind.CROWD, WALKWAY, min_count=50),))
    settings = WatchSettings(fps=50.0, idle_detect_s=60.0)
    session = WatchSession(
        target, folder_source(still_dir, opened), detector, Sink(), executor=executor, settings=settings
    )
    await session.run()
    c = session.counters
    assert session.state is WatchState.ENDED and opened[0].closed
    assert c.frames_seen == 15
    assert c.frames_motion == 6  # the first frame, then the five frames of people walking
    assert c.frames_idle == 0 and c.frames_passed == 6 and c.frames_detected == 6


async def test_a_still_picture_is_still_checked_now_and_then(
    still_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    target = PatrolTarget(camera_id="watch-2", watch=True)
    settings = WatchSettings(fps=50.0, idle_detect_s=1.0)  # frames are 0.3 s apart: every 4th
    session = WatchSession(target, folder_source(still_dir, []), detector, Sink(), executor=executor, settings=settings)
    await session.run()
    assert session.counters.frames_motion == 6 and session.counters.frames_idle == 2  # at 1.2 s and 2.4 s


class ClipStepsBack(ClipTime):
    """Clip time, with the wall clock stepped back an hour after the first five frames."""

    async def read(self) -> Frame:
        frame = await super().read()
        return dataclasses.replace(frame, captured_at=frame.captured_at - 3600.0) if frame.seq > 5 else frame


async def test_idle_checks_go_on_when_the_clock_steps_back(
    still_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    # old code: the last detection's time stayed an hour in the future, so no idle check came again
    target = PatrolTarget(camera_id="watch-2b", watch=True)
    settings = WatchSettings(fps=50.0, idle_detect_s=1.0)
    session = WatchSession(
        target,
        lambda t: ClipStepsBack(FileSource(t.camera_id, still_dir), 0.3),
        detector,
        Sink(),
        executor=executor,
        settings=settings,
    )
    await session.run()
    c = session.counters
    assert c.clock_steps_back == 1
    assert c.frames_idle == 2  # at 1.2 s, then 1.2 s of clip time after the step (frame 9)


async def test_loitering_fires_in_watch_mode_and_repeats_are_held_back(
    sequence_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    sink = Sink()
    loiter = zone(ZoneKind.LOITERING, WALKWAY, dwell_s=15.0)
    target = PatrolTarget(camera_id="watch-3", watch=True, zones=(loiter,))
    session = WatchSession(
        target,
        folder_source(sequence_dir, []),
        detector,
        sink,
        executor=executor,
        settings=WatchSettings(fps=50.0, repeat_s=5.0),
    )
    await session.run()
    assert sink.anomalies, "nobody stayed 15 s on the walkway?"
    assert {a.rule for a in sink.anomalies} == {"loitering"}
    times = [a.observed_at.timestamp() for a in sink.anomalies]
    assert all(b - a >= 5.0 for a, b in itertools.pairwise(times))  # one every repeat_s at most
    assert session.counters.repeats_suppressed > 0
    first = sink.anomalies[0]
    assert first.value >= 15.0 and first.detail["mode"] == "watch"
    assert first.evidence is not None and all(b.track_id is not None for b in first.evidence.boxes)
    assert session.counters.frames_seen == len(SEQUENCE)


async def test_a_broken_jpeg_in_a_watched_folder_is_skipped_and_counted(
    tmp_path: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    """Six pictures of people on the walkway, the fourth cut off half way (an upload that broke):
    the watch analyses the five whole ones, the broken one is counted, the stream goes on."""
    pictures = [jpeg(clip_image(index)) for index in SEQUENCE[:6]]
    pictures[3] = pictures[3][: len(pictures[3]) // 2]
    for n, data in enumerate(pictures):
        (tmp_path / f"{n:04d}.jpg").write_bytes(data)
    sink = Sink()
    opened: list[ClipTime] = []
    target = PatrolTarget(camera_id="watch-4", watch=True, zones=(zone(ZoneKind.INTRUSION, WALKWAY),))
    settings = WatchSettings(fps=50.0, idle_detect_s=0.1, repeat_s=0.0)  # every frame detected and reported
    session = WatchSession(
        target, folder_source(tmp_path, opened), detector, sink, executor=executor, settings=settings
    )
    async with asyncio.timeout(60):  # a source that failed at the broken file would be reopened for ever
        await session.run()
    c = session.counters
    assert session.state is WatchState.ENDED and len(opened) == 1 and opened[0].closed
    assert c.frames_seen == 5 and c.frames_detected == 5 and c.source_errors == 0
    stats = opened[0].stats()
    assert stats.frames == 5 and stats.corrupt == 1
    assert "0003.jpg: truncated JPEG" in stats.last_error
    # one intrusion a frame, each with its own file as the evidence: all but the broken one, in order
    assert {a.rule for a in sink.anomalies} == {"intrusion"}
    evidence = [a.evidence.jpeg if a.evidence is not None else b"" for a in sink.anomalies]
    assert evidence == pictures[:3] + pictures[4:]


async def test_the_manager_follows_the_watched_cameras_within_its_bound(
    sequence_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    opened: list[ClipTime] = []

    def endless(target: PatrolTarget) -> FrameSource:
        source = ClipTime(FileSource(target.camera_id, sequence_dir, loop=True), 0.3)
        opened.append(source)
        return source

    manager = WatchManager(
        endless, detector, Sink(), executor=executor, settings=WatchSettings(fps=20.0, max_cameras=2)
    )
    task = asyncio.create_task(manager.run())
    await asyncio.sleep(0)
    targets = [PatrolTarget(camera_id=f"w-{i}", watch=True) for i in range(3)]
    targets.append(PatrolTarget(camera_id="patrolled", watch=False))
    manager.update(targets)
    assert sorted(manager.sessions) == ["w-0", "w-1"] and manager.refused == 1
    async with asyncio.timeout(30):
        while min(s.counters.frames_seen for s in manager.sessions.values()) < 3:
            await asyncio.sleep(0.01)
    manager.update(targets[1:2])  # w-0 is no longer watched
    assert sorted(manager.sessions) == ["w-1"]
    manager.stop()
    await task
    assert manager.sessions == {}
    assert len(opened) == 2 and all(s.closed for s in opened)


async def test_a_list_given_before_the_manager_runs_is_applied_when_it_starts(
    sequence_dir: Path, detector: Detector, executor: ThreadPoolExecutor
) -> None:
    manager = WatchManager(
        lambda target: ClipTime(FileSource(target.camera_id, sequence_dir, loop=True), 0.3),
        detector, Sink(), executor=executor, settings=WatchSettings(fps=20.0),
    )  # fmt: skip
    manager.update([PatrolTarget(camera_id="early", watch=True)])  # the patrol may read its list first
    assert manager.sessions == {}
    task = asyncio.create_task(manager.run())
    await asyncio.sleep(0)
    assert sorted(manager.sessions) == ["early"]
    manager.stop()
    await task
    assert manager.sessions == {}
