"""Cost of the frame-level diagnostics on real footage: video quality checks per patrol frame, and
the two motion gate methods of watch mode. One JSON line per measurement.

    .venv/bin/python benchmarks/quality.py [--frames 400]

Lines:
- ``quality``: ms per frame of ``QualityChecker.check`` (one thread): on what the patrol analyses
  of a 1080p snapshot (its JPEG decoded at 1/4, 480x270), on vtest.avi as it is (768x576) and
  upscaled to 1920x1080 (a full-HD frame decoded at full size);
- ``motion``: ms per frame of ``MotionGate.check`` for ``diff`` and ``mog2``, the share of frames
  each passes to the detector, and how often the two agree: on the clip at 5 fps (people walk
  all the time) and on a static scene with sensor noise (nothing moves).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from xueliang.inference.frames import Frame, Image
from xueliang.inference.motion import MotionGate
from xueliang.inference.patrol.settings import MotionSettings
from xueliang.inference.quality import QualityChecker, QualityState
from xueliang.inference.sources.jpeg import decode_jpeg

VTEST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "vtest.avi"


def frames(limit: int, step: int = 1) -> Iterator[Image]:
    cap = cv2.VideoCapture(str(VTEST))
    try:
        index = 0
        while index < limit:
            ok, image = cap.read()
            if not ok:
                return
            if index % step == 0:
                yield np.asarray(image, dtype=np.uint8)
            index += 1
    finally:
        cap.release()


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e3


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_ms": round(statistics.fmean(ordered), 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def snapshot(image: Image) -> Image:
    """What the patrol analyses of a 1080p camera snapshot: the JPEG decoded at reduced scale for
    yolox_nano's 416x416 input (1/4: 480x270)."""
    big = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    return decode_jpeg(data, target=(416, 416))[0]


def bench_quality(limit: int, size: tuple[int, int] | str | None) -> dict[str, object]:
    checker = QualityChecker()
    state = QualityState()
    samples: list[float] = []
    # snapshots are decoded before the timing starts: making one (a 1080p resize and encode) right
    # before its check would leave the check a cold cache, which the patrol's decode does not
    snapshots = [snapshot(image) for image in frames(limit)] if size == "snapshot" else []
    for i, image in enumerate(snapshots or frames(limit)):
        picture = np.asarray(cv2.resize(image, size), dtype=np.uint8) if isinstance(size, tuple) else image
        frame = Frame("bench", picture, float(i))
        samples.append(timed(lambda frame=frame: checker.check(frame, state)))  # type: ignore[misc]
    h, w = picture.shape[:2]
    return {"bench": "quality", "frame": f"{w}x{h}", "frames": len(samples), **summary(samples)}


def static_scene(limit: int) -> Iterator[Image]:
    """Frame 0 of the clip over and over with fresh sensor noise (std 2): nothing moves."""
    first = next(frames(1))
    rng = np.random.default_rng(0)
    for _ in range(limit):
        yield np.clip(first + rng.normal(0.0, 2.0, first.shape), 0, 255).astype(np.uint8)


def bench_motion(scene: str, pictures: Iterator[Image]) -> list[dict[str, object]]:
    gates = {method: MotionGate(MotionSettings(method=method)) for method in ("diff", "mog2")}
    samples: dict[str, list[float]] = {m: [] for m in gates}
    moved: dict[str, list[bool]] = {m: [] for m in gates}
    for image in pictures:
        for method, gate in gates.items():
            started = time.perf_counter()
            result = gate.check(image)
            samples[method].append((time.perf_counter() - started) * 1e3)
            moved[method].append(result.moved)
    agree = sum(a == b for a, b in zip(moved["diff"], moved["mog2"], strict=True)) / len(moved["diff"])
    return [
        {
            "bench": "motion",
            "scene": scene,
            "method": method,
            "frames": len(samples[method]),
            "passed": round(sum(moved[method][1:]) / (len(moved[method]) - 1), 3),  # the first always passes
            "agreement": round(agree, 3),
            **summary(samples[method]),
        }
        for method in gates
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="frames of vtest.avi to use")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    machine = {"machine": platform.machine(), "cpus": cv2.getNumberOfCPUs(), "opencv": cv2.__version__}
    sizes: tuple[tuple[int, int] | str | None, ...] = ("snapshot", None, (1920, 1080))
    for size in sizes:
        print(json.dumps(bench_quality(args.frames, size) | machine))
    scenes = {
        "vtest-5fps": frames(args.frames, step=2),  # the clip is 10 fps: watch mode's default 5 fps
        "static-noise": static_scene(args.frames // 2),
    }
    for scene, pictures in scenes.items():
        for line in bench_motion(scene, pictures):
            print(json.dumps(line | machine))


if __name__ == "__main__":
    main()
