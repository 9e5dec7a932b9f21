"""One onnxruntime session per model: providers, threads, optimisation, and what the model looks like.

Thread settings are deliberate: on a small edge node (2 cores) the JPEG decoders, the event loop
and the sessions share the cores, so each session gets ``intra_op_num_threads`` (default 1) and
no spin-waiting (idle intra-op threads would otherwise burn the core a decoder needs); throughput
comes from running ``DetectorSettings.sessions`` sessions side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from xueliang.inference.errors import ModelError
from xueliang.inference.settings import DetectorSettings

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"

#: what onnxruntime raises when it cannot load or run a model (pybind classes, all plain Exceptions)
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(_ort_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "NoSuchFile",
        "NoModel",
        "EngineError",
        "RuntimeException",
        "InvalidProtobuf",
        "ModelLoaded",
        "NotImplemented",
        "InvalidGraph",
        "EPFail",
    )
    if hasattr(_ort_state, name)
)

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Name and shape of one model input or output; ``None`` marks a dynamic dimension."""

    name: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a loaded model looks like and where it runs."""

    path: Path
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    providers: tuple[str, ...]

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def dynamic_batch(self) -> bool:
        """True when the first input's batch dimension is symbolic (cross-camera batching possible)."""
        return bool(self.input.shape) and self.input.shape[0] is None


def choose_providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """The requested providers this build has, in the requested order; CPU is always the last resort."""
    chosen = [p for p in requested if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def session_options(settings: DetectorSettings) -> ort.SessionOptions:
    """Session options set deliberately (see the module docstring)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = settings.intra_op_num_threads
    so.inter_op_num_threads = settings.inter_op_num_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = _OPT_LEVELS[settings.graph_optimization_level]
    so.log_severity_level = 3  # NanoDet's old export lists its weights as inputs: hundreds of warnings otherwise
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.allow_spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if settings.allow_spinning else "0")
    return so


def _shape(dims: Sequence[Any]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in dims)


def open_session(settings: DetectorSettings) -> tuple[ort.InferenceSession, ModelInfo]:
    """Load ``settings.model_path``; raises :class:`ModelError` naming the path and the setting."""
    path = settings.model_path
    if not path.is_file():
        raise ModelError(
            f"detector model {path} (resolved {path.resolve()}) does not exist or is not a file: "
            "set inference.detector.model_path to an ONNX file"
        )
    available = ort.get_available_providers()
    providers = choose_providers(settings.providers, available)
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(settings), providers=providers)
    except ORT_ERRORS as exc:
        raise ModelError(
            f"detector model {path} could not be loaded by onnxruntime ({exc}): "
            "check the file (sha256 in shared/models/README.md) or set inference.detector.model_path"
        ) from exc
    except OSError as exc:
        raise ModelError(
            f"detector model {path} is unreadable ({exc}): fix its permissions or set inference.detector.model_path"
        ) from exc
    inputs = session.get_inputs()
    if not inputs:
        raise ModelError(f"detector model {path} has no inputs: set inference.detector.model_path to a detector")
    info = ModelInfo(
        path=path,
        # NanoDet's old export lists its weights as graph inputs too: the image is the 4-D float one
        inputs=tuple(TensorInfo(i.name, _shape(i.shape)) for i in inputs if len(i.shape) == 4)
        or (TensorInfo(inputs[0].name, _shape(inputs[0].shape)),),
        outputs=tuple(TensorInfo(o.name, _shape(o.shape)) for o in session.get_outputs()),
        providers=tuple(session.get_providers()),
    )
    log.info(
        "detector model %s: running on %s (asked %s; this onnxruntime has %s); input %s %s, %s",
        path.name,
        info.providers[0],
        list(settings.providers),
        available,
        info.input.name,
        info.input.shape,
        "dynamic batch" if info.dynamic_batch else "fixed batch 1",
    )
    return session, info


def warm_up(session: ort.InferenceSession, info: ModelInfo, size: tuple[int, int], batch: int, runs: int) -> None:
    """Run the model ``runs`` times on a blank input so the first real frame is not the slow one."""
    width, height = size
    blank = np.full((batch, 3, height, width), 114.0, dtype=np.float32)
    for _ in range(runs):
        try:
            session.run(None, {info.input.name: blank})
        except ORT_ERRORS as exc:
            raise ModelError(
                f"detector model {info.path} failed its warm-up run on a {blank.shape} input ({exc}): "
                "check inference.detector.layout and inference.detector.max_batch"
            ) from exc
