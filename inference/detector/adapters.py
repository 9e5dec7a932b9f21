"""One adapter per output layout: preprocessing and a vectorised decode of the raw outputs.

========== ============================ ========================================================
layout     output                       decode
========== ============================ ========================================================
yolox      [B, N, 5+C] raw grid          xy = (raw + grid) * stride, wh = exp(raw) * stride,
                                        score = obj * cls (both already sigmoid), strides 8/16/32
light_     [B, N, 6] (one class)         YOLOX decode, class ``person``; input BGR 0-255, top-left
person                                  letterbox padded with 114 (checked by running the model)
nanodet    cls [B, N_s, C] sigmoid and   GFL: softmax over 8 bins per side, distances = expectation
           dis [B, N_s, 32] per stride   * stride from the cell centres ((i + 0.5) * stride)
yolov5     [B, N, 5+C]                   cx, cy, w, h in input pixels, obj, class scores
yolov8     [B, 4+C, N]                   cx, cy, w, h in input pixels, class scores, no objectness
========== ============================ ========================================================

None of these exports includes NMS; :mod:`postprocess` does it class-aware for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from xueliang.inference.detector.postprocess import (
    Candidates,
    ClassFilter,
    Floats,
    Ints,
    best_class,
    to_detections,
    xywh_to_xyxy,
)
from xueliang.inference.detector.preprocess import Letterbox, Preprocess, Tensor, letterbox
from xueliang.inference.frames import Detection, Image

Output = npt.NDArray[np.float32]
STRIDES = (8, 16, 32)


def grid_cells(width: int, height: int, strides: Sequence[int] = STRIDES) -> tuple[Floats, Floats]:
    """Cell indices [N, 2] (x, y) and their stride [N, 1] for every level, row-major, level by level."""
    cells: list[Floats] = []
    steps: list[Floats] = []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        cells.append(np.stack((xs.ravel(), ys.ravel()), axis=1).astype(np.float32))
        steps.append(np.full((xs.size, 1), s, dtype=np.float32))
    return np.concatenate(cells), np.concatenate(steps)


def grid_size(width: int, height: int, strides: Sequence[int] = STRIDES) -> int:
    """How many cells the levels of ``strides`` have together."""
    return sum((width // s) * (height // s) for s in strides)


def objectness_rows(raw: Output, min_score: float, keep: ClassFilter) -> tuple[Ints, Output, Floats, Ints]:
    """Rows of a [N, 5+C] output (x, y, w, h, obj, classes) whose obj * best kept class >= ``min_score``.

    Returns the row indices, the rows, their scores and class ids. Since score <= obj, the
    objectness alone discards almost every row before any class score is looked at.
    """
    rows = np.flatnonzero(raw[:, 4] >= min_score)
    sel = raw[rows]
    cls, ids = best_class(sel[:, 5:], keep)
    if ids.size == 0:
        return rows[:0], sel[:0], np.zeros(0, np.float32), ids
    scores = (sel[:, 4] * cls).astype(np.float32)
    ok = scores >= min_score
    return rows[ok], sel[ok], scores[ok], ids[ok]


class Adapter(ABC):
    """Turns frames into the model's input and its outputs back into detections."""

    layout: str = ""

    def __init__(self, spec: Preprocess, labels: tuple[str, ...], output_names: Sequence[str]) -> None:
        self.spec = spec
        self.labels = labels
        self.output_names = list(output_names)  # the order decode() expects them in

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the model input."""
        return self.spec.width, self.spec.height

    def preprocess(self, image: Image, out: Tensor | None = None) -> tuple[Tensor, Letterbox]:
        return letterbox(image, self.spec, out)

    @abstractmethod
    def candidates(self, outputs: Sequence[Output], index: int, min_score: float, keep: ClassFilter) -> Candidates:
        """Candidates of image ``index`` of the batch, scores >= ``min_score``, kept classes only."""

    def decode(
        self,
        outputs: Sequence[Output],
        index: int,
        lb: Letterbox,
        *,
        min_score: float,
        keep: ClassFilter,
        nms_iou: float,
    ) -> list[Detection]:
        cand = self.candidates(outputs, index, min_score, keep)
        return to_detections(cand, lb, self.labels, min_score=min_score, nms_iou=nms_iou)


class YoloxAdapter(Adapter):
    """YOLOX raw grid output (also the person-only light detector)."""

    layout = "yolox"

    def __init__(self, spec: Preprocess, labels: tuple[str, ...], output_names: Sequence[str]) -> None:
        super().__init__(spec, labels, output_names)
        self._cells, self._strides = grid_cells(spec.width, spec.height)

    def candidates(self, outputs: Sequence[Output], index: int, min_score: float, keep: ClassFilter) -> Candidates:
        rows, sel, scores, ids = objectness_rows(outputs[0][index], min_score, keep)
        stride = self._strides[rows]
        xy = (sel[:, 0:2] + self._cells[rows]) * stride
        wh = np.exp(sel[:, 2:4]) * stride
        return Candidates(xywh_to_xyxy(np.concatenate((xy, wh), axis=1)), scores.astype(np.float32), ids)


class LightPersonAdapter(YoloxAdapter):
    """The person-only light detector: YOLOX decode with one class."""

    layout = "light_person"


class NanoDetAdapter(Adapter):
    """NanoDet-m (GFL head): per-stride class scores and 4 x 8-bin distance distributions."""

    layout = "nanodet"
    reg_bins = 8

    def __init__(self, spec: Preprocess, labels: tuple[str, ...], output_names: Sequence[str]) -> None:
        super().__init__(spec, labels, output_names)  # cls_8, cls_16, cls_32, dis_8, dis_16, dis_32
        cells, strides = grid_cells(spec.width, spec.height)
        self._centres = (cells + 0.5) * strides
        self._strides = strides
        self._project = np.arange(self.reg_bins, dtype=np.float32)

    def candidates(self, outputs: Sequence[Output], index: int, min_score: float, keep: ClassFilter) -> Candidates:
        levels = len(outputs) // 2
        cls_all = np.concatenate([outputs[i][index] for i in range(levels)])
        best, ids = best_class(cls_all, keep)
        rows = np.flatnonzero(best >= min_score)
        if rows.size == 0:
            return Candidates.empty()
        dis_all = np.concatenate([outputs[levels + i][index] for i in range(levels)])
        logits = dis_all[rows].reshape(rows.size, 4, self.reg_bins)
        logits = logits - logits.max(axis=2, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=2, keepdims=True)
        dist = (prob @ self._project) * self._strides[rows]  # [K, 4]: left, top, right, bottom
        centre = self._centres[rows]
        boxes = np.concatenate((centre - dist[:, 0:2], centre + dist[:, 2:4]), axis=1).astype(np.float32)
        return Candidates(boxes, best[rows], ids[rows])


class Yolov5Adapter(Adapter):
    """YOLOv5-style [B, N, 5+C]: decoded cx, cy, w, h, objectness, class scores."""

    layout = "yolov5"

    def candidates(self, outputs: Sequence[Output], index: int, min_score: float, keep: ClassFilter) -> Candidates:
        _, sel, scores, ids = objectness_rows(outputs[0][index], min_score, keep)
        return Candidates(xywh_to_xyxy(sel[:, 0:4]), scores, ids)


class Yolov8Adapter(Adapter):
    """YOLOv8-style [B, 4+C, N]: decoded cx, cy, w, h and class scores, no objectness."""

    layout = "yolov8"

    def candidates(self, outputs: Sequence[Output], index: int, min_score: float, keep: ClassFilter) -> Candidates:
        raw = outputs[0][index]  # [4+C, N]
        cls_scores = raw[4:] if keep.all_classes else raw[4 + keep.columns]
        if cls_scores.shape[0] == 0:
            return Candidates.empty()
        rows = np.flatnonzero(cls_scores.max(axis=0) >= min_score)
        if rows.size == 0:
            return Candidates.empty()
        sel = raw[:, rows].T  # [K, 4+C]
        scores, ids = best_class(sel[:, 4:], keep)
        return Candidates(xywh_to_xyxy(sel[:, 0:4]), scores, ids)
