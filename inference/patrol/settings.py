"""Settings of patrol and analysis: the scheduler, the pipeline workers, watch mode and its motion
gate; ``AnalyticsSettings`` gathers them with the quality and rule sections into one block
(``analytics:`` in ``config/gateway.yaml``). Every model forbids unknown keys, every field is
described.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xueliang.inference.rules.settings import QualitySettings, RuleSettings, known_timezone
from xueliang.inference.zones import LocalTime


def _default_priority_intervals() -> dict[int, float]:
    return {1: 60.0, 2: 180.0, 3: 300.0, 4: 600.0, 5: 900.0}


class CategoryWindow(BaseModel):
    """Local hours in which cameras of one category are visited at least every ``interval_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    category: str = Field(description="Camera category this applies to (school, square, station, ...)")
    start: LocalTime = Field(description="Local start time, e.g. '07:00' (quoted in YAML)")
    end: LocalTime = Field(description="Local end time, e.g. '09:00' (earlier than start: runs past midnight)")
    days: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6, 7), description="ISO weekdays, 1 = Monday .. 7 = Sunday")
    interval_s: float = Field(gt=0, description="Longest interval between visits inside the window, seconds")

    @model_validator(mode="after")
    def _check(self) -> CategoryWindow:
        if self.start == self.end:
            raise ValueError(f"{self.category} window {self.start}-{self.end} is empty: start and end must differ")
        bad = [d for d in self.days if not 1 <= d <= 7]
        if bad or not self.days:
            raise ValueError(
                f"{self.category} window: weekdays must be 1 (Monday) .. 7 (Sunday), got {list(self.days)}"
            )
        return self


def _default_windows() -> list[CategoryWindow]:
    weekdays = (1, 2, 3, 4, 5)
    return [
        CategoryWindow(category="school", start=time(7, 0), end=time(8, 30), days=weekdays, interval_s=60),
        CategoryWindow(category="school", start=time(16, 30), end=time(18, 0), days=weekdays, interval_s=60),
        CategoryWindow(category="square", start=time(18, 0), end=time(22, 0), interval_s=120),
        CategoryWindow(category="station", start=time(7, 0), end=time(9, 0), days=weekdays, interval_s=60),
        CategoryWindow(category="station", start=time(17, 0), end=time(19, 30), days=weekdays, interval_s=60),
    ]


class SchedulerSettings(BaseModel):
    """How often each camera is patrolled."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    priority_intervals_s: dict[int, float] = Field(
        default_factory=_default_priority_intervals,
        description="Base interval between visits by priority, seconds (1 = key place, visited most often)",
    )
    category_windows: list[CategoryWindow] = Field(
        default_factory=_default_windows,
        description="Time-of-day windows that tighten the interval of a category (schools at opening and "
        "closing, squares in the evening, stations at rush hours)",
    )
    floor_s: float = Field(1800.0, gt=0, description="Every camera is visited at least once per this many seconds")
    min_interval_s: float = Field(
        10.0, gt=0, description="No camera is patrolled more often than this (faster: use watch mode)"
    )
    timezone: str = Field("Asia/Shanghai", description="Local time zone of the category windows (IANA name)")
    tick_s: float = Field(1.0, gt=0, le=60, description="How often the scheduler looks for due cameras, seconds")
    refresh_s: float = Field(30.0, gt=0, description="How often the camera list is read again, seconds")
    max_puts_per_tick: int = Field(
        5000, ge=1, description="Most jobs queued in one tick (the rest wait for the next tick, counted in lag)"
    )
    patrol_watched: bool = Field(
        False, description="Also patrol cameras under watch (they already get a continuous stream)"
    )

    @field_validator("priority_intervals_s")
    @classmethod
    def _all_priorities(cls, table: dict[int, float]) -> dict[int, float]:
        missing = [p for p in range(1, 6) if p not in table]
        if missing:
            raise ValueError(f"priority_intervals_s lacks priorities {missing}: give an interval for each of 1..5")
        bad = {p: v for p, v in table.items() if v <= 0 or not 1 <= p <= 5}
        if bad:
            raise ValueError(f"priority_intervals_s entries {bad}: priorities are 1..5, intervals > 0 seconds")
        return table

    _known_zone = field_validator("timezone")(known_timezone)

    @model_validator(mode="after")
    def _floor_above_min(self) -> SchedulerSettings:
        if self.floor_s < self.min_interval_s:
            raise ValueError(
                f"floor_s ({self.floor_s}) must be >= min_interval_s ({self.min_interval_s}): a camera cannot be "
                "visited at least every floor_s while never more often than min_interval_s"
            )
        return self


class MotionSettings(BaseModel):
    """The cheap motion gate in front of the detector in watch mode."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Literal["diff", "mog2"] = Field(
        "diff",
        description="diff: grey frame differencing on a small copy (cheapest, see benchmarks/quality.py); "
        "mog2: OpenCV's MOG2 background model on the small copy",
    )
    width: int = Field(160, ge=32, le=1280, description="Width of the small grey copy, pixels")
    pixel_threshold: int = Field(25, ge=1, le=255, description="diff: a pixel changed by at least this (0-255)")
    min_changed_ratio: float = Field(
        0.002, gt=0, le=1, description="Motion when at least this fraction of the small copy changed"
    )
    mog2_history: int = Field(200, ge=10, description="mog2: frames in the background model")
    mog2_var_threshold: float = Field(16.0, gt=0, description="mog2: squared Mahalanobis distance threshold")


