"""What a received frame should hold: the frame of vtest.avi it shows, and the people on it.

A camera (the simulator) sends the real footage after a trip through H.264 or JPEG, resized, at a
clip position the test does not choose. :func:`clip_frames_like` finds, for each received picture,
the clip frame with the smallest mean squared difference (small grey copies of both), and returns
that clip frame at the received picture's size. :func:`assert_people_as_on_the_clip` then holds the
detector's answer on the received picture against its answer on that clip frame.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tests.inference.logic_fixtures import VTEST, read_clip_frames
from xueliang.inference.detector import Detector
from xueliang.inference.frames import Detection, Frame, Image
from xueliang.inference.tracker import boxes_of, iou_matrix

THUMB = (96, 72)  # (width, height) of the grey copies compared; the clip is 4:3
# mean squared grey difference of the same picture after H.264 / JPEG and resizing: under 2 here;
# the clip's neighbouring frames differ by 20 or more
SAME_PICTURE_MSE = 8.0


@dataclass(frozen=True, slots=True)
class ClipMatch:
    index: int  # frame index in vtest.avi
    mse: float  # mean squared difference of the grey thumbnails
    image: Image  # that clip frame, resized to the received picture's size


def _thumb(image: Image) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA), dtype=np.float32)


@functools.cache
def _clip_thumbs() -> np.ndarray:
    cap = cv2.VideoCapture(str(VTEST))
    thumbs = []
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            thumbs.append(_thumb(image).astype(np.uint8))
    finally:
        cap.release()
    if not thumbs:
        raise ValueError(f"{VTEST} gave no frame")
    return np.stack(thumbs)


def clip_frames_like(images: Sequence[Image]) -> list[ClipMatch]:
    """For each picture, the clip frame most like it (smallest mean squared grey difference)."""
    thumbs = _clip_thumbs().astype(np.float32)
    best: list[tuple[int, float]] = []
    for image in images:
        mse = ((thumbs - _thumb(image)) ** 2).mean(axis=(1, 2))
        index = int(np.argmin(mse))
        best.append((index, float(mse[index])))
    frames = read_clip_frames({index for index, _ in best})
    matches = []
    for image, (index, mse) in zip(images, best, strict=True):
        height, width = image.shape[:2]
        clip = frames[index]
        if clip.shape[:2] != (height, width):
            clip = np.asarray(cv2.resize(clip, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        matches.append(ClipMatch(index, mse, clip))
    return matches


def assert_people_as_on_the_clip(
    frames: Sequence[Frame], people: Sequence[Sequence[Detection]], detector: Detector, min_score: float
) -> None:
    """Each frame shows a frame of the footage, its people boxes lie inside it, and the detector finds
    as many people (within one) at the same places (IoU 0.5) as on that clip frame at that size."""
    matches = clip_frames_like([f.image for f in frames])
    for frame, found, match in zip(frames, people, matches, strict=True):
        height, width = frame.image.shape[:2]
        where = f"{frame.camera_id} frame {frame.seq} (clip frame {match.index}, mse {match.mse:.2f})"
        assert match.mse < SAME_PICTURE_MSE, f"{where}: not a picture of the footage"
        for d in found:
            assert 0 <= d.x1 < d.x2 <= width and 0 <= d.y1 < d.y2 <= height, (where, d)
        reference = Frame("clip", match.image, 0.0, seq=match.index)
        [expected] = detector.detect_sync([reference], classes=frozenset({"person"}), min_score=min_score)
        assert abs(len(found) - len(expected)) <= 1, (where, len(found), len(expected))
        if found and expected:
            iou = iou_matrix(boxes_of(list(found)), boxes_of(expected))
            placed = int((iou.max(axis=1) >= 0.5).sum())
            assert placed >= min(len(found), len(expected)) - 1, (where, placed, len(found), len(expected))
