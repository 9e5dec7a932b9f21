"""Counters and sliding-window figures of the patrol workers."""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field


class PipelineState(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Window:
    """The latest ``size`` samples; percentiles by nearest rank."""

    def __init__(self, size: int) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._samples.append(value)

    def percentile(self, q: float) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]

    def __len__(self) -> int:
        return len(self._samples)


class Rate:
    """Events per second over the latest ``size`` events (monotonic times)."""

    def __init__(self, size: int) -> None:
        self._times: deque[float] = deque(maxlen=size)

    def tick(self, now: float) -> None:
        self._times.append(now)

    def per_second(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass(slots=True)
class PipelineStats:
    state: PipelineState
    workers: int = 0
    busy: int = 0  # workers processing a job now
    jobs: int = 0  # jobs taken
    frames: int = 0  # frames analysed
    anomalies: int = 0  # anomalies handed to the sink
    frames_per_s: float = 0.0  # over the latest `latency_window` frames
    latency_p50_ms: float = 0.0  # frame grabbed -> anomalies handed over
    latency_p99_ms: float = 0.0
    job_p50_ms: float = 0.0  # job taken -> done (grab included)
    job_p99_ms: float = 0.0
    wait_p50_s: float = 0.0  # visit due -> job taken (how far behind the workers are)
    wait_p99_s: float = 0.0
    skipped_detection: int = 0  # frames not sent to the detector (black or covered)
    unreachable: int = 0  # camera.unreachable / camera.auth_failed anomalies sent
    cameras: int = 0  # cameras with state kept
    evicted: int = 0  # camera states forgotten (LRU)
    failures: dict[str, int] = field(default_factory=dict)  # by kind
