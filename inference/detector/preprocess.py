"""Letterbox preprocessing: fit a frame into the model's input without distorting it, and map boxes back.

Each adapter states its own :class:`Preprocess` (placement, pad value, channel order,
normalisation); :func:`letterbox` turns one BGR image into a CHW float32 tensor and the
:class:`Letterbox` that maps model-input coordinates back to the image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from xueliang.inference.frames import Image

Tensor = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How one model family wants its input."""

    width: int
    height: int
    placement: Literal["top_left", "centre"] = "top_left"
    pad_value: int = 114
    rgb: bool = False  # False: BGR, as OpenCV decodes
    mean: tuple[float, float, float] | None = None  # per channel, in the model's channel order, 0-255 scale
    std: tuple[float, float, float] | None = None
    scale: float = 1.0  # multiplies after mean/std (1/255 for models that want 0-1)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where the image landed in the model input: ``input = image * ratio + (pad_x, pad_y)``."""

    ratio: float
    pad_x: int
    pad_y: int
    image_width: int
    image_height: int

    def to_image(self, boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``[N, 4]`` x1,y1,x2,y2 boxes from model-input to image pixels, clipped to the image."""
        out = np.empty_like(boxes)
        inv = 1.0 / self.ratio
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) * inv
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) * inv
        np.clip(out[:, 0::2], 0.0, float(self.image_width), out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, float(self.image_height), out=out[:, 1::2])
        return out

    def to_input(self, boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``[N, 4]`` boxes from image pixels to model-input pixels (the inverse, for tests and tools)."""
        out = np.empty_like(boxes)
        out[:, 0::2] = boxes[:, 0::2] * self.ratio + self.pad_x
        out[:, 1::2] = boxes[:, 1::2] * self.ratio + self.pad_y
        return out


def letterbox(image: Image, spec: Preprocess, out: Tensor | None = None) -> tuple[Tensor, Letterbox]:
    """Resize ``image`` (H x W x 3 BGR uint8) into ``spec``'s input size keeping its aspect ratio.

    Returns the CHW float32 tensor (written into ``out`` when given, e.g. one slot of a batch) and
    the :class:`Letterbox` to map boxes back.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 BGR image, got shape {image.shape}")
    h, w = int(image.shape[0]), int(image.shape[1])
    ratio = min(spec.width / w, spec.height / h)
    new_w = max(1, min(spec.width, round(w * ratio)))
    new_h = max(1, min(spec.height, round(h * ratio)))
    if spec.placement == "centre":
        pad_x, pad_y = (spec.width - new_w) // 2, (spec.height - new_h) // 2
    else:
        pad_x = pad_y = 0
    canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
    if (new_w, new_h) == (w, h):
        canvas[pad_y : pad_y + h, pad_x : pad_x + w] = image
    else:
        # bilinear, as the models were trained; INTER_AREA costs 4x more (big JPEGs are DCT-scaled already)
        view = canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w]
        cv2.resize(image, (new_w, new_h), dst=view, interpolation=cv2.INTER_LINEAR)
    if spec.rgb:
        cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB, dst=canvas)
    if out is None:
        out = np.empty((3, spec.height, spec.width), dtype=np.float32)
    chw = canvas.transpose(2, 0, 1)
    if spec.mean is None and spec.std is None:
        if spec.scale == 1.0:
            out[...] = chw
        else:
            np.multiply(chw, np.float32(spec.scale), out=out, dtype=np.float32)
    else:
        mean = np.asarray(spec.mean or (0.0, 0.0, 0.0), dtype=np.float32).reshape(3, 1, 1)
        inv_std = (1.0 / np.asarray(spec.std or (1.0, 1.0, 1.0), dtype=np.float32)).reshape(3, 1, 1)
        np.subtract(chw, mean, out=out, dtype=np.float32)
        out *= inv_std * np.float32(spec.scale)
    return out, Letterbox(ratio=ratio, pad_x=pad_x, pad_y=pad_y, image_width=w, image_height=h)
