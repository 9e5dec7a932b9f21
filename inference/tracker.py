"""IoU tracker: stable ids for detections across the frames of one camera, and dwell times.

Association is two-stage, as in ByteTrack: detections scoring at least ``high_score`` are matched
to the live tracks first (greedy on IoU, same label only); the tracks left over then get a chance
at the low-score detections (an occluded person often scores low for a few frames), with a
stricter IoU. Unmatched high-score detections start new tracks; a track unmatched for
``max_age_s`` is dropped. IoU is computed for all pairs at once with numpy.

Each track remembers when it was first and last seen and, per zone, since when its foot point
(box bottom-centre) has been inside: ``Track.dwell_s(zone_id, now)``. Loitering needs this, so it
needs a continuous stream (watch mode): one frame per patrol visit cannot be tracked.

Frame times are wall-clock epoch seconds (``Frame.captured_at``). When they go back (the wall
clock stepped back), every stored time moves back with them so that the frame counts as taken
right after the last one: dwell times go on instead of turning negative for the length of the step.
A step forward looks like a gap in the stream and ages tracks out (dwell starts over).

One ``Tracker`` per camera; not thread-safe (a camera's frames are processed in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from xueliang.inference.frames import Detection
from xueliang.inference.rules.settings import TrackerSettings
from xueliang.inference.zones import Zone, contains, foot_point

Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class Track:
    """One object followed across frames. ``detection`` is its latest box."""

    track_id: int
    label: str
    detection: Detection
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre motion, pixels per second (smoothed)
    zone_since: dict[str, float] = field(default_factory=dict)  # zone id -> when the foot point entered
    zone_last_in: dict[str, float] = field(default_factory=dict)  # zone id -> last time seen inside

    def age_s(self, now: float) -> float:
        return now - self.first_seen

    def predicted(self, now: float) -> tuple[float, float, float, float]:
        """The box moved on by the track's velocity to ``now`` (constant-velocity prediction)."""
        d, dt = self.detection, now - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        return (d.x1 + dx, d.y1 + dy, d.x2 + dx, d.y2 + dy)

    def shift(self, seconds: float) -> None:
        """Move every stored time by ``seconds`` (the wall clock stepped)."""
        self.first_seen += seconds
        self.last_seen += seconds
        self.zone_since = {z: t + seconds for z, t in self.zone_since.items()}
        self.zone_last_in = {z: t + seconds for z, t in self.zone_last_in.items()}

    def dwell_s(self, zone_id: str, now: float) -> float:
        """Seconds this track has been inside ``zone_id`` (0 when it is not inside)."""
        since = self.zone_since.get(zone_id)
        return 0.0 if since is None else now - since


def iou_matrix(a: Floats, b: Floats) -> Floats:
    """IoU of every box of ``a`` (N x 4, x1 y1 x2 y2) with every box of ``b`` (M x 4): N x M."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: Floats = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return result


def boxes_of(detections: Sequence[Detection]) -> Floats:
    if not detections:
        return np.zeros((0, 4), dtype=np.float64)
    return np.array([(d.x1, d.y1, d.x2, d.y2) for d in detections], dtype=np.float64)


def greedy_match(iou: Floats, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (row, column) by descending IoU, each row and column used once, IoU >= ``min_iou``."""
    rows, cols = np.nonzero(iou >= min_iou)
    if len(rows) == 0:
        return []
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


