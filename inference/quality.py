"""Video quality diagnosis: is the picture usable, and is the camera still looking where it should?

Run on every patrol frame at negligible cost (about 1.2 ms on a 768x576 frame, 2.7 ms on a
1920x1080 one, one core of the development machine, see ``benchmarks/quality.py``): all checks
work on a small copy (``width``, 160 px by default; the blur check on ``blur_width``, 320 px).
Each fault becomes an ``Anomaly`` whose ``value`` is the measurement and ``threshold`` what it
was compared with:

=========================  ========================================================================
``quality.black``          no signal: mean luminance and its spread both low
``quality.frozen``         mean absolute grey difference to the previous visit's frame ~ 0
``quality.blur``           variance of the Laplacian / grey variance (contrast-independent) low
``quality.occluded``       fraction of uniform (textureless) or saturated blocks high
``quality.colour_cast``    colour cast factor K = |mean (a, b)| / spread (a, b) in Lab high; or
                           the mean (a, b) moved far from the reference frame's (``basis``)
``quality.scene_changed``  high-pass structure of the picture no longer matches the reference after
                           aligning small shifts (phase correlation), or it moved too far
=========================  ========================================================================

A camera's ``QualityState`` keeps the previous visit's thumbnail and a REFERENCE taken from a
good visit (no fault), renewed after ``reference_refresh_s`` by a good visit that still matches
it; about 25 KB per camera. A black picture reports only ``black``; an occluded one skips frozen,
blur, colour and scene (the cover explains them). Black and occluded frames are not worth detecting on
(``QualityReport.blocks_detection``). CPU work: call ``check`` from an executor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from xueliang.inference.anomaly import Anomaly
from xueliang.inference.frames import Frame, Image
from xueliang.inference.rules.evidence import FrameEvidence, observed_at
from xueliang.inference.rules.settings import QualitySettings

Grey = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]

BLACK, FROZEN, BLUR = "quality.black", "quality.frozen", "quality.blur"
OCCLUDED, COLOUR_CAST, SCENE_CHANGED = "quality.occluded", "quality.colour_cast", "quality.scene_changed"


@dataclass(slots=True)
class Reference:
    grey: Grey  # small grey copy of a good visit
    ab: tuple[float, float]  # its mean (a, b) in Lab, offset removed
    at: float  # epoch seconds it was taken


@dataclass(slots=True)
class QualityState:
    """Per-camera memory of the diagnosis: the previous visit's thumbnail and the reference."""

    last: Grey | None = None
    reference: Reference | None = None
    visits: int = 0

    def reset_reference(self) -> None:
        """Forget the reference (the camera was re-aimed on purpose): the next good visit sets it."""
        self.reference = None


@dataclass(frozen=True, slots=True)
class QualityFault:
    rule: str
    value: float
    threshold: float
    detail: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QualityReport:
    camera_id: str
    faults: tuple[QualityFault, ...]
    metrics: dict[str, float]

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(f.rule for f in self.faults)

    @property
    def blocks_detection(self) -> bool:
        """Black or covered: nothing to detect on."""
        return bool(self.rules & {BLACK, OCCLUDED})


