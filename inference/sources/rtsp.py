"""RTSP streams through OpenCV's FFmpeg backend: one reader thread per stream, latest frame wins.

The reader thread owns the ``cv2.VideoCapture`` (it is not thread-safe): it opens the stream
(TCP transport, open and read timeouts so no call blocks for ever), grabs every packet so the
decoder never falls behind, converts only as many frames as ``max_fps`` asks for, and keeps the
newest one in a one-slot buffer: a frame nobody read before the next one arrived is counted as
dropped. A lost stream is reopened with exponential backoff and jitter. ``stop()`` returns
within the open timeout + twice the read timeout (a blocked FFmpeg open, then the diagnosis),
never hangs.

A URL that cannot work (unparsable, not ``rtsp://``/``rtsps://``, no host, bad port) is refused
on ``start()``/``read()`` with :class:`SourceUnavailable` and never handed to FFmpeg. OpenCV does
not say why an open failed, so after each failed open the reader asks
:func:`~xueliang.inference.sources.rtsp_probe.diagnose` and keeps the reason: a refused login is
:class:`SourceAuthFailed`, raised by ``latest()`` at once (retrying the same password only brings
the camera's lockout closer); refused or unreachable is :class:`SourceUnavailable`.
Credentials never appear in a message, a log line or ``stats().last_error``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import cast

import cv2

from xueliang.inference.errors import SourceAuthFailed, SourceError, SourceTimeout, SourceUnavailable
from xueliang.inference.frames import Frame, Image
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources.base import SourceCounters, SourceState, SourceStats, paced
from xueliang.inference.sources.rtsp_probe import BadRtspUrl, RtspTarget, diagnose, parse_rtsp_url, shown_url

log = logging.getLogger(__name__)

_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_env_lock = threading.Lock()


def _ensure_transport(transport: str) -> None:
    """Ask OpenCV's FFmpeg backend for ``transport`` (read from the environment at each open).

    The variable is process-wide: an operator's own setting is left alone.
    """
    with _env_lock:
        if _ENV not in os.environ:
            os.environ[_ENV] = f"rtsp_transport;{transport}"


def backoff_delay(attempt: int, settings: SourceSettings, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (0-based): exponential, capped, spread by the jitter."""
    base = min(settings.reconnect_max_s, settings.reconnect_initial_s * (2.0**attempt))
    spread = settings.reconnect_jitter
    return max(0.0, base * (1.0 + rng.uniform(-spread, spread)))