class WatchSettings(BaseModel):
    """Watch mode: a continuous, motion-gated stream for selected cameras."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    fps: float = Field(5.0, gt=0, le=60, description="Frames per second taken from each watched stream")
    max_cameras: int = Field(32, ge=0, description="Most cameras watched at once; more are refused and counted")
    idle_detect_s: float = Field(
        2.0,
        gt=0,
        description="Run the detector at least this often even without motion (keeps tracks of people "
        "standing still alive: loitering); keep it below the tracker's max_age_s",
    )
    restart_delay_s: float = Field(5.0, gt=0, description="Wait before reopening a stream that failed")
    repeat_s: float = Field(
        10.0, ge=0, description="One anomaly per rule and zone of a watched camera at most every this many seconds"
    )
    motion: MotionSettings = Field(default_factory=MotionSettings, description="The motion gate")


class PipelineSettings(BaseModel):
    """The workers that take patrol jobs, grab a frame, check and detect, and apply the rules."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    workers: int = Field(8, ge=1, le=1024, description="Jobs processed at once (each waits mostly on I/O)")
    cpu_threads: int = Field(
        2, ge=1, le=64, description="Threads of the executor running quality checks, rules and JPEG encoding"
    )
    opencv_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Threads one OpenCV call may use (set for the whole process when the workers start); 1: "
        "each call runs on the executor thread that makes it, which already keeps a core busy",
    )
    take_timeout_s: float = Field(1.0, gt=0, description="How long a worker waits for a job before looking again")
    grab_timeout_s: float = Field(
        20.0, gt=0, description="Longest wait for one frame from a source (on top of the source's own timeouts)"
    )
    unreachable_after: int = Field(
        3, ge=1, description="Consecutive source failures of a camera before a camera.unreachable anomaly"
    )
    max_cameras: int = Field(
        32_000, ge=1, description="Cameras whose analysis state (quality reference, rule state) is kept, LRU"
    )
    latency_window: int = Field(2048, ge=16, description="Latest jobs the latency percentiles are computed over")
    consumer: str = Field("patrol", min_length=1, description="Consumer name prefix on the job queue")


class AnalyticsSettings(BaseModel):
    """All of the analytics' logic side, one block."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings, description="Patrol scheduler")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="Patrol workers")
    watch: WatchSettings = Field(default_factory=WatchSettings, description="Watch mode")
    quality: QualitySettings = Field(default_factory=QualitySettings, description="Video quality diagnosis")
    rules: RuleSettings = Field(default_factory=RuleSettings, description="Detection rules and tracker")
