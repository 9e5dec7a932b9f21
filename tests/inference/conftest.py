"""Shared fixtures of the analytics tests: where the real assets are, real frames, tiny ONNX models.

The real assets live in ``<repo>/../shared`` (CI clones the repo with ``shared/`` beside it).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.inference.logic_fixtures import detector_settings
from xueliang.inference.detector import Detector
from xueliang.inference.frames import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
MODELS = SHARED / "models"
VTEST = SHARED / "data" / "vtest.avi"


@functools.lru_cache(maxsize=64)
def _vtest_frame(index: int) -> Image:
    """Frame ``index`` of vtest.avi, read sequentially (seeking an MS-MPEG4 file is not exact)."""
    cap = cv2.VideoCapture(str(VTEST))
    try:
        image = None
        for _ in range(index + 1):
            ok, image = cap.read()
            if not ok:
                raise ValueError(f"{VTEST} has no frame {index}")
        assert image is not None
        return image
    finally:
        cap.release()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    return VTEST


@pytest.fixture(scope="session")
def vtest_frame() -> Callable[[int], Image]:
    """``vtest_frame(100)``: a copy of that frame of the real footage (768x576 BGR)."""
    return lambda index: _vtest_frame(index).copy()


def build_onnx_model(
    path: Path,
    *,
    input_hw: tuple[int, int],
    output: np.ndarray,
    batch: int | str = 1,
    mean_gain: np.ndarray | None = None,
    input_name: str = "images",
    output_name: str = "output",
) -> Path:
    """Write a tiny ONNX detector whose output is ``output`` (shape [1, ...]) for any image.

    With ``mean_gain`` (same shape as ``output``) the output becomes
    ``output + mean(image) * mean_gain`` per batch item, so each image of a batch gets its own,
    predictable answer. ``batch`` may be a symbol (e.g. "N") for a dynamic batch dimension.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = input_hw
    out_shape = [batch, *output.shape[1:]]
    inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, h, w])
    out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, out_shape)
    gain = np.zeros_like(output) if mean_gain is None else mean_gain
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["mean4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean4", "mean_shape"], ["mean"]),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "base"], [output_name]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray([-1] + [1] * (output.ndim - 1), dtype=np.int64), "mean_shape"),
        numpy_helper.from_array(gain.astype(np.float32), "gain"),
        numpy_helper.from_array(output.astype(np.float32), "base"),
    ]
    graph = helper.make_graph(nodes, "tiny_detector", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="xueliang-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
async def detector() -> AsyncIterator[Detector]:
    """The real detector (yolox_nano, min_score 0.3, as ``logic_fixtures.detector_settings``), started."""
    async with Detector(detector_settings()) as det:
        yield det


@pytest.fixture
def onnx_model(tmp_path: Path) -> Callable[..., Path]:
    """``onnx_model(name, input_hw=(96, 96), output=array, batch=1, mean_gain=None)``: see build_onnx_model."""

    def make(name: str, **kw: object) -> Path:
        return build_onnx_model(tmp_path / name, **kw)  # type: ignore[arg-type]

    return make
