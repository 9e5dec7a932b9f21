"""Settings of the analytics' hardware path: the detector and the frame sources.

Two sections, each a pydantic model with ``extra="forbid"`` and every field described; the
gateway's settings nest them (``inference.detector``, ``inference.sources``). The rules side keeps
its own settings in its own module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Layout = Literal["auto", "yolox", "nanodet", "yolov5", "yolov8", "light_person"]


class DetectorSettings(BaseModel):
    """The ONNX detector: which model, how it runs, and how requests are queued and batched."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model_path: Path = Field(
        Path("../shared/models/yolox_nano.onnx"),
        description="ONNX model file (relative paths are relative to the working directory)",
    )
    layout: Layout = Field(
        "auto",
        description="output layout of the model; 'auto' recognises it from the input/output names and shapes",
    )
    labels: list[str] | None = Field(
        None, description="class names in model order; default COCO-80 (or 'person' for light_person)"
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers in priority order, e.g. "
        "[TensorrtExecutionProvider, CUDAExecutionProvider, OpenVINOExecutionProvider, CPUExecutionProvider]; "
        "those not available in this onnxruntime build are skipped (CPU is the last resort)",
    )
    sessions: int = Field(
        2,
        ge=1,
        le=16,
        description="onnxruntime sessions run in parallel, one executor thread each "
        "(on 2 cores: 2 sessions x 1 intra-op thread beats 1 x 2, see benchmarks/pipeline.py)",
    )
    intra_op_num_threads: int = Field(1, ge=1, le=64, description="threads one session uses inside an operator")
    inter_op_num_threads: int = Field(
        1, ge=1, le=64, description="threads across operators (only used by the parallel execution mode)"
    )
    allow_spinning: bool = Field(
        False,
        description="let idle intra-op threads spin-wait; off by default: spinning burns the cores that decode JPEGs",
    )
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level"
    )
    warmup_runs: int = Field(2, ge=0, le=50, description="inference runs on a blank input at start, per session")
    max_batch: int = Field(
        8, ge=1, le=64, description="largest cross-camera batch (only when the model has a dynamic batch dimension)"
    )
    max_wait_ms: float = Field(
        10.0, ge=0.0, le=1000.0, description="longest wait to fill a batch before running a partial one"
    )
    queue_size: int = Field(
        64,
        ge=1,
        le=100_000,
        description="frames waiting for the detector; a camera's newer frame replaces its queued one, "
        "and when full the oldest queued frame is dropped (both counted per camera)",
    )
    min_score: float = Field(0.35, ge=0.0, le=1.0, description="default score threshold of a detection")
    nms_iou: float = Field(0.45, gt=0.0, le=1.0, description="IoU above which NMS suppresses a same-class box")
    classes: list[str] | None = Field(
        None, description="default class filter (names, e.g. [person, car]); null keeps every class"
    )


class SourceSettings(BaseModel):
    """Frame sources: ONVIF snapshots over HTTP, RTSP streams, files."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    snapshot_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="whole snapshot request, auth included")
    snapshot_connect_timeout_s: float = Field(2.0, gt=0.0, le=60.0, description="TCP connect to a camera")
    snapshot_pool_size: int = Field(
        64, ge=1, le=10_000, description="HTTP connections open at once across all cameras (shared client)"
    )
    snapshot_max_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest snapshot accepted; bigger answers are refused"
    )
    decode_threads: int = Field(
        1, ge=1, le=64, description="threads that decode JPEGs (bounded executor, never the event loop)"
    )
    reduced_decode: bool = Field(
        True,
        description="decode big JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling) when the model input is "
        "much smaller; the original JPEG is kept for evidence",
    )
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport (TCP survives lossy networks)")
    rtsp_open_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="opening an RTSP stream")
    rtsp_read_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="waiting for the next RTSP packet")
    reconnect_initial_s: float = Field(0.5, gt=0.0, le=60.0, description="first reconnect delay")
    reconnect_max_s: float = Field(30.0, gt=0.0, le=3600.0, description="longest reconnect delay")
    reconnect_jitter: float = Field(
        0.2, ge=0.0, le=1.0, description="random spread of each reconnect delay (0.2 = plus or minus 20 %)"
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SourceSettings:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s}) must be >= reconnect_initial_s ({self.reconnect_initial_s})"
            )
        return self