class Tracker:
    """Tracks of one camera. ``update`` once per analysed frame, in time order."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self._settings = settings or TrackerSettings()
        self._tracks: list[Track] = []
        self._next_id = 1
        self._last_now: float | None = None  # time of the latest frame
        self.clock_steps_back = 0  # frames older than the one before (the wall clock stepped back)

    @property
    def tracks(self) -> tuple[Track, ...]:
        """All live tracks, reported or not yet."""
        return tuple(self._tracks)

    def update(
        self,
        detections: Sequence[Detection],
        now: float,
        *,
        frame_size: tuple[int, int] | None = None,
        zones: Sequence[Zone] = (),
    ) -> list[Track]:
        """Associate ``detections`` (seen at ``now``) with the tracks; return the confirmed tracks
        matched on this frame. With ``frame_size`` (width, height) and ``zones``, dwell times are
        updated from each track's foot point."""
        s = self._settings
        if self._last_now is not None and now < self._last_now:
            self.clock_steps_back += 1
            for track in self._tracks:
                track.shift(now - self._last_now)
        self._last_now = now
        self._tracks = [t for t in self._tracks if now - t.last_seen <= s.max_age_s]
        dets = [d for d in detections if d.score >= s.low_score]
        high = [i for i, d in enumerate(dets) if d.score >= s.high_score]
        low = [i for i, d in enumerate(dets) if d.score < s.high_score]

        pending = list(range(len(self._tracks)))  # indices of tracks not matched yet
        pairs = self._associate(pending, [dets[i] for i in high], s.match_iou, now)
        matched = self._take(pairs, pending, [dets[i] for i in high], now)
        used_dets, used_tracks = {di for _, di in pairs}, {ti for ti, _ in pairs}
        high_left = [i for k, i in enumerate(high) if k not in used_dets]
        pending = [t for k, t in enumerate(pending) if k not in used_tracks]
        pairs = self._associate(pending, [dets[i] for i in low], s.low_match_iou, now)
        matched += self._take(pairs, pending, [dets[i] for i in low], now)

        for i in high_left:
            det = dets[i]
            if det.score >= s.new_track_score:
                track = Track(self._next_id, det.label, det, first_seen=now, last_seen=now)
                self._next_id += 1
                self._tracks.append(track)
                matched.append(track)

        if frame_size is not None and zones:
            self._update_zones(matched, now, frame_size, zones)
        return [t for t in matched if t.hits >= s.min_hits]

    def _take(self, pairs: list[tuple[int, int]], pending: list[int], dets: list[Detection], now: float) -> list[Track]:
        taken: list[Track] = []
        smoothing = self._settings.velocity_smoothing
        for ti, di in pairs:
            track = self._tracks[pending[ti]]
            new, old, dt = dets[di], track.detection, now - track.last_seen
            if dt > 0:
                vx = ((new.x1 + new.x2) - (old.x1 + old.x2)) / 2.0 / dt
                vy = ((new.y1 + new.y2) - (old.y1 + old.y2)) / 2.0 / dt
                a = smoothing if track.hits > 1 else 1.0
                track.velocity = (a * vx + (1 - a) * track.velocity[0], a * vy + (1 - a) * track.velocity[1])
            track.detection = new
            track.last_seen = now
            track.hits += 1
            taken.append(track)
        return taken

    def _associate(
        self, track_idx: list[int], dets: list[Detection], min_iou: float, now: float
    ) -> list[tuple[int, int]]:
        if not track_idx or not dets:
            return []
        tracks = [self._tracks[i] for i in track_idx]
        predicted = np.array([t.predicted(now) for t in tracks], dtype=np.float64)
        iou = iou_matrix(predicted, boxes_of(dets))
        same_label = np.array([[t.label == d.label for d in dets] for t in tracks], dtype=np.bool_)
        return greedy_match(np.where(same_label, iou, 0.0), min_iou)

    def _update_zones(
        self, tracks: Sequence[Track], now: float, frame_size: tuple[int, int], zones: Sequence[Zone]
    ) -> None:
        if not tracks:
            return
        feet = [foot_point(t.detection, *frame_size) for t in tracks]
        grace = self._settings.zone_grace_s
        for zone in zones:
            for track, (x, y) in zip(tracks, feet, strict=True):
                if contains(zone.polygon, x, y):
                    track.zone_since.setdefault(zone.id, now)
                    track.zone_last_in[zone.id] = now
                elif now - track.zone_last_in.get(zone.id, now - grace - 1.0) > grace:
                    track.zone_since.pop(zone.id, None)
                    track.zone_last_in.pop(zone.id, None)
