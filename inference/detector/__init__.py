"""ONNX object detection: sessions, model adapters, cross-camera batching.

Public API::

    from xueliang.inference.detector import Detector, DetectorStats
    async with Detector(settings.inference.detector) as detector:
        detections = await detector.detect(frame, classes=frozenset({"person"}), min_score=0.5)
"""

from xueliang.inference.detector.detector import Detector, DetectorState
from xueliang.inference.detector.stats import DetectorStats, Percentiles

__all__ = ["Detector", "DetectorState", "DetectorStats", "Percentiles"]
