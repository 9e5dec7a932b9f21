"""What every frame source is: the :class:`FrameSource` protocol, its state enum and its counters."""

from __future__ import annotations

import asyncio
import enum
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from xueliang.inference.errors import CorruptFrame, SourceEnded
from xueliang.inference.frames import Frame


class SourceState(enum.Enum):
    """Lifecycle of a long-lived source (an RTSP stream); one-shot sources stay ``READY``."""

    NEW = "new"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"  # waiting out a backoff delay after a failure
    READY = "ready"  # request/response sources (snapshots, files): nothing held open
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters of one source (or of a shared snapshot client, across its cameras)."""

    frames: int  # frames delivered (decoded)
    corrupt: int  # frames skipped because they could not be decoded
    drops: int  # frames decoded but replaced by a newer one before anybody read them
    errors: int  # failed requests / lost streams
    reconnects: int  # RTSP streams reopened after a failure
    bytes: int  # encoded bytes received (snapshots, files)
    state: SourceState
    last_error: str


class SourceCounters:
    """Mutable counters behind :class:`SourceStats`; safe to update from reader and decoder threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames = self.corrupt = self.drops = self.errors = self.reconnects = self.bytes = 0
        self.last_error = ""

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def error(self, message: str, *, corrupt: bool = False) -> None:
        with self._lock:
            if corrupt:
                self.corrupt += 1
            else:
                self.errors += 1
            self.last_error = message

    def snapshot(self, state: SourceState) -> SourceStats:
        with self._lock:
            return SourceStats(
                frames=self.frames,
                corrupt=self.corrupt,
                drops=self.drops,
                errors=self.errors,
                reconnects=self.reconnects,
                bytes=self.bytes,
                state=state,
                last_error=self.last_error,
            )


@runtime_checkable
class FrameSource(Protocol):
    """A camera's pictures. ``read()`` returns the next (or newest) frame.

    ``read()`` raises :class:`SourceError` subclasses when no frame can be had (unreachable,
    timeout, refused credentials, a finite source ended) and :class:`CorruptFrame` when a
    one-shot source got undecodable bytes; streaming sources skip corrupt frames and count them.
    """

    @property
    def camera_id(self) -> str: ...

    async def read(self) -> Frame: ...

    def stats(self) -> SourceStats: ...

    async def close(self) -> None: ...


T = TypeVar("T")


@runtime_checkable
class ReadThen(Protocol):
    """A source that can run a function on its frame right after decoding it, in the same executor
    hop (``SnapshotSource``): the patrol runs its quality checks that way."""

    async def read_then(self, then: Callable[[Frame], T]) -> tuple[Frame, T]: ...


@functools.cache
def reads_then(kind: type) -> bool:
    """Whether sources of class ``kind`` are ``ReadThen``: asked once per class, as a protocol
    ``isinstance`` costs about 30 us on every visit."""
    return issubclass(kind, ReadThen)


async def paced(source: FrameSource, fps: float | None = None) -> AsyncIterator[Frame]:
    """Frames of ``source`` at most ``fps`` a second (``None``: as fast as it delivers them).

    Corrupt frames are skipped (the source counts them); other errors end the iteration by
    propagating, except :class:`SourceEnded`, which ends it quietly.
    """
    period = 0.0 if not fps else 1.0 / fps
    while True:
        try:
            frame = await source.read()
        except CorruptFrame:
            continue
        except SourceEnded:
            return
        yielded = time.monotonic()
        yield frame
        if period:
            # at most fps: the next read starts a period after this frame was handed out
            await asyncio.sleep(max(0.0, yielded + period - time.monotonic()))
