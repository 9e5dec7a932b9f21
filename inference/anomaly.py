"""What the analytics hand to the case side: the ``Anomaly`` record and its evidence.

An anomaly is one observation that something is wrong at one camera (or sensor) at one moment:
a rule fired on a frame, a quality check failed, a camera went offline. The events part
aggregates many of them into one incident. Records only; no behaviour.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Box(BaseModel):
    """A detection in pixel coordinates of the evidence frame."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float = Field(ge=0.0, le=1.0)
    track_id: int | None = None


class Evidence(BaseModel):
    """The frame the anomaly was seen on (JPEG, not annotated) and the boxes that matter."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    jpeg: bytes = b""
    width: int = 0
    height: int = 0
    boxes: tuple[Box, ...] = ()


class Anomaly(BaseModel):
    """One observation. ``rule`` names what fired, with a dotted family prefix:

    - ``intrusion``, ``crowd``, ``loitering``, ``parking``: detection rules (``zone`` set);
    - ``quality.black``, ``quality.frozen``, ``quality.blur``, ``quality.occluded``,
      ``quality.colour_cast``, ``quality.scene_changed``: video quality diagnosis;
    - ``camera.offline``, ``camera.auth_failed``, ...: camera health (from the ONVIF side);
    - ``sensor.<kind>``: IoT sensor alarms (later).

    ``value`` is the rule's measured value (people counted, seconds dwelt, Laplacian variance, ...)
    and ``threshold`` what it was compared with.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    camera_id: str
    rule: str
    observed_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="a time without a zone is UTC")
    value: float = 0.0
    threshold: float | None = None
    zone: str = ""
    detail: dict[str, float | str] = Field(default_factory=dict)
    evidence: Evidence | None = None
    source: str = Field("video", description="video | camera | sensor")

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        """Always with a zone: a naive time (a sensor, an old client) is taken as UTC, as the case
        side reads it, so comparing it with the aggregator's aware clock cannot raise."""
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
