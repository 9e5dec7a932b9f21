"""Helpers of the analytics' logic tests (patrol, quality, rules, tracker, zones, pipeline, motion).

Real frames of ``vtest.avi`` (768x576, 10 fps: a campus path, pedestrians, a parked car and a
van at the top right) and the real detector (yolox_nano) on them, each computed once per session
(module-level caches), plus crafted faulty variants of a frame.

What yolox_nano sees (min_score 0.3): frame 100 has 5 people on the paved walkway, one far away
on the upper path, a car (731,51)-(767,94) and a van (651,42)-(724,99) parked at the top right;
a sign post at (30,110)-(47,142) is taken for a person on every frame, so no test zone covers it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from xueliang.inference.detector import Detector
from xueliang.inference.frames import Detection, Frame, Image
from xueliang.inference.settings import DetectorSettings
from xueliang.inference.zones import Zone, ZoneKind

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
VTEST = SHARED / "data" / "vtest.avi"
YOLOX = SHARED / "models" / "yolox_nano.onnx"
FPS = 10.0
TZ = ZoneInfo("Asia/Shanghai")
# Monday 6 May 2024, 14:00 local: outside every default category window
T0 = datetime(2024, 5, 6, 14, 0, tzinfo=TZ).timestamp()

# indices kept in memory: a few stills and a 24 s sequence at 10/3 fps
STILLS = (0, 100, 300, 600, 700)
SEQUENCE = tuple(range(0, 240, 3))

# the paved walkway, without the upper path and the sign post (normalised x, y)
WALKWAY = ((0.10, 0.30), (0.60, 0.22), (0.95, 0.20), (1.00, 0.90), (0.60, 0.75), (0.10, 0.50))
# the grass at the bottom left, where nobody walks in the clip
GRASS = ((0.0, 0.62), (0.35, 0.62), (0.35, 1.0), (0.0, 1.0))
# the parking spots at the top right with the car and the van
PARKING = ((0.80, 0.05), (1.00, 0.05), (1.00, 0.22), (0.80, 0.22))


class FakeClock:
    """An injectable clock (epoch seconds) the test moves by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def read_clip_frames(wanted: set[int]) -> dict[int, Image]:
    """Those frames of vtest.avi, in one sequential pass (seeking an MS-MPEG4 file is not exact)."""
    cap = cv2.VideoCapture(str(VTEST))
    frames: dict[int, Image] = {}
    try:
        for index in range(max(wanted) + 1):
            ok, image = cap.read()
            if not ok:
                raise ValueError(f"{VTEST} has no frame {index}")
            if index in wanted:
                frames[index] = np.asarray(image, dtype=np.uint8)
    finally:
        cap.release()
    return frames


@functools.cache
def _clip() -> dict[int, Image]:
    return read_clip_frames(set(STILLS) | set(SEQUENCE))


def clip_image(index: int) -> Image:
    """A copy of frame ``index`` of vtest.avi (one of ``STILLS`` or ``SEQUENCE``)."""
    return _clip()[index].copy()


def clip_frame(index: int, camera_id: str = "cam-1", *, t0: float = T0, image: Image | None = None) -> Frame:
    """Frame ``index`` as a ``Frame`` captured at ``t0`` plus the clip time."""
    return Frame(
        camera_id=camera_id,
        image=clip_image(index) if image is None else image,
        captured_at=t0 + index / FPS,
        seq=index,
    )


@functools.cache
def _detector() -> Detector:
    return Detector(DetectorSettings(model_path=YOLOX, min_score=0.3))


@functools.cache
def detections(index: int) -> tuple[Detection, ...]:
    """The real detector's answer on frame ``index`` (cached for the session)."""
    frame = Frame(camera_id="cache", image=_clip()[index], captured_at=0.0)
    return tuple(_detector().detect_sync([frame])[0])


def detector_settings() -> DetectorSettings:
    return DetectorSettings(model_path=YOLOX, min_score=0.3)


def zone(kind: ZoneKind, polygon: tuple[tuple[float, float], ...] = WALKWAY, **kw: object) -> Zone:
    return Zone.model_validate(
        {"id": f"{kind.value}-1", "name": "测试区 / test zone", "kind": kind, "polygon": polygon, **kw}
    )


# -- crafted variants of a normal frame ---------------------------------------------------------


def black(image: Image) -> Image:
    return np.full_like(image, 4)


def blurred(image: Image) -> Image:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), 4.0), dtype=np.uint8)


def covered(image: Image, fraction: float = 0.7) -> Image:
    """A flat grey rectangle over ``fraction`` of the picture, centred (a bag, a cloth)."""
    out = image.copy()
    h, w = out.shape[:2]
    side = np.sqrt(fraction)
    ch, cw = int(h * side), int(w * side)
    y, x = (h - ch) // 2, (w - cw) // 2
    out[y : y + ch, x : x + cw] = 128
    return out


def tinted(image: Image) -> Image:
    """A strong red-yellow cast (a failing IR-cut filter / white balance)."""
    out = image.astype(np.float32)
    out[..., 2] = np.minimum(out[..., 2] * 1.6, 255)
    out[..., 0] *= 0.6
    return out.astype(np.uint8)


def blue_tinted(image: Image) -> Image:
    """A blue cast; on this green-yellow scene it moves the mean colour past neutral."""
    out = image.astype(np.float32)
    out[..., 0] = np.minimum(out[..., 0] * 1.8 + 40, 255)
    return out.astype(np.uint8)


def rotated(image: Image, degrees: float = 20.0) -> Image:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)


def shifted(image: Image, fraction_x: float) -> Image:
    h, w = image.shape[:2]
    matrix = np.array([[1, 0, w * fraction_x], [0, 1, 0]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)


def jpeg(image: Image, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()