def shrink_to_width(image: Image, width: int) -> Image:
    """Shrink to ``width`` (keeping the aspect): an integer-factor area average (OpenCV's fast
    path; a fractional INTER_AREA costs ten times more), then bilinear for the last factor < 2."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    k = w // width
    if k >= 2:
        cropped = image[: h - h % k, : w - w % k]
        image = np.asarray(cv2.resize(cropped, (w // k, h // k), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        h, w = image.shape[:2]
        if w == width:
            return image
    height = max(1, round(h * width / w))
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def _high_pass(grey: Grey) -> Floats:
    x = grey.astype(np.float32)
    # 25 taps (3 sigma) for the wide blur: OpenCV's default for float images is 33 (4 sigma), 35 % more work
    # for the last 0.3 % of the kernel's weight
    return np.asarray(cv2.GaussianBlur(x - cv2.GaussianBlur(x, (25, 25), 4.0), (0, 0), 0.8), dtype=np.float32)


class QualityChecker:
    """The checks, with their thresholds. Stateless itself: a camera's memory is its ``QualityState``."""

    def __init__(self, settings: QualitySettings | None = None) -> None:
        self._s = settings or QualitySettings()
        self._windows: dict[tuple[int, int], Floats] = {}

    def check(self, frame: Frame, state: QualityState) -> QualityReport:
        s = self._s
        if not s.enabled:
            return QualityReport(frame.camera_id, (), {})
        big = shrink_to_width(frame.image, s.blur_width)
        small = shrink_to_width(big, s.width)
        grey = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        mean, std = (float(v[0][0]) for v in cv2.meanStdDev(grey))
        thumb = shrink_to_width(grey, max(8, s.width // 2))
        metrics: dict[str, float] = {"mean": mean, "std": std}
        faults: list[QualityFault] = []

        if mean < s.black_max_mean and std < s.black_max_std:
            faults.append(QualityFault(BLACK, round(mean, 3), s.black_max_mean, {"std": round(std, 3)}))
        else:
            occluded = self._occluded(grey, std, metrics)
            faults += occluded
            if not occluded:
                faults += self._frozen(thumb, state, metrics)
                faults += self._blur(big, metrics)
                faults += self._colour(small, state, metrics)
                faults += self._scene(grey, state, metrics)

        state.visits += 1
        state.last = thumb
        if not faults:
            self._renew_reference(small, grey, state, frame.captured_at, metrics)
        return QualityReport(frame.camera_id, tuple(faults), metrics)

    def _frozen(self, thumb: Grey, state: QualityState, metrics: dict[str, float]) -> list[QualityFault]:
        if state.last is None or state.last.shape != thumb.shape:
            return []
        diff = float(cv2.absdiff(thumb, state.last).mean())
        metrics["frozen_diff"] = diff
        if diff < self._s.frozen_max_diff:
            return [QualityFault(FROZEN, round(diff, 4), self._s.frozen_max_diff)]
        return []

    def _occluded(self, grey: Grey, std: float, metrics: dict[str, float]) -> list[QualityFault]:
        s = self._s
        gx, gy = s.occluded_grid
        h, w = grey.shape
        bh, bw = h // gy, w // gx
        if bh < 2 or bw < 2:
            return []
        # block means of x and x^2 by an integer-factor area resize (exact averages, 3x cheaper
        # than numpy's per-block mean and std)
        x = grey[: bh * gy, : bw * gx].astype(np.float32)
        block_mean = cv2.resize(x, (gx, gy), interpolation=cv2.INTER_AREA)
        block_sq = cv2.resize(x * x, (gx, gy), interpolation=cv2.INTER_AREA)
        block_std = np.sqrt(np.maximum(block_sq - block_mean * block_mean, 0.0))
        uniform = block_std < max(s.occluded_block_min_std, s.occluded_block_rel_std * std)
        saturated = (block_mean > 245.0) & (block_std < 8.0)
        fraction = float(np.count_nonzero(uniform | saturated)) / (gx * gy)
        metrics["occluded_fraction"] = fraction
        if fraction >= s.occluded_min_fraction:
            return [QualityFault(OCCLUDED, round(fraction, 4), s.occluded_min_fraction)]
        return []

    def _blur(self, big: Image, metrics: dict[str, float]) -> list[QualityFault]:
        grey = cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
        variance = float(cv2.meanStdDev(grey)[1][0][0]) ** 2  # numpy's var of uint8 costs 20x more
        if variance < 1.0:
            return []
        sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var()) / variance
        metrics["sharpness"] = sharpness
        if sharpness < self._s.blur_min_sharpness:
            return [QualityFault(BLUR, round(sharpness, 4), self._s.blur_min_sharpness)]
        return []

    def _colour(self, small: Image, state: QualityState, metrics: dict[str, float]) -> list[QualityFault]:
        s = self._s
        a, b, spread, distance = _lab_stats(small)
        factor = distance / max(spread, 1e-3)
        metrics.update(cast_factor=factor, cast_distance=distance)
        if distance >= s.cast_min_distance and factor >= s.cast_min_factor:
            detail: dict[str, float | str] = {"basis": "absolute", "a": round(a, 2), "b": round(b, 2)}
            return [QualityFault(COLOUR_CAST, round(factor, 3), s.cast_min_factor, detail)]
        if state.reference is not None and distance >= s.cast_min_distance:
            ra, rb = state.reference.ab
            shift = math.hypot(a - ra, b - rb)
            metrics["cast_shift"] = shift
            if shift >= s.cast_max_shift:
                detail = {"basis": "reference", "a": round(a, 2), "b": round(b, 2)}
                return [QualityFault(COLOUR_CAST, round(shift, 3), s.cast_max_shift, detail)]
        return []

    def _scene(self, grey: Grey, state: QualityState, metrics: dict[str, float]) -> list[QualityFault]:
        ref = state.reference
        if ref is None or ref.grey.shape != grey.shape:
            return []
        similarity, dx, dy = self._similarity(grey, ref.grey)
        shift = max(abs(dx), abs(dy))
        metrics.update(scene_similarity=similarity, scene_shift=shift)
        s = self._s
        detail: dict[str, float | str] = {"shift_x": round(dx, 4), "shift_y": round(dy, 4)}
        if similarity < s.scene_min_similarity:
            return [QualityFault(SCENE_CHANGED, round(similarity, 4), s.scene_min_similarity, detail)]
        if shift >= s.scene_max_shift:
            detail["basis"] = "shift"
            return [QualityFault(SCENE_CHANGED, round(shift, 4), s.scene_max_shift, detail)]
        return []

    def similarity(self, grey: Grey, reference: Grey) -> tuple[float, float, float]:
        """Structural similarity of two small grey pictures after aligning their shift, and the
        shift (fractions of width and height)."""
        return self._similarity(grey, reference)

    def _similarity(self, grey: Grey, reference: Grey) -> tuple[float, float, float]:
        a, b = _high_pass(grey), _high_pass(reference)
        h, w = a.shape
        window = self._windows.get((w, h))
        if window is None:
            window = np.asarray(cv2.createHanningWindow((w, h), cv2.CV_32F), dtype=np.float32)
            self._windows[(w, h)] = window
        (dx, dy), _response = cv2.phaseCorrelate(b, a, window)
        mx, my = int(abs(dx)) + 2, int(abs(dy)) + 2
        if 2 * mx >= w or 2 * my >= h:
            return 0.0, dx / w, dy / h
        # the inner part of ``a`` moved back by (dx, dy), bilinear: what warpAffine and a crop give
        # (to 1e-6), without waking OpenCV's thread pool (whose spinning cost 0.5 ms a frame here)
        inner = (w - 2 * mx, h - 2 * my)
        pa = cv2.getRectSubPix(a, inner, ((w - 1) / 2 + dx, (h - 1) / 2 + dy))
        pb = b[my:-my, mx:-mx]
        denom = math.sqrt(float((pa * pa).sum()) * float((pb * pb).sum()))
        value = float((pa * pb).sum()) / denom if denom > 0 else 0.0
        return value, dx / w, dy / h

    def _renew_reference(
        self, small: Image, grey: Grey, state: QualityState, now: float, metrics: dict[str, float]
    ) -> None:
        ref = state.reference
        if ref is not None and ref.grey.shape == grey.shape:
            if now - ref.at < self._s.reference_refresh_s:
                return
            if metrics.get("scene_similarity", 0.0) < self._s.scene_min_similarity:
                return
        a, b, _spread, _distance = _lab_stats(small)
        state.reference = Reference(grey=grey.copy(), ab=(a, b), at=now)


def _lab_stats(small: Image) -> tuple[float, float, float, float]:
    """Mean a, mean b (neutral = 0), (a, b) spread, distance of the mean from neutral."""
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2Lab)
    (_, ma, mb), (_, sa, sb) = ((float(v[0]) for v in arr) for arr in cv2.meanStdDev(lab))
    a, b = ma - 128.0, mb - 128.0
    return a, b, math.hypot(sa, sb), math.hypot(a, b)


def quality_anomalies(report: QualityReport, frame: Frame, evidence: FrameEvidence) -> list[Anomaly]:
    """One ``Anomaly`` per fault, with the frame as evidence (no boxes)."""
    if not report.faults:
        return []
    at = observed_at(frame)
    return [
        Anomaly(
            camera_id=frame.camera_id,
            rule=fault.rule,
            observed_at=at,
            value=fault.value,
            threshold=fault.threshold,
            detail=dict(fault.detail),
            evidence=evidence.evidence(),
        )
        for fault in report.faults
    ]
