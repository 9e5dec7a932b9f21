"""ONVIF snapshots over HTTP: one shared client for all cameras, one :class:`SnapshotSource` per camera.

Each ``read()`` is one GET of the camera's snapshot URI (from ONVIF ``GetSnapshotUri``) with
digest authentication (basic on request). The HTTP client is aiohttp: on a 2-core node it costs
about 0.2 ms of CPU per 1080p snapshot against 0.8-1.5 ms for httpx (whose connection pool scans
every connection on each request; ``benchmarks/pipeline.py`` prints the figure), and every
millisecond of it is taken from the detector. The per-camera ``aiohttp.DigestAuthMiddleware``
keeps the last challenge and answers it preemptively, so after the first request each snapshot is
one round trip. The JPEG is decoded off the event loop in the client's bounded decode executor,
at reduced scale when the model input is much smaller (see :mod:`jpeg`), and the original bytes
ride along in ``Frame.jpeg`` as evidence.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiohttp
from yarl import URL

from xueliang.inference.errors import (
    CorruptFrame,
    SourceAuthFailed,
    SourceTimeout,
    SourceUnavailable,
)
from xueliang.inference.frames import Frame
from xueliang.inference.settings import SourceSettings
from xueliang.inference.sources.base import SourceCounters, SourceState, SourceStats
from xueliang.inference.sources.jpeg import decode_jpeg

log = logging.getLogger(__name__)

T = TypeVar("T")
SocketFactory = Callable[[Any], socket.socket]  # aiohttp's: one getaddrinfo() row -> an unconnected socket

_USERINFO = re.compile(r"//[^?#]*@")  # greedy: up to the LAST @ before the query
SOURCE_CACHE = 65_536  # cameras whose snapshot source (and digest challenge) a client keeps, LRU


def redact(url: str) -> str:
    """``url`` without credentials, for messages and logs: whatever stands between ``//`` and the
    last ``@`` before the query goes, the rest is kept as written (IPv6 brackets, port), also when
    the URL does not parse (a bad port, a password with an unencoded ``/`` or ``@``: cutting at the
    first ``@`` would show the rest of such a password)."""
    return _USERINFO.sub("//", url, count=1)


class SnapshotClient:
    """The HTTP client and the JPEG decoders shared by every camera's snapshot source."""

    def __init__(
        self,
        settings: SourceSettings,
        *,
        target_size: tuple[int, int] | None = None,
        executor: Executor | None = None,
        socket_factory: SocketFactory | None = None,
    ) -> None:
        """``target_size``: the detector's input (width, height), for reduced-scale decode.

        ``executor``: decode there (``Detector.executor`` on a small node, see there) instead of in a
        pool of ``decode_threads`` of the client's own; a borrowed executor is never shut down here.

        ``socket_factory``: makes each connection's socket once its address is resolved (aiohttp's
        ``TCPConnector(socket_factory=...)``); the gateway passes one that refuses addresses outside
        the allowed networks, so a camera name that resolves elsewhere is refused at connect time.
        """
        self.settings = settings
        self.target_size = target_size if settings.reduced_decode else None
        self.counters = SourceCounters()
        self._http: aiohttp.ClientSession | None = None  # made on first use, inside the running loop
        self._socket_factory = socket_factory
        self._own_decoders = executor is None
        self._decoders: Executor = executor or ThreadPoolExecutor(
            max_workers=settings.decode_threads, thread_name_prefix="jpeg"
        )
        self._sources: OrderedDict[tuple[str, str, str | None, str | None, str], SnapshotSource] = OrderedDict()
        self._closed = False

    def source(
        self,
        camera_id: str,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        auth: Literal["digest", "basic"] = "digest",
    ) -> SnapshotSource:
        """A :class:`SnapshotSource` for one camera, sharing this client's pool and decoders.

        Asking again with the same camera, URL and credentials returns the same source (an LRU of
        ``SOURCE_CACHE`` entries), so a patrol that builds a source per visit still reuses the
        camera's digest challenge: one round trip per snapshot instead of two.
        """
        key = (camera_id, url, username, password, auth)
        found = self._sources.get(key)
        if found is not None:
            self._sources.move_to_end(key)
            return found
        source = SnapshotSource(self, camera_id, url, username=username, password=password, auth=auth)
        self._sources[key] = source
        if len(self._sources) > SOURCE_CACHE:
            self._sources.popitem(last=False)
        return source

    def stats(self) -> SourceStats:
        """Counters across every camera of this client."""
        return self.counters.snapshot(SourceState.STOPPED if self._closed else SourceState.READY)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared session (connection pool); call from the event loop that reads the sources."""
        if self._closed:
            raise SourceUnavailable("the snapshot client is closed: no more snapshots can be fetched")
        if self._http is None:
            s = self.settings
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=s.snapshot_pool_size, limit_per_host=0, socket_factory=self._socket_factory
                ),
                # the whole request runs under asyncio.timeout(snapshot_timeout_s) in _fetch: no second timer
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.snapshot_connect_timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),  # cameras' cookies are never sent to another camera
                trust_env=False,  # a proxy from the environment must not sit between the node and its cameras
                auto_decompress=False,
            )
        return self._http

    @property
    def decoders(self) -> Executor:
        """The bounded executor the JPEGs are decoded in (never the event loop)."""
        return self._decoders

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._http is not None:
            await self._http.close()
        if self._own_decoders:
            await asyncio.to_thread(self._decoders.shutdown, wait=True)

    async def __aenter__(self) -> SnapshotClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _nothing(frame: Frame) -> None:
    return None


def _parsed(url: str) -> URL | str:
    """``url`` parsed once per camera: aiohttp would parse the string on every request, and yarl's
    cache of parsed strings (128 entries) never hits when a patrol goes round thousands of cameras
    (about 30 us a snapshot). A string yarl cannot parse stays a string; the first read refuses it
    with the usual message."""
    try:
        return URL(url)
    except (ValueError, TypeError):
        return url


class SnapshotSource:
    """One camera's snapshot URI as a :class:`FrameSource`."""

    def __init__(
        self,
        client: SnapshotClient,
        camera_id: str,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        auth: Literal["digest", "basic"] = "digest",
    ) -> None:
        self._client = client
        self._camera_id = camera_id
        self.url = url
        self._target = _parsed(url)
        self._shown_url = redact(url)
        self._username = username
        self._headers: dict[str, str] | None = None
        self._middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        if username is not None:
            secret = password or ""
            if auth == "digest":
                self._middlewares = (aiohttp.DigestAuthMiddleware(username, secret),)
            else:
                self._headers = {"Authorization": aiohttp.encode_basic_auth(username, secret)}
        self.counters = SourceCounters()
        self._seq = itertools.count(1)

    @property
    def camera_id(self) -> str:
        return self._camera_id

    async def read(self) -> Frame:
        """Fetch and decode one snapshot.

        Raises SourceAuthFailed (401/403), SourceTimeout (no complete answer within
        ``snapshot_timeout_s``), SourceUnavailable (cannot connect, HTTP error, answer too big) or
        CorruptFrame (bytes that are no decodable JPEG; counted, the next read may succeed).
        """
        frame, _ = await self.read_then(_nothing)
        return frame

    async def read_then(self, then: Callable[[Frame], T]) -> tuple[Frame, T]:
        """``read()``, and ``then(frame)`` right after the decode, in the same hop to the decode
        executor: one hand-off less, and the picture is still in that core's cache (the patrol
        runs its quality checks there). Raises what ``read()`` raises, and whatever ``then`` raises."""
        data = await self._fetch()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._client.decoders, self._decode_then, data, then)
        except CorruptFrame as exc:
            log.warning("%s", exc)
            raise CorruptFrame(str(exc), camera_id=self._camera_id) from exc

    def _decode_then(self, data: bytes, then: Callable[[Frame], T]) -> tuple[Frame, T]:
        """Decode-executor side of ``read_then`` (counters are locked: safe from any thread)."""
        try:
            image, scale = decode_jpeg(
                data, target=self._client.target_size, what=f"camera {self._camera_id}: snapshot from {self._shown_url}"
            )
        except CorruptFrame as exc:
            self._count(bytes=len(data))
            self._count_error(str(exc), corrupt=True)
            raise
        self._count(frames=1, bytes=len(data))  # one locked update per snapshot
        frame = Frame(
            camera_id=self._camera_id,
            image=image,
            captured_at=time.time(),
            seq=next(self._seq),  # atomic: frames of one source are numbered in decode order
            source="snapshot",
            scale=scale,
            jpeg=data,
        )
        return frame, then(frame)

    async def _fetch(self) -> bytes:
        settings = self._client.settings
        where = f"camera {self._camera_id}: snapshot {self._shown_url}"
        try:
            async with asyncio.timeout(settings.snapshot_timeout_s):
                async with self._client.http.get(
                    self._target, headers=self._headers, middlewares=self._middlewares, allow_redirects=False
                ) as response:
                    self._check_status(response.status, response.reason or "", where)
                    length = response.content_length
                    if length is not None and length > settings.snapshot_max_bytes:
                        self._too_big(where)
                    chunks: list[bytes] = []
                    size = 0
                    while chunk := await response.content.readany():
                        size += len(chunk)
                        if size > settings.snapshot_max_bytes:
                            self._too_big(where)
                        chunks.append(chunk)
        except TimeoutError as exc:  # asyncio.timeout, and aiohttp's connect / read timeouts
            self._count_error("timeout")
            raise SourceTimeout(
                f"{where} gave no complete answer within {settings.snapshot_timeout_s:g} s "
                f"({type(exc).__name__}): check that the camera is reachable and not overloaded",
                camera_id=self._camera_id,
            ) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            self._count_error("bad url")
            raise SourceUnavailable(
                f"{where}: the URI is not a usable http(s) URL ({type(exc).__name__}: {redact(str(exc))}): "
                "fix the camera's snapshot URI",
                camera_id=self._camera_id,
            ) from exc
        except aiohttp.ClientError as exc:  # connection refused / reset, bad answer, digest challenge unusable
            self._count_error(type(exc).__name__)
            raise SourceUnavailable(
                f"{where} cannot be reached ({type(exc).__name__}: {exc}): check the camera's power and network",
                camera_id=self._camera_id,
            ) from exc
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _check_status(self, status: int, reason: str, where: str) -> None:
        if status in (401, 403):
            self._count_error(f"HTTP {status}")
            user = f"user '{self._username}'" if self._username is not None else "no credentials"
            raise SourceAuthFailed(
                f"{where} refused the credentials ({user}, HTTP {status}): "
                "check the camera's username and password in the registry",
                camera_id=self._camera_id,
            )
        if status != 200:
            self._count_error(f"HTTP {status}")
            raise SourceUnavailable(
                f"{where} answered HTTP {status} {reason}: "
                "check the snapshot URI (ONVIF GetSnapshotUri) and that snapshots are enabled",
                camera_id=self._camera_id,
            )

    def _too_big(self, where: str) -> None:
        limit = self._client.settings.snapshot_max_bytes
        self._count_error("too big")
        raise SourceUnavailable(
            f"{where} sent more than {limit} bytes: not a snapshot, or raise inference.sources.snapshot_max_bytes",
            camera_id=self._camera_id,
        )

    def _count(self, **counts: int) -> None:
        self.counters.add(**counts)
        self._client.counters.add(**counts)

    def _count_error(self, message: str, *, corrupt: bool = False) -> None:
        self.counters.error(message, corrupt=corrupt)
        self._client.counters.error(f"{self._camera_id}: {message}", corrupt=corrupt)

    def stats(self) -> SourceStats:
        return self.counters.snapshot(SourceState.READY)

    async def close(self) -> None:
        """Nothing held per camera (the shared client owns the connections)."""
