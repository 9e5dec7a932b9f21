"""Frames and detections: the records that flow through the analytics pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]  # H x W x 3, BGR


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture from one camera. ``image`` may be decoded at reduced scale: ``scale`` is the
    factor from source pixels to ``image`` pixels (0.25 for a 1920x1080 JPEG decoded at 1/4)."""

    camera_id: str
    image: Image
    captured_at: float  # epoch seconds
    seq: int = 0  # per-source frame counter
    source: str = "file"  # snapshot | rtsp | file
    scale: float = 1.0
    jpeg: bytes | None = field(default=None, repr=False)  # the original JPEG when there was one


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object, in pixel coordinates of ``Frame.image``."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str
