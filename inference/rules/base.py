"""What a rule looks at (``Observation``) and what it reports (``RuleHit``), plus the small
selection helpers every rule shares. Records and pure functions only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from xueliang.inference.frames import Detection, Frame
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.tracker import Track
from xueliang.inference.zones import Zone, ZoneKind, contains, foot_point


@dataclass(frozen=True, slots=True)
class Seen:
    """An object that made a rule fire: its box, and its track id when it is tracked."""

    detection: Detection
    track_id: int | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One analysed frame of one camera: what the detector saw, when (epoch and local time), and
    the tracks when the frame comes from a continuous stream (``None`` on a patrol snapshot)."""

    camera_id: str
    frame: Frame
    detections: tuple[Detection, ...]
    local_time: datetime
    tracks: tuple[Track, ...] | None = None

    @property
    def now(self) -> float:
        return self.frame.captured_at

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of ``frame.image`` (the coordinates detections are in)."""
        height, width = self.frame.image.shape[:2]
        return int(width), int(height)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule fired on a zone: the measured value against its threshold, and the objects why."""

    rule: str  # intrusion | crowd | loitering | parking
    zone: Zone
    value: float
    threshold: float
    objects: tuple[Seen, ...] = ()
    detail: dict[str, float | str] = field(default_factory=dict)


def zone_labels(zone: Zone, settings: RuleSettings) -> tuple[str, ...]:
    """The labels a zone counts: its own, or the default of its kind."""
    if zone.labels:
        return zone.labels
    return settings.vehicle_labels if zone.kind is ZoneKind.NO_PARKING else settings.person_labels


def zone_min_score(zone: Zone, settings: RuleSettings) -> float:
    return settings.min_score if zone.min_score is None else zone.min_score


def in_zone(
    detections: Sequence[Detection], zone: Zone, size: tuple[int, int], settings: RuleSettings
) -> list[Detection]:
    """Detections of the zone's labels, scoring enough, whose foot point is inside the zone."""
    labels, min_score = zone_labels(zone, settings), zone_min_score(zone, settings)
    return [
        d
        for d in detections
        if d.label in labels and d.score >= min_score and contains(zone.polygon, *foot_point(d, *size))
    ]
