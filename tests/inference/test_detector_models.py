"""The real detectors of shared/models on the real footage: layouts recognised, people found where they are."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from xueliang.inference.detector import Detector
from xueliang.inference.errors import ModelError
from xueliang.inference.frames import Frame, Image
from xueliang.inference.settings import DetectorSettings
from xueliang.inference.tracker import boxes_of, iou_matrix

PERSON = frozenset({"person"})

# the pedestrians on frame 100 of vtest.avi, boxed by hand from the picture (x1, y1, x2, y2)
PEOPLE_100 = np.array(
    [
        (346, 196, 380, 275),  # woman in black, left of the group
        (376, 177, 409, 257),  # man in a dark jacket beside her
        (412, 171, 458, 273),  # man half hidden behind the sign
        (493, 147, 518, 218),  # pair walking away, left
        (516, 150, 540, 219),  # pair walking away, right
        (586, 153, 620, 236),  # man in jeans, right
        (222, 59, 238, 95),  # far walker on the upper path
    ],
    dtype=np.float64,
)


@pytest.fixture(scope="module")
def yolox(models_dir: Path) -> Detector:
    return Detector(DetectorSettings(model_path=models_dir / "yolox_nano.onnx"))


@pytest.fixture(scope="module")
def frame100(vtest_frame: Callable[[int], Image]) -> Frame:
    return Frame(camera_id="vtest", image=vtest_frame(100), captured_at=0.0, seq=100)


def test_yolox_finds_the_people_on_frame_100(yolox: Detector, frame100: Frame) -> None:
    assert yolox.engine.adapter.layout == "yolox"
    assert yolox.input_size == (416, 416)
    [dets] = yolox.detect_sync([frame100], classes=PERSON, min_score=0.5)
    assert len(dets) >= 6
    assert all(d.label == "person" and d.class_id == 0 and d.score >= 0.5 for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    h, w = frame100.image.shape[:2]
    for d in dets:
        # upright pedestrians of this camera: inside the frame, taller than wide, 25-200 px tall
        assert 0 <= d.x1 < d.x2 <= w and 0 <= d.y1 < d.y2 <= h
        height, width = d.y2 - d.y1, d.x2 - d.x1
        assert 1.3 <= height / width <= 4.5, d
        assert 25 <= height <= 200, d
        assert d.y2 < h / 2  # on the paths; nobody is on the lawn in the lower half
    # six of the seven people boxed by hand are found, box for box
    matched = iou_matrix(PEOPLE_100, boxes_of(dets)).max(axis=1) > 0.6
    assert matched.sum() >= 6, matched


def test_yolox_sees_the_parked_vehicles_and_filters_by_class(yolox: Detector, frame100: Frame) -> None:
    [everything] = yolox.detect_sync([frame100], min_score=0.5)
    [vehicles] = yolox.detect_sync([frame100], classes=frozenset({"car", "truck"}), min_score=0.5)
    assert {d.label for d in vehicles} <= {"car", "truck"} and vehicles
    assert all(d.x1 > 600 and d.y2 < 120 for d in vehicles)  # parked at the top right
    assert {d.label for d in everything} >= {"person", "car"}
    [strict] = yolox.detect_sync([frame100], min_score=0.75)
    assert 0 < len(strict) < len(everything) and all(d.score >= 0.75 for d in strict)


def test_nanodet_finds_the_same_people(models_dir: Path, yolox: Detector, frame100: Frame) -> None:
    nanodet = Detector(DetectorSettings(model_path=models_dir / "nanodet_m_320.onnx"))
    assert nanodet.engine.adapter.layout == "nanodet"
    assert nanodet.engine.adapter.spec.placement == "centre"
    [dets] = nanodet.detect_sync([frame100], classes=PERSON, min_score=0.45)
    assert len(dets) >= 4
    # every NanoDet person is one of the people boxed by hand, box for box
    assert (iou_matrix(boxes_of(dets), PEOPLE_100).max(axis=1) > 0.6).all()


def test_light_person_detector_finds_people(models_dir: Path, frame100: Frame) -> None:
    light = Detector(DetectorSettings(model_path=models_dir / "light_person_detector_192.onnx"))
    assert light.engine.adapter.layout == "light_person"
    assert light.labels == ("person",)
    [dets] = light.detect_sync([frame100], min_score=0.5)
    assert len(dets) >= 3 and all(d.label == "person" for d in dets)
    # the light model sometimes boxes two walkers as one: each of its boxes covers a person
    ref_area = (PEOPLE_100[:, 2] - PEOPLE_100[:, 0]) * (PEOPLE_100[:, 3] - PEOPLE_100[:, 1])
    for d in dets:
        ix = np.clip(np.minimum(d.x2, PEOPLE_100[:, 2]) - np.maximum(d.x1, PEOPLE_100[:, 0]), 0, None)
        iy = np.clip(np.minimum(d.y2, PEOPLE_100[:, 3]) - np.maximum(d.y1, PEOPLE_100[:, 1]), 0, None)
        assert (ix * iy / ref_area).max() >= 0.7, d


def test_reduced_scale_frame_gives_boxes_in_its_own_pixels(yolox: Detector, frame100: Frame) -> None:
    import cv2

    half = cv2.resize(frame100.image, (384, 288), interpolation=cv2.INTER_AREA)
    small = Frame(camera_id="vtest", image=half, captured_at=0.0, scale=0.5)
    [full] = yolox.detect_sync([frame100], classes=PERSON, min_score=0.5)
    [dets] = yolox.detect_sync([small], classes=PERSON, min_score=0.5)
    assert len(dets) >= 5
    assert (iou_matrix(boxes_of(dets) * 2, boxes_of(full)).max(axis=1) > 0.6).all()


def test_provider_fallback_to_cpu_with_a_log_line(models_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = DetectorSettings(
        model_path=models_dir / "light_person_detector_192.onnx",
        providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    cuda = "CUDAExecutionProvider"
    expected = cuda if cuda in ort.get_available_providers() else "CPUExecutionProvider"
    with caplog.at_level(logging.INFO, logger="xueliang.inference.detector"):
        detector = Detector(settings)
        assert detector.stats().providers == ()
        assert detector.engine.providers[0] == expected
    lines = [r.getMessage() for r in caplog.records if "running on" in r.getMessage()]
    assert lines and f"running on {expected}" in lines[0]
    assert "CUDAExecutionProvider" in lines[0]  # what was asked is in the line too
    assert detector.stats().providers[0] == expected


def test_missing_model_names_the_path_and_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match=r"nope\.onnx.*inference\.detector\.model_path"):
        Detector(DetectorSettings(model_path=missing)).engine  # noqa: B018


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"model\.onnx could not be loaded.*inference\.detector\.model_path"):
        Detector(DetectorSettings(model_path=bad)).engine  # noqa: B018


def test_unknown_class_name_is_a_clear_error(yolox: Detector, frame100: Frame) -> None:
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['persn'\]"):
        yolox.detect_sync([frame100], classes=frozenset({"persn"}))