class RtspSource:
    """One camera's RTSP stream as a :class:`FrameSource` (a single consumer reads it)."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        settings: SourceSettings,
        *,
        max_fps: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._camera_id = camera_id
        self.url = url
        self._shown = shown_url(url)
        self._target: RtspTarget | None = None
        self._bad_url = ""
        try:
            self._target = parse_rtsp_url(url)
        except BadRtspUrl as exc:  # refused on start()/read(), so a patrol or a watch carries on
            self._bad_url = str(exc)
        # the class and reason of the last failed open, from diagnose(); None while streaming
        self._failure: tuple[type[SourceError], str] | None = None
        self.settings = settings
        self.max_fps = max_fps
        self._rng = rng or random.Random()
        self.counters = SourceCounters()
        self.state = SourceState.NEW
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._unread = False
        self._returned_seq = 0
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()

    @property
    def camera_id(self) -> str:
        return self._camera_id

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the reader thread; returns at once (the stream opens in the background)."""
        if self.state is not SourceState.NEW:
            raise SourceUnavailable(f"camera {self._camera_id}: RTSP source already {self.state.value}")
        if self._bad_url:
            self.counters.error(f"bad stream URL: {self._bad_url}")
            raise SourceUnavailable(
                f"camera {self._camera_id}: stream URL {self._shown} cannot work: {self._bad_url}; "
                "correct the camera's stream URI or re-probe it",
                camera_id=self._camera_id,
            )
        _ensure_transport(self.settings.rtsp_transport)
        self._loop = asyncio.get_running_loop()
        self.state = SourceState.CONNECTING
        self._thread = threading.Thread(target=self._run, name=f"rtsp-{self._camera_id}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the reader; returns within the open + 2 x read timeouts (plus a second of slack)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            limit = self.settings.rtsp_open_timeout_s + 2 * self.settings.rtsp_read_timeout_s + 1.0
            await asyncio.to_thread(thread.join, limit)
            if thread.is_alive():
                log.error(
                    "camera %s: RTSP reader did not stop within %.1f s (left as a daemon)", self._camera_id, limit
                )
        self.state = SourceState.STOPPED
        self._wake()

    async def close(self) -> None:
        await self.stop()

    async def __aenter__(self) -> RtspSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- reading --------------------------------------------------------------------------------

    async def latest(self, within: float | None = None) -> Frame:
        """The newest frame not yet returned; waits up to ``within`` s (default open + read timeouts).

        Starts the reader on first use. Raises SourceTimeout when none arrives in time (the message
        says what the stream is doing) and SourceUnavailable when the source is stopped.
        """
        if self.state is SourceState.NEW:
            await self.start()  # a one-shot grab (patrol): read() then close(), no explicit start
        default = self.settings.rtsp_open_timeout_s + self.settings.rtsp_read_timeout_s
        limit = within if within is not None else default
        deadline = time.monotonic() + limit
        while True:
            with self._lock:
                frame = self._latest
                if frame is not None and frame.seq > self._returned_seq:
                    self._returned_seq = frame.seq
                    self._unread = False
                    return frame
            failure = self._failure
            if failure is not None and failure[0] is SourceAuthFailed:
                raise SourceAuthFailed(
                    f"camera {self._camera_id}: {self._shown}: {failure[1]}", camera_id=self._camera_id
                )
            if self.state is SourceState.STOPPED:
                raise SourceUnavailable(f"camera {self._camera_id}: RTSP source {self._shown} is {self.state.value}")
            self._arrived.clear()
            with self._lock:
                if self._latest is not None and self._latest.seq > self._returned_seq:
                    continue
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self._arrived.wait()
            except TimeoutError:
                last = self.counters.snapshot(self.state).last_error or "no error reported"
                kind = failure[0] if (failure := self._failure) is not None else SourceTimeout
                raise kind(
                    f"camera {self._camera_id}: no frame from {self._shown} within {limit:g} s "
                    f"(stream {self.state.value}; last error: {last})",
                    camera_id=self._camera_id,
                ) from None

    async def read(self) -> Frame:
        return await self.latest()

    def frames(self, fps: float | None = None) -> AsyncIterator[Frame]:
        """The stream at most ``fps`` frames a second, always the newest frame."""
        return paced(self, fps)

    def stats(self) -> SourceStats:
        return self.counters.snapshot(self.state)

    # --- the reader thread ------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.state = SourceState.CONNECTING
            cap = self._open()
            if cap is not None:
                if self._stream(cap):
                    attempt = 0  # the stream delivered frames: start the backoff again from the bottom
                cap.release()
            if self._stop.is_set():
                break
            failure = self._failure
            if failure is not None and failure[0] is SourceAuthFailed:
                break  # the same password again only brings the camera's account lockout closer
            self.state = SourceState.RECONNECTING
            delay = backoff_delay(attempt, self.settings, self._rng)
            attempt += 1
            log.info(
                "camera %s: RTSP %s reconnecting in %.2f s (attempt %d)", self._camera_id, self._shown, delay, attempt
            )
            if self._stop.wait(delay):
                break
            self.counters.add(reconnects=1)
        self.state = SourceState.STOPPED
        self._wake()

    def _open(self) -> cv2.VideoCapture | None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.settings.rtsp_open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.settings.rtsp_read_timeout_s * 1000),
        ]
        try:
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            why = f"open failed: {self._scrub(str(exc))}"
            self.counters.error(why)
            log.warning("camera %s: RTSP %s: %s", self._camera_id, self._shown, why)
            return None
        if not cap.isOpened():
            cap.release()
            if self._stop.is_set():
                return None  # stopping: the last reason stays as it was
            reason = "cannot open the stream"
            if self._target is not None:
                kind, why = diagnose(self._target, self.settings.rtsp_read_timeout_s)
                self._failure = (kind, why)
                reason = f"{reason}: {why}"
            self.counters.error(reason)
            log.warning("camera %s: RTSP %s: %s", self._camera_id, self._shown, reason)
            self._wake()
            return None
        self._failure = None
        log.info("camera %s: RTSP %s open", self._camera_id, self._shown)
        return cap

    def _scrub(self, text: str) -> str:
        """``text`` (an OpenCV message) without the URL or the password, should it quote them."""
        text = text.replace(self.url, self._shown)
        password = self._target.password if self._target is not None else None
        if password:
            text = text.replace(password, "***")
        return text

    def _stream(self, cap: cv2.VideoCapture) -> bool:
        """Read until the stream fails or stop is asked; True when at least one frame came."""
        self.state = SourceState.STREAMING
        period = 1.0 / self.max_fps if self.max_fps else 0.0
        last = 0.0
        delivered = False
        while not self._stop.is_set():
            try:
                if not cap.grab():
                    self.counters.error("stream lost (end of stream or read timeout)")
                    log.warning("camera %s: RTSP %s stream lost", self._camera_id, self._shown)
                    return delivered
                now = time.monotonic()
                if period and now - last < period:
                    continue  # demuxed and decoded, not converted: the newest will be picked later
                ok, image = cap.retrieve()
            except cv2.error as exc:
                self.counters.error(f"decoder error: {self._scrub(str(exc))}", corrupt=True)
                continue
            if not ok or image is None:
                self.counters.error("frame could not be decoded", corrupt=True)
                continue
            last = now
            delivered = True
            self._publish(cast(Image, image))
        return delivered

    def _publish(self, image: Image) -> None:
        self._seq += 1
        frame = Frame(camera_id=self._camera_id, image=image, captured_at=time.time(), seq=self._seq, source="rtsp")
        with self._lock:
            if self._unread:
                self.counters.add(drops=1)
            self._latest = frame
            self._unread = True
        self.counters.add(frames=1)
        self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._arrived.set)
        except RuntimeError:  # the loop closed between the check and the call
            return
