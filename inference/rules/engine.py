"""The rules of one camera, run together on one analysed frame.

``CameraRules`` keeps the camera's rule state (parked-vehicle candidates, and in watch mode the
tracker) and runs every zone's rule on a frame's detections. ``continuous=True`` (watch mode)
feeds the tracker, which loitering needs; on patrol snapshots loitering zones are skipped and
counted in ``skipped_loitering`` (put such cameras under watch). All of this is CPU work on small
arrays: run it from an executor together with the detector's post-processing or quality checks.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import datetime

from xueliang.inference.anomaly import Anomaly
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.rules.base import Observation, RuleHit
from xueliang.inference.rules.evidence import FrameEvidence, hit_to_anomaly
from xueliang.inference.rules.loitering import loitering
from xueliang.inference.rules.parking import ParkingMonitor
from xueliang.inference.rules.presence import crowd, intrusion
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.tracker import Tracker
from xueliang.inference.zones import Zone, ZoneKind


class CameraRules:
    """Rule state and evaluation for one camera."""

    def __init__(self, camera_id: str, settings: RuleSettings | None = None) -> None:
        self.camera_id = camera_id
        self._settings = settings or RuleSettings()
        self._tz = zoneinfo.ZoneInfo(self._settings.timezone)
        self._parking = ParkingMonitor(self._settings)
        self._tracker: Tracker | None = None
        self.skipped_loitering = 0  # loitering zones not evaluated on patrol snapshots

    @property
    def parking(self) -> ParkingMonitor:
        return self._parking

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(self._settings.tracker)
        return self._tracker

    def local_time(self, epoch_s: float) -> datetime:
        return datetime.fromtimestamp(epoch_s, tz=self._tz)

    def evaluate(
        self, frame: Frame, detections: Sequence[Detection], zones: Sequence[Zone], *, continuous: bool = False
    ) -> list[RuleHit]:
        """Every zone's rule on this frame. ``continuous``: the frame is one of a stream (tracked)."""
        dets = tuple(detections)
        tracks = None
        if continuous:
            height, width = frame.image.shape[:2]
            tracks = tuple(
                self.tracker.update(dets, frame.captured_at, frame_size=(int(width), int(height)), zones=zones)
            )
        obs = Observation(frame.camera_id, frame, dets, self.local_time(frame.captured_at), tracks)
        self._parking.forget({z.id for z in zones if z.kind is ZoneKind.NO_PARKING})
        hits: list[RuleHit] = []
        for zone in zones:
            hit: RuleHit | None
            if zone.kind is ZoneKind.INTRUSION:
                hit = intrusion(obs, zone, self._settings)
            elif zone.kind is ZoneKind.CROWD:
                hit = crowd(obs, zone, self._settings)
            elif zone.kind is ZoneKind.LOITERING:
                if tracks is None:
                    self.skipped_loitering += 1
                    continue
                hit = loitering(obs, zone, self._settings)
            else:
                hit = self._parking.observe(obs, zone)
            if hit is not None:
                hits.append(hit)
        return hits

    def anomalies(
        self,
        frame: Frame,
        detections: Sequence[Detection],
        zones: Sequence[Zone],
        *,
        continuous: bool = False,
        evidence: FrameEvidence | None = None,
    ) -> list[Anomaly]:
        """``evaluate`` and turn each hit into an ``Anomaly`` with evidence (encodes a JPEG when a
        rule fired and the frame has none: CPU work, call off the event loop)."""
        hits = self.evaluate(frame, detections, zones, continuous=continuous)
        if not hits:
            return []
        ev = evidence or FrameEvidence(
            frame, jpeg_quality=self._settings.jpeg_quality, max_boxes=self._settings.max_boxes
        )
        mode = "watch" if continuous else "patrol"
        return [hit_to_anomaly(hit, frame, ev, mode=mode) for hit in hits]
