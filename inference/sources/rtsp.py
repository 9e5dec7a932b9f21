"""RTSP streams through OpenCV's FFmpeg backend: one reader thread per stream, latest frame wins.

The reader thread owns the ``cv2.VideoCapture`` (it is not thread-safe): it opens the stream
(TCP transport, open and read timeouts so no call blocks for ever), grabs every packet so the
decoder never falls behind, converts only as many frames as ``max_fps`` asks for, and keeps the
newest one in a one-slot buffer: a frame nobody read before the next one arrived is counted as
dropped. A lost stream is reopened with exponential backoff and jitter. ``stop()`` returns
within the open + read timeouts (the longest a blocked FFmpeg call can take), never hangs.

A URL that cannot work (unparsable, not ``rtsp://``/``rtsps://``, no host, bad port) is refused
on ``start()``/``read()`` with :class:`SourceUnavailable` and never handed to FFmpeg. OpenCV does
not say why an open failed, so after each failed open the reader asks the camera
itself (TCP connect, one ``DESCRIBE`` with the credentials) and the reason is kept: a refused
login is :class:`SourceAuthFailed`, raised by ``latest()`` at once (retrying the same password
only brings the camera's lockout closer); refused or unreachable is :class:`SourceUnavailable`.
Credentials never appear in a message, a log line or ``stats().last_error``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import random
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import cv2

from xueliang.inference.errors import SourceAuthFailed, SourceError, SourceTimeout, SourceUnavailable
from xueliang.inference.frames import Frame, Image
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources.base import SourceCounters, SourceState, SourceStats, paced

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
_USERINFO = re.compile(r"//.*@")  # greedy, to the last '@': an unencoded password may hold '/' or '@'
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')
_HEAD_LIMIT = 16_384

_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_env_lock = threading.Lock()


def _ensure_transport(transport: str) -> None:
    """Ask OpenCV's FFmpeg backend for ``transport`` (read from the environment at each open).

    The variable is process-wide: an operator's own setting is left alone.
    """
    with _env_lock:
        if _ENV not in os.environ:
            os.environ[_ENV] = f"rtsp_transport;{transport}"


class BadRtspUrl(ValueError):
    """A stream URL that cannot work; the message holds no credentials."""


@dataclass(frozen=True, slots=True)
class RtspTarget:
    """Where a stream URL points: for the diagnosis and for messages (``uri`` has no credentials)."""

    host: str
    port: int
    uri: str
    username: str | None
    password: str | None
    tls: bool


def parse_rtsp_url(url: str) -> RtspTarget:
    """The parts of an ``rtsp://`` or ``rtsps://`` URL; :class:`BadRtspUrl` saying why it cannot work."""
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise BadRtspUrl("empty, or holds white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # urllib's own text may quote a piece of the password: not shown
        raise BadRtspUrl(
            "unparsable (an unclosed '[' or a port that is no number 0-65535; "
            "percent-encode '@', ':' and '/' in the user name and password)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadRtspUrl(f"scheme {scheme + '://' if scheme else 'missing'} is not rtsp:// or rtsps://")
    if not parts.hostname:
        raise BadRtspUrl("no host")
    if "@" in parts.path or "@" in parts.query:
        raise BadRtspUrl("an '@' after the host (percent-encode '/' and '@' in the user name and password)")
    netloc = parts.netloc.rpartition("@")[2]
    uri = f"{scheme}://{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    return RtspTarget(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        uri=uri,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        tls=scheme == "rtsps",
    )


def shown_url(url: str) -> str:
    """``url`` without credentials, for messages and logs, whatever it holds."""
    try:
        return parse_rtsp_url(url).uri
    except BadRtspUrl:
        return "".join(c if c.isprintable() else "?" for c in _USERINFO.sub("//", url))


def diagnose(target: RtspTarget, timeout: float) -> tuple[type[SourceError], str]:
    """Why the camera gives no stream: TCP connect, then one ``DESCRIBE`` (answering the camera's
    challenge with the credentials). The error class to raise and the reason, without secrets."""
    where = f"{target.host}:{target.port}"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as raw:
            sock = _tls(raw, target.host) if target.tls else raw
            status, reason, challenges = _describe(sock, target, None, 1, deadline)
            if status == 401 and target.username is not None:
                answer = _authorization(challenges, target)
                if answer is not None:
                    status, reason, _ = _describe(sock, target, answer, 2, deadline)
    except socket.gaierror as exc:
        return SourceUnavailable, f"cannot resolve host {target.host} ({exc.strerror}): check the stream URI"
    except ConnectionRefusedError:
        return SourceUnavailable, (
            f"{where} refused the connection: nothing listens there (check the RTSP port and that RTSP is "
            "enabled on the camera)"
        )
    except TimeoutError:
        return SourceTimeout, f"{where} gave no RTSP answer within {timeout:g} s (camera offline, firewalled or busy)"
    except ssl.SSLError as exc:
        return SourceUnavailable, f"TLS with {where} failed ({exc.reason or exc})"
    except OSError as exc:
        return SourceUnavailable, f"cannot reach {where}: {exc.strerror or exc}"
    except ValueError as exc:
        return SourceUnavailable, f"{where} does not speak RTSP ({exc}): check the stream URI's port"
    if status == 401:
        if target.username is None:
            return SourceAuthFailed, "the camera asks for credentials and the URL has none: set the camera's login"
        return SourceAuthFailed, (
            f"the camera refused the password of user {target.username!r} (RTSP 401): correct the camera's "
            "login (cameras lock the account after repeated failures)"
        )
    if status == 403:
        return SourceAuthFailed, f"user {target.username!r} may not watch {target.uri} (RTSP 403): grant it the right"
    if status == 404:
        return SourceUnavailable, f"the camera has no stream {target.uri} (RTSP 404): re-probe its stream URI"
    if status == 200:
        return SourceUnavailable, "the camera describes the stream (RTSP 200) but FFmpeg could not open it (codec?)"
    return SourceUnavailable, f"the camera answered RTSP {status} {reason}".rstrip()


def _tls(raw: socket.socket, host: str) -> socket.socket:
    context = ssl.create_default_context()
    context.check_hostname = False  # only asking why the stream failed, as FFmpeg does (no verification)
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(raw, server_hostname=host)


def _describe(
    sock: socket.socket, target: RtspTarget, authorization: str | None, cseq: int, deadline: float
) -> tuple[int, str, list[str]]:
    """One DESCRIBE: (status, reason, WWW-Authenticate challenges); reads and drops the body."""
    lines = [f"DESCRIBE {target.uri} RTSP/1.0", f"CSeq: {cseq}", "Accept: application/sdp"]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock, deadline)
        if len(data) > _HEAD_LIMIT:
            raise ValueError(f"answer head over {_HEAD_LIMIT} bytes")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("RTSP/") or not code.isdigit():
        raise ValueError(f"answer {status_line[:40]!r}")
    challenges, length = [], 0
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "www-authenticate":
            challenges.append(value.strip())
        elif name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value)
    while len(body) < min(length, _HEAD_LIMIT):
        body += _recv(sock, deadline)
    return int(code), reason.strip(), challenges


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)
    chunk = sock.recv(4096)
    if not chunk:
        raise ConnectionResetError(104, "the camera closed the connection")
    return chunk


def _authorization(challenges: list[str], target: RtspTarget) -> str | None:
    """The Authorization answering a Digest (RFC 2617/7616 MD5) or Basic challenge."""
    user, password = target.username or "", target.password or ""
    by_scheme = {c.partition(" ")[0].lower(): c.partition(" ")[2] for c in challenges}
    if "digest" in by_scheme:
        params = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(by_scheme["digest"])}
        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        ha1 = _md5(f"{user}:{realm}:{password}")
        ha2 = _md5(f"DESCRIBE:{target.uri}")
        fields = f'username="{user}", realm="{realm}", nonce="{nonce}", uri="{target.uri}", algorithm=MD5'
        if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
            cnonce = secrets.token_hex(8)
            response = _md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            fields += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in params:
            fields += f', opaque="{params["opaque"]}"'
        return f'Digest {fields}, response="{response}"'
    if "basic" in by_scheme:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


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
        """Stop the reader; returns within the open + read timeouts (plus a second of slack)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            limit = self.settings.rtsp_open_timeout_s + self.settings.rtsp_read_timeout_s + 1.0
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
                await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - time.monotonic()))
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
