"""Recognise a model's output layout from its input/output names and shapes, and build its adapter.

``inference.detector.layout`` overrides the guess; a model that matches nothing (or whose shapes
are symbolic where the guess needs numbers) is refused with a :class:`ModelError` that says so.
"""

from __future__ import annotations

import logging

from xueliang.inference.detector.adapters import (
    STRIDES,
    Adapter,
    LightPersonAdapter,
    NanoDetAdapter,
    Yolov5Adapter,
    Yolov8Adapter,
    YoloxAdapter,
    grid_size,
)
from xueliang.inference.detector.labels import default_labels
from xueliang.inference.detector.preprocess import Preprocess
from xueliang.inference.detector.session import ModelInfo, TensorInfo
from xueliang.inference.errors import ModelError
from xueliang.inference.settings import DetectorSettings

log = logging.getLogger(__name__)

NANODET_MEAN = (103.53, 116.28, 123.675)  # BGR
NANODET_STD = (57.375, 57.12, 58.395)


def _refuse(info: ModelInfo, why: str) -> ModelError:
    outs = ", ".join(f"{o.name}{list(o.shape)}" for o in info.outputs)
    return ModelError(
        f"detector model {info.path}: {why} (input {info.input.name}{list(info.input.shape)}, outputs {outs}); "
        "set inference.detector.layout to one of yolox, nanodet, yolov5, yolov8, light_person"
    )


def _nanodet_outputs(info: ModelInfo) -> list[TensorInfo] | None:
    """The six NanoDet outputs ordered cls_8, cls_16, cls_32, dis_8, dis_16, dis_32, or None."""
    by_name = {o.name: o for o in info.outputs}
    wanted = [f"{kind}_pred_stride_{s}" for kind in ("cls", "dis") for s in STRIDES]
    if all(name in by_name for name in wanted):
        return [by_name[name] for name in wanted]
    return None


def detect_layout(info: ModelInfo) -> str:
    """The layout name for ``info``, guessed from names and shapes."""
    if _nanodet_outputs(info) is not None:
        return "nanodet"
    if len(info.outputs) != 1:
        raise _refuse(info, f"{len(info.outputs)} outputs match no known layout")
    shape = info.outputs[0].shape
    in_h, in_w = info.input.shape[2], info.input.shape[3]
    if len(shape) != 3 or None in shape[1:] or in_h is None or in_w is None:
        raise _refuse(info, "cannot tell the layout from symbolic or non-3-D shapes")
    rows, cols = shape[1], shape[2]
    assert rows is not None and cols is not None
    cells = grid_size(in_w, in_h)
    if rows == cells and cols >= 6:
        return "light_person" if cols == 6 else "yolox"
    if rows == 3 * cells and cols >= 6:
        return "yolov5"
    if cols == cells and 5 <= rows < cols:
        return "yolov8"
    raise _refuse(info, f"output {list(shape)} matches no grid of strides 8/16/32 over a {in_w}x{in_h} input")


def build_adapter(info: ModelInfo, settings: DetectorSettings) -> Adapter:
    """The adapter for ``info`` (layout from settings, or recognised when 'auto')."""
    layout = detect_layout(info) if settings.layout == "auto" else settings.layout
    in_h, in_w = info.input.shape[2:4] if len(info.input.shape) == 4 else (None, None)
    if in_h is None or in_w is None:
        raise _refuse(info, "the input's height and width are symbolic; export the model with a fixed input size")
    out_names = [o.name for o in info.outputs]
    if layout == "nanodet":
        outs = _nanodet_outputs(info)
        if outs is None:
            raise _refuse(info, "layout nanodet needs outputs cls_pred_stride_{8,16,32} and dis_pred_stride_{8,16,32}")
        num_classes = outs[0].shape[-1] or 80
        spec = Preprocess(in_w, in_h, placement="centre", pad_value=0, mean=NANODET_MEAN, std=NANODET_STD)
        adapter: Adapter = NanoDetAdapter(spec, _labels(settings, num_classes), [o.name for o in outs])
    else:
        if len(info.outputs) != 1:
            raise _refuse(info, f"layout {layout} needs exactly one output")
        shape = info.outputs[0].shape
        if len(shape) != 3:
            raise _refuse(info, f"layout {layout} needs a 3-D output")
        if layout in ("yolox", "light_person"):
            num_classes = (shape[2] or 85) - 5
            spec = Preprocess(in_w, in_h, placement="top_left", pad_value=114)  # BGR 0-255, no normalisation
            cls = LightPersonAdapter if layout == "light_person" else YoloxAdapter
            adapter = cls(spec, _labels(settings, num_classes), out_names)
        elif layout == "yolov5":
            num_classes = (shape[2] or 85) - 5
            spec = Preprocess(in_w, in_h, placement="centre", pad_value=114, rgb=True, scale=1 / 255)
            adapter = Yolov5Adapter(spec, _labels(settings, num_classes), out_names)
        else:
            num_classes = (shape[1] or 84) - 4
            spec = Preprocess(in_w, in_h, placement="centre", pad_value=114, rgb=True, scale=1 / 255)
            adapter = Yolov8Adapter(spec, _labels(settings, num_classes), out_names)
    log.info(
        "detector model %s: layout %s%s, input %dx%d, %d classes",
        info.path.name,
        adapter.layout,
        " (recognised)" if settings.layout == "auto" else " (from settings)",
        in_w,
        in_h,
        len(adapter.labels),
    )
    return adapter


def _labels(settings: DetectorSettings, num_classes: int) -> tuple[str, ...]:
    if settings.labels is None:
        return default_labels(num_classes)
    if len(settings.labels) != num_classes:
        raise ModelError(
            f"detector model {settings.model_path} has {num_classes} classes but inference.detector.labels "
            f"lists {len(settings.labels)}: fix the list or remove it for the default names"
        )
    return tuple(settings.labels)
