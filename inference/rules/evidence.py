"""Evidence for anomalies: the frame as JPEG (not annotated) and the boxes that matter, in pixel
coordinates of that JPEG; and the step from a ``RuleHit`` to an ``Anomaly``.

The JPEG is the camera's own when the frame came with one (``Frame.jpeg``, full resolution: boxes
are scaled up by ``1 / Frame.scale``); otherwise the decoded image is encoded once per frame,
however many anomalies share it. Encoding is CPU work: call this from an executor, never on the
event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import cv2

from xueliang.inference.anomaly import Anomaly, Box, Evidence
from xueliang.inference.errors import InferenceError
from xueliang.inference.frames import Frame
from xueliang.inference.rules.base import RuleHit, Seen


class EvidenceError(InferenceError):
    """A frame could not be encoded as evidence JPEG."""


class FrameEvidence:
    """Evidence builder for one frame: encodes at most once, scales boxes to the JPEG."""

    def __init__(self, frame: Frame, *, jpeg_quality: int = 85, max_boxes: int = 50) -> None:
        self._frame = frame
        self._quality = jpeg_quality
        self._max_boxes = max_boxes
        self._jpeg: bytes | None = None
        height, width = frame.image.shape[:2]
        if frame.jpeg is not None and frame.scale > 0:
            self._factor = 1.0 / frame.scale
        else:
            self._factor = 1.0
        self._size = (round(width * self._factor), round(height * self._factor))

    @property
    def jpeg(self) -> bytes:
        if self._jpeg is None:
            if self._frame.jpeg is not None:
                self._jpeg = self._frame.jpeg
            else:
                ok, buffer = cv2.imencode(".jpg", self._frame.image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
                if not ok:
                    raise EvidenceError(
                        f"camera {self._frame.camera_id}: frame {self._frame.seq} could not be encoded as JPEG",
                        camera_id=self._frame.camera_id,
                    )
                self._jpeg = buffer.tobytes()
        return self._jpeg

    def boxes(self, objects: Sequence[Seen]) -> tuple[Box, ...]:
        f = self._factor
        ranked = sorted(objects, key=lambda s: s.detection.score, reverse=True)[: self._max_boxes]
        return tuple(
            Box(
                x1=s.detection.x1 * f,
                y1=s.detection.y1 * f,
                x2=s.detection.x2 * f,
                y2=s.detection.y2 * f,
                label=s.detection.label,
                score=min(max(s.detection.score, 0.0), 1.0),
                track_id=s.track_id,
            )
            for s in ranked
        )

    def evidence(self, objects: Sequence[Seen] = ()) -> Evidence:
        width, height = self._size
        return Evidence(jpeg=self.jpeg, width=width, height=height, boxes=self.boxes(objects))


def observed_at(frame: Frame) -> datetime:
    return datetime.fromtimestamp(frame.captured_at, tz=UTC)


def hit_to_anomaly(hit: RuleHit, frame: Frame, evidence: FrameEvidence, *, mode: str) -> Anomaly:
    """The anomaly for ``hit``: rule, zone, value against threshold, evidence with its boxes."""
    detail: dict[str, float | str] = {"zone_name": hit.zone.name, "zone_kind": hit.zone.kind.value, "mode": mode}
    detail.update(hit.detail)
    return Anomaly(
        camera_id=frame.camera_id,
        rule=hit.rule,
        observed_at=observed_at(frame),
        value=hit.value,
        threshold=hit.threshold,
        zone=hit.zone.id,
        detail=detail,
        evidence=evidence.evidence(hit.objects),
    )
