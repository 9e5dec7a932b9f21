"""From candidate boxes to :class:`Detection` records: class filter, class-aware NMS, mapping back.

Adapters decode their model's raw outputs into candidates (x1,y1,x2,y2 in model-input pixels,
score, class id); everything after that is shared and lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from xueliang.inference.detector.preprocess import Letterbox
from xueliang.inference.frames import Detection

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Boxes a model proposes for one image, before NMS: ``boxes`` [N,4] x1,y1,x2,y2 in model input."""

    boxes: Floats
    scores: Floats
    class_ids: Ints

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.intp))


@dataclass(frozen=True, slots=True)
class ClassFilter:
    """Which classes a request keeps, as column indices into the model's class scores."""

    columns: Ints  # sorted model class ids kept
    all_classes: bool

    @classmethod
    def build(cls, labels: tuple[str, ...], classes: Iterable[str] | None) -> ClassFilter:
        """``classes`` by name; ``None`` keeps every class. An unknown name is an error (a typo would
        otherwise silently filter everything out)."""
        if classes is None:
            return cls(np.arange(len(labels), dtype=np.intp), all_classes=True)
        index = {name: i for i, name in enumerate(labels)}
        unknown = sorted(set(classes) - index.keys())
        if unknown:
            raise ValueError(
                f"unknown class name(s) {unknown} for this model; known: {', '.join(labels[:12])}"
                f"{', ...' if len(labels) > 12 else ''}"
            )
        ids = sorted(index[name] for name in classes)
        return cls(np.asarray(ids, dtype=np.intp), all_classes=len(ids) == len(labels))


def best_class(scores: Floats, keep: ClassFilter) -> tuple[Floats, Ints]:
    """Per row of ``scores`` [N, C]: the best score among the kept classes and its model class id."""
    if scores.shape[0] == 0 or keep.columns.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.intp)
    sub = scores if keep.all_classes else scores[:, keep.columns]
    arg = sub.argmax(axis=1)
    best = sub[np.arange(sub.shape[0]), arg]
    return best.astype(np.float32, copy=False), keep.columns[arg]


def xywh_to_xyxy(xywh: Floats) -> Floats:
    """Centre/size boxes [N,4] to corner boxes."""
    half = xywh[:, 2:4] * 0.5
    return np.concatenate((xywh[:, 0:2] - half, xywh[:, 0:2] + half), axis=1)


def to_detections(
    cand: Candidates,
    lb: Letterbox,
    labels: tuple[str, ...],
    *,
    min_score: float,
    nms_iou: float,
    max_detections: int = 300,
) -> list[Detection]:
    """Class-aware NMS (``cv2.dnn.NMSBoxesBatched``), best first, boxes in the frame's pixels."""
    keep = cand.scores >= min_score
    if not keep.all():
        cand = Candidates(cand.boxes[keep], cand.scores[keep], cand.class_ids[keep])
    if cand.scores.size == 0:
        return []
    xywh = np.concatenate((cand.boxes[:, 0:2], cand.boxes[:, 2:4] - cand.boxes[:, 0:2]), axis=1)
    # the stubs say Sequence; the binding takes numpy arrays directly (no per-box Python objects)
    kept = cv2.dnn.NMSBoxesBatched(
        xywh,  # type: ignore[arg-type]
        cand.scores,  # type: ignore[arg-type]
        cand.class_ids.astype(np.int32),  # type: ignore[arg-type]
        min_score,
        nms_iou,
    )
    idx = np.asarray(kept, dtype=np.intp).reshape(-1)
    if idx.size == 0:
        return []
    idx = idx[np.argsort(-cand.scores[idx], kind="stable")][:max_detections]
    boxes = lb.to_image(cand.boxes[idx])
    n = len(labels)
    # tolist() first: Python floats in one step, not a numpy scalar per field
    return [
        Detection(x1=x1, y1=y1, x2=x2, y2=y2, score=s, class_id=c, label=labels[c] if 0 <= c < n else f"class_{c}")
        for (x1, y1, x2, y2), s, c in zip(
            boxes.tolist(), cand.scores[idx].tolist(), cand.class_ids[idx].tolist(), strict=True
        )
    ]
