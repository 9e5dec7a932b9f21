"""Motion gate: a cheap test of "did anything change?" in front of the detector (watch mode).

Two methods, chosen by ``MotionSettings.method``, both on a small grey copy (``width`` px):

- ``diff`` (default): blur, absolute difference with the previous frame, fraction of pixels that
  changed by ``pixel_threshold`` or more. No model to learn, nothing to warm up; the cheapest
  (``benchmarks/quality.py`` prints both methods' cost and how often they agree).
- ``mog2``: OpenCV's MOG2 background subtractor; steadier against flicker, needs ``mog2_history``
  frames to learn and costs more.

One ``MotionGate`` per camera (it remembers the previous frame / background). ``check`` is CPU
work: call it from an executor. The first frame always counts as motion (nothing to compare).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from xueliang.inference.frames import Image
from xueliang.inference.patrol.settings import MotionSettings
from xueliang.inference.quality import shrink_to_width

Grey = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class MotionResult:
    changed_ratio: float  # fraction of the small copy that changed
    moved: bool


class MotionGate:
    """Per-camera motion test."""

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self._s = settings or MotionSettings()
        self._previous: Grey | None = None
        self._mog2: cv2.BackgroundSubtractorMOG2 | None = None
        self.frames_seen = 0
        self.frames_moved = 0

    def _small_grey(self, image: Image) -> Grey:
        small = shrink_to_width(image, self._s.width)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return np.asarray(grey, dtype=np.uint8)

    def check(self, image: Image) -> MotionResult:
        grey = self._small_grey(image)
        ratio = self._mog2_ratio(grey) if self._s.method == "mog2" else self._diff_ratio(grey)
        moved = ratio is None or ratio >= self._s.min_changed_ratio
        self.frames_seen += 1
        self.frames_moved += int(moved)
        return MotionResult(1.0 if ratio is None else ratio, moved)

    def _diff_ratio(self, grey: Grey) -> float | None:
        blurred = np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)
        previous, self._previous = self._previous, blurred
        if previous is None or previous.shape != blurred.shape:
            return None
        diff = cv2.absdiff(blurred, previous)
        return float(np.count_nonzero(diff >= self._s.pixel_threshold)) / diff.size

    def _mog2_ratio(self, grey: Grey) -> float | None:
        first = self._mog2 is None
        if self._mog2 is None:
            self._mog2 = cv2.createBackgroundSubtractorMOG2(
                history=self._s.mog2_history, varThreshold=self._s.mog2_var_threshold, detectShadows=False
            )
        mask = self._mog2.apply(grey)
        if first:
            return None
        return float(np.count_nonzero(mask)) / mask.size

    def reset(self) -> None:
        """Forget the previous frame and background (after a stream reconnect)."""
        self._previous = None
        self._mog2 = None
