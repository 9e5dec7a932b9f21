"""Settings of the frame-level analytics: video quality diagnosis, the tracker and the rules.

Three sections, each a pydantic model with ``extra="forbid"`` and every field described. The
defaults were chosen by measurement on real frames of ``vtest.avi`` and crafted faulty variants
(see ``tests/inference/test_quality_checks.py`` and ``benchmarks/quality.py``).
"""

from __future__ import annotations

import zoneinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


def known_timezone(value: str) -> str:
    """Validator: ``value`` names a time zone this machine knows (IANA name)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as 'Asia/Shanghai'") from exc
    return value


class QualitySettings(BaseModel):
    """Video quality diagnosis run on every patrol frame (on a small grey copy: cheap)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="Run the quality checks on every patrol frame")
    width: int = Field(160, ge=32, le=1280, description="Width of the small copy most checks work on, pixels")
    blur_width: int = Field(
        320, ge=64, le=1920, description="Width of the copy the blur check works on (finer than `width`), pixels"
    )
    black_max_mean: float = Field(25.0, ge=0, le=255, description="black: mean luminance (0-255) below this ...")
    black_max_std: float = Field(10.0, ge=0, le=128, description="... and luminance standard deviation below this")
    frozen_max_diff: float = Field(
        0.25,
        ge=0,
        le=255,
        description="frozen: mean absolute grey difference to the previous visit's thumbnail (width / 2) "
        "below this; identical frames measure 0, sensor noise of std 2 about 0.2, passers-by 1 and more",
    )
    blur_min_sharpness: float = Field(
        0.1,
        ge=0,
        description="blur: variance of the Laplacian divided by the grey variance (contrast-independent, "
        "measured at `blur_width`) below this; sharp outdoor scenes measure about 0.4-0.5",
    )
    occluded_min_fraction: float = Field(
        0.5, gt=0, le=1, description="occluded: fraction of uniform (textureless) or saturated blocks at or above this"
    )
    occluded_grid: tuple[int, int] = Field((16, 12), description="Blocks across and down the small copy")
    occluded_block_rel_std: float = Field(
        0.04, ge=0, le=1, description="A block is uniform when its std is below this fraction of the frame's std"
    )
    occluded_block_min_std: float = Field(1.0, ge=0, description="... or below this absolute std (grey levels)")
    cast_min_factor: float = Field(
        1.8,
        gt=0,
        description="colour cast: distance of the mean (a, b) from neutral divided by the (a, b) spread "
        "(colour cast factor K) at or above this",
    )
    cast_min_distance: float = Field(
        12.0, ge=0, description="colour cast: the mean (a, b) at least this far from neutral (Lab units) to count"
    )
    cast_max_shift: float = Field(
        25.0, gt=0, description="colour cast: mean (a, b) moved this far from the reference frame's (Lab units)"
    )
    scene_min_similarity: float = Field(
        0.3,
        ge=-1,
        le=1,
        description="scene changed: structural similarity to the reference (high-pass correlation, in place or "
        "after aligning small shifts) below this; normal frames with passers-by measure 0.5-0.8",
    )
    scene_max_shift: float = Field(
        0.08, gt=0, le=1, description="scene changed: the picture moved by this fraction of its size or more"
    )
    reference_refresh_s: float = Field(
        3600.0,
        gt=0,
        description="A good visit that still matches the reference replaces it after this long (follows slow "
        "changes such as daylight)",
    )


class TrackerSettings(BaseModel):
    """The IoU tracker (two-stage association by score, ByteTrack style) used in watch mode."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    high_score: float = Field(0.5, ge=0, le=1, description="Detections at or above this are matched first")
    low_score: float = Field(0.15, ge=0, le=1, description="Detections below this are ignored")
    new_track_score: float = Field(0.55, ge=0, le=1, description="An unmatched detection starts a track from this")
    match_iou: float = Field(0.3, gt=0, le=1, description="Least IoU to match a high-score detection to a track")
    low_match_iou: float = Field(0.5, gt=0, le=1, description="Least IoU to match a low-score detection to a track")
    max_age_s: float = Field(3.0, gt=0, description="A track not matched for this long is dropped")
    velocity_smoothing: float = Field(
        0.5, gt=0, le=1, description="Weight of the newest motion in a track's velocity (constant-velocity prediction)"
    )
    min_hits: int = Field(2, ge=1, description="Matches before a track is reported (filters one-frame ghosts)")
    zone_grace_s: float = Field(
        1.0, ge=0, description="A track outside a zone for less than this keeps its dwell time in it"
    )


class RuleSettings(BaseModel):
    """Defaults of the detection rules; each zone may override its own thresholds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timezone: str = Field("Asia/Shanghai", description="Local time zone of zone active hours (IANA name)")
    person_labels: tuple[str, ...] = Field(("person",), description="Labels counted as people")
    vehicle_labels: tuple[str, ...] = Field(
        ("car", "truck", "bus", "motorcycle"), description="Labels counted as vehicles (no-parking zones)"
    )
    min_score: float = Field(0.4, ge=0, le=1, description="Least detection score a rule considers")
    crowd_min_count: int = Field(5, ge=1, description="crowd: people in the zone at or above this")
    loitering_dwell_s: float = Field(60.0, gt=0, description="loitering: a tracked person in the zone this long")
    parking_dwell_s: float = Field(300.0, gt=0, description="no_parking: a vehicle staying this long")
    parking_iou: float = Field(
        0.6, gt=0, le=1, description="no_parking: least IoU between visits for a vehicle to count as not moved"
    )
    parking_max_gap_s: float = Field(
        1200.0, gt=0, description="no_parking: a parked vehicle not seen for this long is forgotten"
    )
    max_boxes: int = Field(50, ge=1, description="Most boxes attached to one anomaly's evidence")
    jpeg_quality: int = Field(85, ge=10, le=100, description="JPEG quality of evidence encoded from raw frames")
    tracker: TrackerSettings = Field(default_factory=TrackerSettings, description="Tracker (watch mode)")

    _known_zone = field_validator("timezone")(known_timezone)
