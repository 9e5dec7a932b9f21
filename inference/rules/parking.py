"""No-parking: a vehicle that stays put inside a no-parking zone longer than ``dwell_s``.

"Stays put" means its box overlaps the box seen before with IoU >= ``parking_iou`` (boxes kept in
normalised coordinates, so a frame decoded at another scale still matches). This works across
patrol visits minutes apart as well as across stream frames: the state is kept per camera and
zone. A vehicle not seen again within ``parking_max_gap_s`` is forgotten (a single missed
detection on one visit does not reset the clock); one that moved starts over. A frame older than
the latest one seen (the wall clock stepped back) moves every candidate's times back with it, so
stays go on counting (from the latest frame) instead of turning negative for the step's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xueliang.inference.frames import Detection
from xueliang.inference.rules.base import Observation, RuleHit, Seen, in_zone
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.tracker import Floats, greedy_match, iou_matrix
from xueliang.inference.zones import Zone, ZoneKind, active_at

MAX_CANDIDATES = 64  # per zone; beyond this the longest unseen are forgotten first


@dataclass(slots=True)
class Parked:
    """A vehicle candidate: where it stands (normalised box), since when, when last seen."""

    box: tuple[float, float, float, float]
    label: str
    first_seen: float
    last_seen: float
    detection: Detection


def _normalised(detections: list[Detection], size: tuple[int, int]) -> Floats:
    width, height = size
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.array([(d.x1, d.y1, d.x2, d.y2) for d in detections], dtype=np.float64).reshape(-1, 4) / scale


class ParkingMonitor:
    """Parked-vehicle candidates of one camera, per no-parking zone."""

    def __init__(self, settings: RuleSettings) -> None:
        self._settings = settings
        self._zones: dict[str, list[Parked]] = {}

    def candidates(self, zone_id: str) -> tuple[Parked, ...]:
        return tuple(self._zones.get(zone_id, ()))

    def forget(self, keep_zone_ids: set[str]) -> None:
        """Drop the state of zones no longer configured."""
        for zone_id in [z for z in self._zones if z not in keep_zone_ids]:
            del self._zones[zone_id]

    def observe(self, obs: Observation, zone: Zone) -> RuleHit | None:
        """Update the zone's candidates with this frame; a hit when one has stayed long enough."""
        if zone.kind is not ZoneKind.NO_PARKING:
            return None
        s = self._settings
        now = obs.now
        latest = max((p.last_seen for kept in self._zones.values() for p in kept), default=now)
        if now < latest:
            for kept in self._zones.values():
                for p in kept:
                    p.first_seen += now - latest
                    p.last_seen += now - latest
        vehicles = in_zone(obs.detections, zone, obs.size, s)
        previous = [p for p in self._zones.get(zone.id, []) if now - p.last_seen <= s.parking_max_gap_s]
        boxes = _normalised(vehicles, obs.size)
        old = np.array([p.box for p in previous], dtype=np.float64).reshape(-1, 4)
        iou = iou_matrix(old, boxes)
        same_label = np.array([[p.label == v.label for v in vehicles] for p in previous], dtype=np.bool_)
        pairs = greedy_match(np.where(same_label.reshape(iou.shape), iou, 0.0), s.parking_iou)
        matched_new = {vi for _, vi in pairs}
        for pi, vi in pairs:
            previous[pi].last_seen = now
            previous[pi].detection = vehicles[vi]
            # keep the first box: a slow creep of a few pixels per visit must not look parked forever
        for vi, vehicle in enumerate(vehicles):
            if vi not in matched_new:
                x1, y1, x2, y2 = (float(v) for v in boxes[vi])
                previous.append(Parked((x1, y1, x2, y2), vehicle.label, now, now, vehicle))
        previous.sort(key=lambda p: p.last_seen, reverse=True)
        self._zones[zone.id] = previous[:MAX_CANDIDATES]

        if not active_at(zone, obs.local_time):
            return None
        dwell = s.parking_dwell_s if zone.dwell_s is None else zone.dwell_s
        parked = [p for p in previous if p.last_seen == now and now - p.first_seen >= dwell]
        if not parked:
            return None
        return RuleHit(
            rule="parking",
            zone=zone,
            value=round(max(now - p.first_seen for p in parked), 3),
            threshold=dwell,
            objects=tuple(Seen(p.detection) for p in parked),
            detail={"vehicles": float(len(parked))},
        )
