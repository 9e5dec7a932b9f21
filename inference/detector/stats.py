"""Detector counters: the :class:`DetectorStats` record and the thread-safe accumulator behind it."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50 / p99 / max of a recent window, in milliseconds (0 when nothing was measured)."""

    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    count: int = 0

    @classmethod
    def of(cls, values: Iterable[float]) -> Percentiles:
        arr = np.fromiter(values, dtype=np.float64)
        if arr.size == 0:
            return cls()
        p50, p99 = np.percentile(arr, [50, 99])
        return cls(p50=float(p50), p99=float(p99), max=float(arr.max()), count=int(arr.size))


@dataclass(frozen=True, slots=True)
class DetectorStats:
    """A snapshot of the detector's counters since start."""

    frames: int  # frames inferred
    batches: int  # session.run calls
    batch_sizes: dict[int, int]  # batch size -> how many batches had it
    errors: int  # frames whose batch failed
    drops: int  # frames dropped from the queue (all cameras)
    drops_by_camera: dict[str, int]
    queue_depth: int  # frames waiting now
    in_flight: int  # batches handed to the sessions: running, or next in line (fixed-batch models)
    inference_ms: Percentiles  # session.run per batch
    preprocess_ms: Percentiles  # letterbox of a whole batch
    postprocess_ms: Percentiles  # decode + NMS of a whole batch
    latency_ms: Percentiles  # detect() call to result, per frame (queue wait included)
    providers: tuple[str, ...] = field(default=())


class StatsRecorder:
    """Counts and recent timings; updated from the event loop and from executor threads."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.frames = 0
        self.batches = 0
        self.errors = 0
        self.batch_sizes: Counter[int] = Counter()
        self.drops: Counter[str] = Counter()
        self._run: deque[float] = deque(maxlen=window)
        self._pre: deque[float] = deque(maxlen=window)
        self._post: deque[float] = deque(maxlen=window)
        self._latency: deque[float] = deque(maxlen=window)

    def batch(self, size: int, pre_ms: float, run_ms: float, post_ms: float) -> None:
        with self._lock:
            self.frames += size
            self.batches += 1
            self.batch_sizes[size] += 1
            self._pre.append(pre_ms)
            self._run.append(run_ms)
            self._post.append(post_ms)

    def failed(self, size: int) -> None:
        with self._lock:
            self.errors += size

    def dropped(self, camera_id: str) -> None:
        with self._lock:
            self.drops[camera_id] += 1

    def latency(self, ms: float) -> None:
        with self._lock:
            self._latency.append(ms)

    def snapshot(self, queue_depth: int, in_flight: int, providers: tuple[str, ...]) -> DetectorStats:
        with self._lock:
            return DetectorStats(
                frames=self.frames,
                batches=self.batches,
                batch_sizes=dict(sorted(self.batch_sizes.items())),
                errors=self.errors,
                drops=sum(self.drops.values()),
                drops_by_camera=dict(self.drops),
                queue_depth=queue_depth,
                in_flight=in_flight,
                inference_ms=Percentiles.of(self._run),
                preprocess_ms=Percentiles.of(self._pre),
                postprocess_ms=Percentiles.of(self._post),
                latency_ms=Percentiles.of(self._latency),
                providers=providers,
            )
