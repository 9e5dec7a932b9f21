"""JPEG decode for frame sources: size from the SOF marker, reduced-scale decode, corruption checks.

libjpeg can decode at 1/2, 1/4 or 1/8 scale by dropping DCT coefficients
(``cv2.IMREAD_REDUCED_COLOR_N``): a 1920x1080 snapshot for a 416x416 model input needs only
480x270, and the decode costs half as much. The factor is chosen from the JPEG's own size, read
from its SOF header without decoding, and the model input size: the largest factor that still
leaves at least the pixels the letterbox will keep.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np

from xueliang.inference.errors import CorruptFrame
from xueliang.inference.frames import Image

# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: no length field
_SOS = 0xDA
_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the SOF marker, or None when ``data`` is not a JPEG with a frame header."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _SOF:
            if i + 9 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return (width, height) if width and height else None
        if marker == _SOS or length < 2:
            return None  # image data began without a frame header
        i += 2 + length
    return None


def reduction_for(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """Largest of 1, 2, 4, 8 that keeps the decoded image at least as big as the letterboxed one."""
    if target is None:
        return 1
    width, height = size
    fit = min(target[0] / width, target[1] / height)  # the letterbox's resize ratio
    if fit >= 1.0:
        return 1
    factor = 1
    while factor < 8 and factor * 2 <= 1.0 / fit:
        factor *= 2
    return factor


def decode_jpeg(data: bytes, *, target: tuple[int, int] | None = None, what: str = "frame") -> tuple[Image, float]:
    """Decode ``data`` (BGR), at reduced scale when ``target`` (model input width, height) allows.

    Returns the image and its scale (decoded width / JPEG width). Raises :class:`CorruptFrame`
    naming ``what`` for bytes that are no JPEG, are truncated, or that the decoder rejects.
    """
    size = jpeg_size(data)
    if size is None:
        raise CorruptFrame(f"{what}: not a JPEG (no SOI/SOF header in {len(data)} bytes)")
    if not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        raise CorruptFrame(f"{what}: truncated JPEG ({len(data)} bytes, no end-of-image marker)")
    factor = reduction_for(size, target)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED[factor])
    except cv2.error as exc:  # e.g. a header over OpenCV's pixel limit
        raise CorruptFrame(
            f"{what}: the JPEG decoder refused {len(data)} bytes ({size[0]}x{size[1]}): {exc.err or exc}"
        ) from exc
    if image is None or image.ndim != 3:
        raise CorruptFrame(f"{what}: the JPEG decoder rejected {len(data)} bytes ({size[0]}x{size[1]})")
    return cast(Image, image), image.shape[1] / size[0]
