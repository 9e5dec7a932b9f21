"""Cross-camera batching, the queue's drop policy, and the async detector on the real model.

The batching model is a tiny ONNX graph with a dynamic batch dimension whose one detection has the
score ``mean(image)``: each camera sends a frame of its own grey level, so every answer proves it
went back to the camera that asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xueliang.inference.detector import Detector, DetectorState
from xueliang.inference.detector.detector import LOOKAHEAD
from xueliang.inference.errors import DetectorNotRunning, FrameDropped
from xueliang.inference.frames import Detection, Frame, Image
from xueliang.inference.settings import DetectorSettings

CELLS = 189  # grid cells of a 96x96 input over strides 8/16/32


@pytest.fixture
def dynamic_model(onnx_model: Callable[..., Path]) -> Path:
    base = np.zeros((1, 3 * CELLS, 85), np.float32)
    base[0, 0, 0:4] = (48.0, 48.0, 20.0, 40.0)  # a person in the middle
    base[0, 0, 5] = 1.0
    gain = np.zeros_like(base)
    gain[0, 0, 4] = 1.0  # objectness = mean of the (RGB / 255) input
    return onnx_model("dynamic.onnx", input_hw=(96, 96), output=base, batch="N", mean_gain=gain)


def grey_frame(camera_id: str, grey: int, seq: int = 0) -> Frame:
    return Frame(camera_id=camera_id, image=np.full((96, 96, 3), grey, np.uint8), captured_at=0.0, seq=seq)


async def test_concurrent_cameras_are_served_in_batches(dynamic_model: Path) -> None:
    settings = DetectorSettings(model_path=dynamic_model, max_batch=4, max_wait_ms=500, min_score=0.1)
    greys = {f"cam-{i}": 60 + 20 * i for i in range(8)}
    async with Detector(settings) as detector:
        assert detector.engine.info.dynamic_batch and detector.engine.max_batch == 4
        results = await asyncio.gather(*(detector.detect(grey_frame(c, g)) for c, g in greys.items()))
        stats = detector.stats()
    for (camera, grey), dets in zip(greys.items(), results, strict=True):
        assert len(dets) == 1, camera
        assert dets[0].score == pytest.approx(grey / 255, abs=1e-4), camera
        assert (dets[0].x1, dets[0].y1, dets[0].x2, dets[0].y2) == pytest.approx((38, 28, 58, 68))
    assert stats.batch_sizes == {4: 2}
    assert stats.frames == 8 and stats.batches == 2 and stats.drops == 0
    assert stats.latency_ms.count == 8 and stats.inference_ms.count == 2
    assert detector.state is DetectorState.STOPPED


async def test_a_partial_batch_runs_after_max_wait(dynamic_model: Path) -> None:
    settings = DetectorSettings(model_path=dynamic_model, max_batch=8, max_wait_ms=30, min_score=0.1)
    async with Detector(settings) as detector:
        results = await asyncio.gather(*(detector.detect(grey_frame(f"c{i}", 100)) for i in range(3)))
        assert [len(r) for r in results] == [1, 1, 1]
        assert detector.stats().batch_sizes == {3: 1}


async def stragglers(detector: Detector, pause_s: float) -> list[list[Detection]]:
    """One camera's frame, then, ``pause_s`` later, two more cameras' frames; all three answers."""
    first = asyncio.create_task(detector.detect(grey_frame("early", 90)))
    await asyncio.sleep(pause_s)
    late = await asyncio.gather(detector.detect(grey_frame("late-1", 120)), detector.detect(grey_frame("late-2", 150)))
    return [await first, *late]


async def test_a_batch_waits_up_to_max_wait_for_frames_that_come_later(dynamic_model: Path) -> None:
    """The dispatcher holds a lone frame for up to max_wait_ms: frames arriving 50 ms later (well
    within the 1 s wait) join its batch. A dispatcher that never waits runs the first one alone."""
    settings = DetectorSettings(model_path=dynamic_model, max_batch=8, max_wait_ms=1000, min_score=0.1)
    async with Detector(settings) as detector:
        results = await stragglers(detector, pause_s=0.05)
        stats = detector.stats()
    assert [d[0].score for d in results] == pytest.approx([90 / 255, 120 / 255, 150 / 255], abs=1e-4)
    assert stats.batch_sizes == {3: 1}, stats.batch_sizes


async def test_a_short_max_wait_runs_the_lone_frame_without_the_late_ones(dynamic_model: Path) -> None:
    """With max_wait_ms=1 the lone frame is not held for frames that come 300 ms later."""
    settings = DetectorSettings(model_path=dynamic_model, max_batch=8, max_wait_ms=1, min_score=0.1)
    async with Detector(settings) as detector:
        results = await stragglers(detector, pause_s=0.3)
        stats = detector.stats()
    assert [d[0].score for d in results] == pytest.approx([90 / 255, 120 / 255, 150 / 255], abs=1e-4)
    assert stats.frames == 3 and 3 not in stats.batch_sizes, stats.batch_sizes
    assert stats.batch_sizes.get(1, 0) >= 1, stats.batch_sizes  # the early frame ran by itself


async def test_newest_frame_of_a_camera_replaces_its_queued_one(dynamic_model: Path) -> None:
    settings = DetectorSettings(model_path=dynamic_model, max_batch=4, max_wait_ms=50, min_score=0.1)
    async with Detector(settings) as detector:
        old, new, other = await asyncio.gather(
            detector.detect(grey_frame("gate", 100, seq=1)),
            detector.detect(grey_frame("gate", 200, seq=2)),
            detector.detect(grey_frame("yard", 150)),
            return_exceptions=True,
        )
        stats = detector.stats()
    assert isinstance(old, FrameDropped) and old.camera_id == "gate"
    assert "frame 1 dropped: a newer frame of the same camera replaced it" in str(old)
    assert isinstance(new, list) and new[0].score == pytest.approx(200 / 255, abs=1e-4)
    assert isinstance(other, list) and other[0].score == pytest.approx(150 / 255, abs=1e-4)
    assert stats.drops_by_camera == {"gate": 1} and stats.drops == 1
    assert stats.batch_sizes == {2: 1}


async def test_a_full_queue_drops_its_oldest_frame(dynamic_model: Path) -> None:
    settings = DetectorSettings(model_path=dynamic_model, max_batch=4, max_wait_ms=50, queue_size=2, min_score=0.1)
    async with Detector(settings) as detector:
        results = await asyncio.gather(
            *(detector.detect(grey_frame(c, 120)) for c in ("a", "b", "c")), return_exceptions=True
        )
        stats = detector.stats()
    assert isinstance(results[0], FrameDropped) and "queue was full (2 frames)" in str(results[0])
    assert [len(r) for r in results[1:]] == [1, 1]  # type: ignore[arg-type]
    assert stats.drops_by_camera == {"a": 1}


async def test_detect_outside_start_stop_is_refused(dynamic_model: Path) -> None:
    detector = Detector(DetectorSettings(model_path=dynamic_model))
    with pytest.raises(DetectorNotRunning, match="start it"):
        await detector.detect(grey_frame("a", 1))
    async with detector:
        await detector.detect(grey_frame("a", 100))
    with pytest.raises(DetectorNotRunning, match="stopped"):
        await detector.detect(grey_frame("a", 1))


async def test_a_bad_image_is_refused_and_the_detector_goes_on(dynamic_model: Path) -> None:
    async with Detector(DetectorSettings(model_path=dynamic_model, min_score=0.1)) as detector:
        grey = Frame(camera_id="mono", image=np.zeros((96, 96), np.uint8), captured_at=0.0)
        with pytest.raises(ValueError, match=r"camera mono: frame 0 is not an H x W x 3 uint8 BGR image"):
            await detector.detect(grey)
        assert len(await detector.detect(grey_frame("mono", 100))) == 1


async def test_real_model_serves_cameras_back_to_back(models_dir: Path, vtest_frame: Callable[[int], Image]) -> None:
    """Fixed batch 1 (the shipped models): no batching wait, two sessions side by side, same answers."""
    settings = DetectorSettings(model_path=models_dir / "yolox_nano.onnx", sessions=2, max_wait_ms=1000)
    frames = [Frame(camera_id=f"cam-{i}", image=vtest_frame(i * 50), captured_at=0.0) for i in range(6)]
    async with Detector(settings) as detector:
        assert not detector.engine.info.dynamic_batch
        results = await asyncio.gather(
            *(detector.detect(f, classes=frozenset({"person"}), min_score=0.5) for f in frames)
        )
        expected = detector.detect_sync(frames, classes=frozenset({"person"}), min_score=0.5)
        stats = detector.stats()
    assert results == expected
    assert sum(len(r) for r in results) >= 15
    assert stats.batch_sizes == {1: 12}  # 6 async + 6 sync, each alone
    assert stats.drops == 0 and stats.queue_depth == 0


async def test_each_camera_keeps_its_own_class_filter_and_threshold(
    models_dir: Path, vtest_frame: Callable[[int], Image]
) -> None:
    image = vtest_frame(100)
    async with Detector(DetectorSettings(model_path=models_dir / "yolox_nano.onnx")) as detector:
        people, vehicles, strict, default = await asyncio.gather(
            detector.detect(Frame("path", image, 0.0), classes=frozenset({"person"}), min_score=0.5),
            detector.detect(Frame("car-park", image, 0.0), classes=frozenset({"car", "truck"}), min_score=0.5),
            detector.detect(Frame("gate", image, 0.0), min_score=0.75),
            detector.detect(Frame("yard", image, 0.0)),  # settings: all classes, 0.35
        )
    assert len(people) >= 6 and {d.label for d in people} == {"person"}
    assert vehicles and {d.label for d in vehicles} <= {"car", "truck"}
    assert strict and all(d.score >= 0.75 for d in strict) and len(strict) < len(default)
    assert {d.label for d in default} >= {"person", "car"} and min(d.score for d in default) >= 0.35


async def test_fixed_batch_sessions_get_their_next_frame_ahead(
    models_dir: Path, vtest_frame: Callable[[int], Image]
) -> None:
    """A fixed-batch model: each session has its next frame handed over while it runs one (no event-loop
    round trip between two frames); the frames behind those stay in the queue, under its policy."""
    settings = DetectorSettings(model_path=models_dir / "yolox_nano.onnx", sessions=2)
    frames = [Frame(camera_id=f"cam-{i}", image=vtest_frame(i * 50), captured_at=0.0) for i in range(8)]
    async with Detector(settings) as detector:
        tasks = [asyncio.create_task(detector.detect(f, min_score=0.5)) for f in frames]
        seen: list[tuple[int, int]] = []
        while not all(t.done() for t in tasks):
            stats = detector.stats()
            seen.append((stats.in_flight, stats.queue_depth))
            await asyncio.sleep(0)
        results = [t.result() for t in tasks]
        expected = detector.detect_sync(frames, min_score=0.5)
        # a newer frame of a camera whose frame waits in the queue still replaces it
        blocker = [asyncio.create_task(detector.detect(f)) for f in frames[:4]]
        await asyncio.sleep(0)
        old = asyncio.create_task(detector.detect(Frame("late", frames[5].image, 0.0, seq=1)))
        await asyncio.sleep(0)
        new = await detector.detect(Frame("late", frames[5].image, 0.0, seq=2))
        await asyncio.gather(*blocker)
    assert results == expected
    assert max(flight for flight, _ in seen) == 2 * (1 + LOOKAHEAD) == 4  # 2 running, 2 next in line
    assert (4, 4) in seen  # and the other 4 frames waited in the queue
    assert isinstance(old.exception(), FrameDropped) and new == expected[5]


async def test_stop_fails_waiting_frames_and_delivers_the_running_ones(
    models_dir: Path, vtest_frame: Callable[[int], Image]
) -> None:
    """A frame already in ``session.run`` when the detector stops cannot be interrupted: its request
    gets the result; frames still waiting in the queue fail with DetectorNotRunning; none hangs."""
    settings = DetectorSettings(model_path=models_dir / "yolox_nano.onnx", sessions=1)
    frames = [Frame(camera_id=f"cam-{i}", image=vtest_frame(100), captured_at=0.0) for i in range(6)]
    detector = Detector(settings)
    await detector.start()
    tasks = [asyncio.create_task(detector.detect(f, classes=frozenset({"person"}), min_score=0.5)) for f in frames]
    while detector.stats().in_flight == 0:  # the first frame is handed to the session (about 15 ms a run)
        await asyncio.sleep(0)
    await detector.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    delivered = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, DetectorNotRunning)]
    assert len(delivered) + len(refused) == 6, results
    assert delivered and all(len(r) >= 6 for r in delivered)  # frame 100: six people or more
    assert refused and all("stopped before this frame was analysed" in str(r) for r in refused)
