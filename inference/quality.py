"""Video quality diagnosis: is the picture usable, and is the camera still looking where it should?

Run on every patrol frame at negligible cost (median about 0.3 ms on a 1080p snapshot decoded at
1/4, 480x270; 0.5 ms on a 768x576 frame; 2.1 ms on a full 1920x1080 one, most of it reading the
big picture once; one core of the development machine, ``benchmarks/quality.py``): one colour
conversion of the picture reduced by an integer factor, then every check works on small grey
copies (``width``, 160 px by default; the blur check on ``blur_width``, 320 px) or, for the
colour cast, on a sample of ``width / 2`` px.
Each fault becomes an ``Anomaly`` whose ``value`` is the measurement and ``threshold`` what it
was compared with:

=========================  ========================================================================
``quality.black``          no signal: mean luminance and its spread both low
``quality.frozen``         mean absolute grey difference to the previous visit's frame ~ 0
``quality.blur``           variance of the Laplacian / grey variance (contrast-independent) low
``quality.occluded``       fraction of uniform (textureless) or saturated blocks high
``quality.colour_cast``    colour cast factor K = |mean (a, b)| / spread (a, b) in Lab high; or
                           the mean (a, b) moved far from the reference frame's (``basis``)
``quality.scene_changed``  high-pass structure of the picture no longer matches the reference, in
                           place or after aligning small shifts (phase correlation, only run when
                           the in-place match is not clearly good), or it moved too far
=========================  ========================================================================

A camera's ``QualityState`` keeps the previous visit's thumbnail and a REFERENCE taken from a
good visit (no fault), renewed after ``reference_refresh_s`` by a good visit that still matches
it (its high-pass structure in 8 bits); about 20 KB per camera. A black picture reports only
``black``; an occluded one skips frozen, blur, colour and scene (the cover explains them). Black
and occluded frames are not worth detecting on (``QualityReport.blocks_detection``). CPU work:
call ``check`` from an executor.
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
Structure = npt.NDArray[np.int8]
LabStats = tuple[float, float, float, float]

#: an in-place structural match at least this good: the camera has not moved (``_similarity``)
IN_PLACE_MATCH = 0.6

BLACK, FROZEN, BLUR = "quality.black", "quality.frozen", "quality.blur"
OCCLUDED, COLOUR_CAST, SCENE_CHANGED = "quality.occluded", "quality.colour_cast", "quality.scene_changed"


@dataclass(slots=True)
class Reference:
    structure: Structure  # high-pass of the small grey copy of a good visit, 8 bits (``_quantised``)
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
    if image.shape[1] <= width:
        return image
    image = _reduce(image, width)
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
        colour = _reduce(frame.image, s.blur_width)
        fine = shrink_to_width(np.asarray(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), dtype=np.uint8), s.blur_width)
        grey = shrink_to_width(fine, s.width)
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
                faults += self._blur(fine, metrics)
                ab = _lab_stats(colour, s.width // 2)
                faults += self._colour(ab, state, metrics)
                faults += self._scene(grey, state, metrics)

        state.visits += 1
        state.last = thumb
        if not faults:
            self._renew_reference(colour, grey, state, frame.captured_at, metrics)
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

    def _blur(self, fine: Grey, metrics: dict[str, float]) -> list[QualityFault]:
        variance = float(cv2.meanStdDev(fine)[1][0][0]) ** 2
        if variance < 1.0:
            return []
        # the 3x3 Laplacian of 8-bit grey fits 16 bits exactly; its variance from the sums of L and L^2
        laplacian = cv2.Laplacian(fine, cv2.CV_16S)
        count = laplacian.size
        mean = cv2.sumElems(laplacian)[0] / count
        sharpness = (cv2.norm(laplacian, cv2.NORM_L2SQR) / count - mean * mean) / variance
        metrics["sharpness"] = sharpness
        if sharpness < self._s.blur_min_sharpness:
            return [QualityFault(BLUR, round(sharpness, 4), self._s.blur_min_sharpness)]
        return []

    def _colour(self, lab: LabStats, state: QualityState, metrics: dict[str, float]) -> list[QualityFault]:
        s = self._s
        a, b, spread, distance = lab
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
        if ref is None or ref.structure.shape != grey.shape:
            return []
        similarity, dx, dy = self._similarity(_high_pass(grey), ref.structure)
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

    def _similarity(self, a: Floats, structure: Structure) -> tuple[float, float, float]:
        """Correlation of the high-pass picture ``a`` with the reference's, and the shift between
        them (fractions of width and height).

        Compared in place first: a match of ``IN_PLACE_MATCH`` or better means the camera has not
        moved (the high-pass structure decorrelates within a few pixels: a copy moved by 3 % of the
        width matches about 0.35, a normal frame with passers-by 0.7-0.8), so the alignment, a
        phase correlation costing 40 % of all the checks, is skipped. Otherwise the shift is
        measured and the similarity is the better of the in-place match and the match after moving
        ``a`` back by the shift.
        """
        b = structure.astype(np.float32)
        in_place = _correlation(a, b)
        if in_place >= max(IN_PLACE_MATCH, self._s.scene_min_similarity):
            return in_place, 0.0, 0.0
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
        pa = np.asarray(cv2.getRectSubPix(a, inner, ((w - 1) / 2 + dx, (h - 1) / 2 + dy)), dtype=np.float32)
        return max(in_place, _correlation(pa, b[my:-my, mx:-mx])), dx / w, dy / h

    def _renew_reference(
        self, colour: Image, grey: Grey, state: QualityState, now: float, metrics: dict[str, float]
    ) -> None:
        ref = state.reference
        if ref is not None and ref.structure.shape == grey.shape:
            if now - ref.at < self._s.reference_refresh_s:
                return
            if metrics.get("scene_similarity", 0.0) < self._s.scene_min_similarity:
                return
        a, b, _spread, _distance = _lab_stats(colour, self._s.width // 2)
        state.reference = Reference(structure=_quantised(_high_pass(grey)), ab=(a, b), at=now)


def _reduce(image: Image, width: int) -> Image:
    """The picture shrunk by the largest integer factor that keeps it at least ``width`` wide (an
    area average: OpenCV's fast path); as it is when it is narrower than twice ``width``."""
    h, w = image.shape[:2]
    k = w // width
    if k < 2:
        return image
    cropped = image[: h - h % k, : w - w % k]
    return np.asarray(cv2.resize(cropped, (w // k, h // k), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _correlation(a: Floats, b: Floats) -> float:
    denom = math.sqrt(float(cv2.norm(a, cv2.NORM_L2SQR)) * float(cv2.norm(b, cv2.NORM_L2SQR)))
    return float(a.ravel() @ b.ravel()) / denom if denom > 0 else 0.0


def _quantised(high: Floats) -> Structure:
    """A high-pass picture in 8 bits, scaled to its largest value: correlations do not depend on the
    scale, and the reference costs a quarter of its float size per camera."""
    peak = float(np.abs(high).max())
    scale = 127.0 / peak if peak > 0 else 0.0
    return np.asarray(np.rint(high * scale), dtype=np.int8)


def _lab_stats(colour: Image, width: int) -> LabStats:
    """Mean a, mean b (neutral = 0), (a, b) spread, distance of the mean from neutral, measured on a
    ``width`` wide sample of the picture (bilinear: statistics, not a picture to look at)."""
    h, w = colour.shape[:2]
    if w > width:
        size = (width, max(1, round(h * width / w)))
        colour = np.asarray(cv2.resize(colour, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    lab = cv2.cvtColor(colour, cv2.COLOR_BGR2Lab)
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
