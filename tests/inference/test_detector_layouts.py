"""YOLOv5 and YOLOv8 output layouts, decoded from tiny ONNX models whose answer is known exactly.

The models (built with the ``onnx`` package) output a constant tensor in the layout; the frame is
192x96 and the input 96x96, so the centred letterbox has ratio 0.5 and 24 px of padding above and
below: a box x1,y1,x2,y2 in the model input is (2*x1, 2*(y1-24), 2*x2, 2*(y2-24)) in the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xueliang.inference.detector import Detector
from xueliang.inference.detector.adapters import grid_size
from xueliang.inference.detector.preprocess import Preprocess, letterbox
from xueliang.inference.errors import ModelError
from xueliang.inference.frames import Frame
from xueliang.inference.settings import DetectorSettings

CELLS = grid_size(96, 96)  # 144 + 36 + 9 = 189
PERSON, CAR = 0, 2

# (cx, cy, w, h) in model-input pixels, objectness, {class: score}
ROWS = [
    ((30.0, 44.0, 20.0, 20.0), 0.9, {PERSON: 0.9}),  # person, score 0.81
    ((31.0, 45.0, 20.0, 20.0), 0.8, {PERSON: 0.9}),  # same person again, 0.72: NMS removes it
    ((30.0, 44.0, 20.0, 20.0), 0.9, {CAR: 0.8}),  # a car on the same spot, 0.72: other class, kept
    ((60.0, 40.0, 10.0, 30.0), 0.2, {PERSON: 0.9}),  # 0.18: below every threshold used here
    ((70.0, 50.0, 10.0, 20.0), 0.6, {PERSON: 0.7}),  # a second person, 0.42
]
# expected (label, score, x1, y1, x2, y2 in frame pixels), best first
EXPECTED = [
    ("person", 0.81, 40.0, 20.0, 80.0, 60.0),
    ("car", 0.72, 40.0, 20.0, 80.0, 60.0),
    ("person", 0.42, 130.0, 32.0, 150.0, 72.0),
]


def yolov5_output(obj_scaled: bool = True) -> np.ndarray:
    out = np.zeros((1, 3 * CELLS, 85), np.float32)
    for i, (box, obj, classes) in enumerate(ROWS):
        out[0, i * 7, 0:4] = box  # spread over the anchors, as a real model would
        out[0, i * 7, 4] = obj
        for c, s in classes.items():
            out[0, i * 7, 5 + c] = s
    return out


def yolov8_output() -> np.ndarray:
    out = np.zeros((1, 84, CELLS), np.float32)
    for i, (box, obj, classes) in enumerate(ROWS):
        out[0, 0:4, i * 5] = box
        for c, s in classes.items():
            out[0, 4 + c, i * 5] = obj * s  # v8 has no objectness: the class score is the product
    return out


def frame(camera_id: str = "cam-1", grey: int = 90) -> Frame:
    return Frame(camera_id=camera_id, image=np.full((96, 192, 3), grey, np.uint8), captured_at=0.0)


def check(dets: list, expected: list) -> None:  # type: ignore[type-arg]
    got = [(d.label, round(d.score, 4), round(d.x1, 3), round(d.y1, 3), round(d.x2, 3), round(d.y2, 3)) for d in dets]
    assert got == [(lbl, pytest.approx(s, abs=1e-4), *box) for lbl, s, *box in expected]


@pytest.mark.parametrize(("layout", "make"), [("yolov5", yolov5_output), ("yolov8", yolov8_output)])
def test_layout_is_recognised_and_decoded_exactly(
    layout: str, make: Callable[[], np.ndarray], onnx_model: Callable[..., Path]
) -> None:
    path = onnx_model(f"{layout}.onnx", input_hw=(96, 96), output=make())
    detector = Detector(DetectorSettings(model_path=path))
    assert detector.engine.adapter.layout == layout
    assert detector.engine.adapter.spec.placement == "centre" and detector.engine.adapter.spec.rgb
    [dets] = detector.detect_sync([frame()], min_score=0.35)
    check(dets, EXPECTED)
    [people] = detector.detect_sync([frame()], classes=frozenset({"person"}), min_score=0.35)
    check(people, [EXPECTED[0], EXPECTED[2]])
    [strict] = detector.detect_sync([frame()], min_score=0.75)
    check(strict, [EXPECTED[0]])
    [loose] = detector.detect_sync([frame()], min_score=0.1)
    assert [round(d.score, 2) for d in loose] == [0.81, 0.72, 0.42, 0.18]


def test_explicit_layout_overrides_and_a_wrong_one_is_refused(onnx_model: Callable[..., Path]) -> None:
    path = onnx_model("v5.onnx", input_hw=(96, 96), output=yolov5_output())
    forced = Detector(DetectorSettings(model_path=path, layout="yolov5"))
    check(forced.detect_sync([frame()], min_score=0.35)[0], EXPECTED)
    with pytest.raises(ModelError, match=r"v5\.onnx: layout nanodet needs .*set inference\.detector\.layout"):
        Detector(DetectorSettings(model_path=path, layout="nanodet")).engine  # noqa: B018


def test_an_unknown_output_layout_is_refused(onnx_model: Callable[..., Path]) -> None:
    path = onnx_model("odd.onnx", input_hw=(96, 96), output=np.zeros((1, 10, 7), np.float32))
    pattern = r"odd\.onnx: output \[1, 10, 7\] matches no grid.*inference\.detector\.layout"
    with pytest.raises(ModelError, match=pattern):
        Detector(DetectorSettings(model_path=path)).engine  # noqa: B018


def test_labels_setting_must_match_the_class_count(onnx_model: Callable[..., Path]) -> None:
    path = onnx_model("v5.onnx", input_hw=(96, 96), output=yolov5_output())
    with pytest.raises(ModelError, match=r"80 classes but inference\.detector\.labels lists 2"):
        Detector(DetectorSettings(model_path=path, labels=["a", "b"])).engine  # noqa: B018


@pytest.mark.parametrize("placement", ["top_left", "centre"])
@pytest.mark.parametrize(("h", "w"), [(576, 768), (1080, 1920), (300, 100), (96, 96), (50, 60)])
def test_letterbox_round_trip(placement: str, h: int, w: int) -> None:
    spec = Preprocess(416, 416, placement=placement, pad_value=114)  # type: ignore[arg-type]
    image = np.full((h, w, 3), 200, np.uint8)
    tensor, lb = letterbox(image, spec)
    assert tensor.shape == (3, 416, 416) and tensor.dtype == np.float32
    # the image lands inside the input, the rest is padding
    x1, y1, x2, y2 = lb.to_input(np.array([[0, 0, w, h]], np.float32))[0]
    assert max(x2 - x1, y2 - y1) == pytest.approx(416, abs=1)
    nw, nh = round(w * lb.ratio), round(h * lb.ratio)
    inside = tensor[:, lb.pad_y : lb.pad_y + nh, lb.pad_x : lb.pad_x + nw]
    assert (inside == 200).all()
    assert (tensor == 114).sum() + inside.size == tensor.size
    if placement == "top_left":
        assert (x1, y1) == (0, 0)
    else:
        assert abs(lb.pad_x - (416 - lb.pad_x - nw)) <= 1 and abs(lb.pad_y - (416 - lb.pad_y - nh)) <= 1
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.5, w * 0.5, h * 0.75]], np.float32)
    np.testing.assert_allclose(lb.to_image(lb.to_input(boxes)), boxes, atol=1e-3)


def test_letterbox_normalises_per_channel() -> None:
    spec = Preprocess(32, 32, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0), rgb=False)
    tensor, _ = letterbox(np.full((32, 32, 3), (50, 60, 70), np.uint8), spec)
    assert [float(tensor[c, 5, 5]) for c in range(3)] == [20.0, 10.0, 8.0]
    rgb, _ = letterbox(np.full((32, 32, 3), (0, 0, 255), np.uint8), Preprocess(32, 32, rgb=True, scale=1 / 255))
    assert [float(rgb[c, 0, 0]) for c in range(3)] == [1.0, 0.0, 0.0]
