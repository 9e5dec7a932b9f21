"""The blocking half of the detector: a pool of onnxruntime sessions and one batch through them.

:meth:`Engine.infer` is what an executor thread runs: letterbox every frame into one batch tensor,
``session.run``, decode each image's outputs. It takes a free session from the pool, so as many
batches run in parallel as there are sessions (and executor threads).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from xueliang.inference.detector.adapters import Adapter
from xueliang.inference.detector.layout import build_adapter
from xueliang.inference.detector.postprocess import ClassFilter
from xueliang.inference.detector.preprocess import Tensor
from xueliang.inference.detector.session import ORT_ERRORS, ModelInfo, open_session, warm_up
from xueliang.inference.detector.stats import StatsRecorder
from xueliang.inference.errors import DetectorError
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.settings import DetectorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ask:
    """What one request wants from its frame: which classes, above which score."""

    keep: ClassFilter
    min_score: float


class Engine:
    """Sessions, adapter and the batch function; thread-safe (one session per running batch)."""

    def __init__(self, settings: DetectorSettings, stats: StatsRecorder) -> None:
        self.settings = settings
        self._stats = stats
        first, self.info = open_session(settings)
        self.adapter: Adapter = build_adapter(self.info, settings)
        self.sessions: list[ort.InferenceSession] = [first]
        self.sessions += [open_session(settings)[0] for _ in range(settings.sessions - 1)]
        self.max_batch = settings.max_batch if self.info.dynamic_batch else 1
        for session in self.sessions:
            warm_up(session, self.info, self.adapter.input_size, 1, settings.warmup_runs)
            if self.max_batch > 1:
                warm_up(session, self.info, self.adapter.input_size, self.max_batch, min(settings.warmup_runs, 1))
        self._free: queue.SimpleQueue[ort.InferenceSession] = queue.SimpleQueue()
        for session in self.sessions:
            self._free.put(session)
        self._filters: dict[frozenset[str] | None, ClassFilter] = {}
        self._local = threading.local()  # per executor thread: its input tensor (``_input``)
        log.info(
            "detector ready: %s, layout %s, %d session(s) x %d intra-op thread(s), batch up to %d",
            self.info.path.name,
            self.adapter.layout,
            len(self.sessions),
            settings.intra_op_num_threads,
            self.max_batch,
        )

    def class_filter(self, classes: frozenset[str] | None) -> ClassFilter:
        """The (cached) filter for a class set; raises ValueError for names the model does not know."""
        found = self._filters.get(classes)
        if found is None:
            found = ClassFilter.build(self.adapter.labels, classes)
            if len(self._filters) < 256:
                self._filters[classes] = found
        return found

    def infer(self, frames: Sequence[Frame], asks: Sequence[Ask]) -> list[list[Detection]]:
        """Detect on ``frames`` as one batch (blocking; run it in an executor thread)."""
        width, height = self.adapter.input_size
        t0 = time.perf_counter()
        batch = self._input(len(frames), height, width)
        boxes = [self.adapter.preprocess(f.image, batch[i])[1] for i, f in enumerate(frames)]
        t1 = time.perf_counter()
        session = self._free.get()
        try:
            outputs = session.run(self.adapter.output_names, {self.info.input.name: batch})
        except ORT_ERRORS as exc:
            self._stats.failed(len(frames))
            cams = ", ".join(sorted({f.camera_id for f in frames}))
            raise DetectorError(
                f"detector model {self.info.path.name} failed on a batch of {len(frames)} (cameras {cams}): {exc}",
                camera_id=frames[0].camera_id if len(frames) == 1 else "",
            ) from exc
        finally:
            self._free.put(session)
        t2 = time.perf_counter()
        nms_iou = self.settings.nms_iou
        results = [
            self.adapter.decode(outputs, i, lb, min_score=ask.min_score, keep=ask.keep, nms_iou=nms_iou)
            for i, (lb, ask) in enumerate(zip(boxes, asks, strict=True))
        ]
        t3 = time.perf_counter()
        self._stats.batch(len(frames), (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return results

    def _input(self, size: int, height: int, width: int) -> Tensor:
        """This thread's input tensor for a batch of ``size``: the first ``size`` slots of one
        ``max_batch`` tensor made once and reused (the outputs never alias it; a leading slice is
        contiguous), whatever size each batch has; a fresh 2 MB array per frame costs the pipeline
        page faults and cache misses the benchmark's limit does not pay."""
        batch: Tensor | None = getattr(self._local, "batch", None)
        if batch is None or batch.shape[1:] != (3, height, width) or batch.shape[0] < size:
            batch = np.empty((max(size, self.max_batch), 3, height, width), dtype=np.float32)
            self._local.batch = batch
        return batch[:size]

    @property
    def providers(self) -> tuple[str, ...]:
        return self.info.providers

    @property
    def model_info(self) -> ModelInfo:
        return self.info
