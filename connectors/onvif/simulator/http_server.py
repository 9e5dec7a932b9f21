"""A small, fast HTTP/1.1 server on asyncio + httptools, one listener for every camera address.

Why not aiohttp or uvicorn: each camera is told apart by the connection's *local* address, some
faults act on the connection itself (reset at accept, never answer), and the simulator must serve
thousands of SOAP calls per second on a fraction of a core. A protocol object per connection
parses with httptools, answers synchronous handlers inline (no task per request) and keeps
requests of one connection in order (pipelining), at most ``MAX_PIPELINED`` waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable
from typing import cast

import httptools

from xueliang.connectors.onvif.simulator.http_types import HttpHandler, HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

MAX_PIPELINED = 32  # requests queued on one connection; more closes the connection (counted)
MAX_BODY = 1 << 20  # request bodies larger than 1 MiB are refused with 413
_LINGER_RESET = struct.pack("ii", 1, 0)


def reset_transport(transport: asyncio.Transport) -> None:
    """Close with an RST (SO_LINGER 0), like a device that is gone."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


def is_loopback(address: str) -> bool:
    """Whether a connection's local address is a loopback one (127.0.0.0/8, ::1, IPv4-mapped 127.x):
    the listeners bind the wildcard to hear every 127.x.y.z camera, and so hear the network too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class HttpStats:
    """Counters of one HTTP server."""

    __slots__ = ("connections", "pipeline_overflows", "requests", "resets", "unanswered")

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.resets = 0
        self.unanswered = 0
        self.pipeline_overflows = 0


class HttpConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._handler = server.handler
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._local = ""
        self._peer = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: deque[tuple[HttpRequest, bool]] = deque()
        self._busy = False  # a response is being produced asynchronously
        self._silent = False  # a request was left unanswered: answer nothing more
        self._task: asyncio.Task[None] | None = None
        self.last_activity = time.monotonic()

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        self._local = sockname[0] if sockname else ""
        self._peer = peername[0] if peername else ""
        self._server.stats.connections += 1
        if not self._handler.accept(self._local):
            self._server.stats.resets += 1
            reset_transport(transport)
            return
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reply_error(400, "upgrade not supported")
        except httptools.HttpParserError as exc:
            self._reply_error(400, f"malformed HTTP request: {exc}")

    # --- httptools callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_BODY:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._body_size > MAX_BODY:
            self._reply_error(413, "request body larger than 1 MiB")
            return
        path, _, query = self._url.decode("latin-1").partition("?")
        request = HttpRequest(
            method=self._parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            headers=self._headers,
            body=b"".join(self._body),
            local_address=self._local,
            peer_address=self._peer,
        )
        keep_alive = self._parser.should_keep_alive()
        self._server.stats.requests += 1
        if self._busy or self._silent:
            if len(self._queue) >= MAX_PIPELINED:
                self._server.stats.pipeline_overflows += 1
                self._close()
                return
            self._queue.append((request, keep_alive))
            return
        self._dispatch(request, keep_alive)

    # --- dispatch ----------------------------------------------------------------------------
    def _dispatch(self, request: HttpRequest, keep_alive: bool) -> None:
        try:
            result = self._handler.handle(request)
        except Exception:  # a bug in a handler: answer 500 and log it, the server goes on
            logger.exception("simulator failed on %s %s for %s", request.method, request.path, self._local)
            self._reply_error(500, "simulator error; see its log")
            return
        if result is None:
            self._go_silent()
        elif isinstance(result, HttpResponse):
            self._write(result, keep_alive)
        else:
            self._busy = True
            self._task = asyncio.ensure_future(self._finish(result, keep_alive))

    async def _finish(self, pending: Awaitable[HttpResponse | None], keep_alive: bool) -> None:
        try:
            response = await pending
        except Exception:  # a bug in a handler: answer 500 and log it, the server goes on
            logger.exception("simulator failed answering camera %s", self._local)
            response = HttpResponse(500, b"simulator error; see its log", close=True)
        self._busy = False
        self._task = None
        if response is None:
            self._go_silent()
            return
        self._write(response, keep_alive)
        while self._queue and not self._busy and not self._silent and self._transport is not None:
            request, keep = self._queue.popleft()
            self._dispatch(request, keep)

    def _go_silent(self) -> None:
        self._server.stats.unanswered += 1
        self._silent = True
        self._queue.clear()

    def _write(self, response: HttpResponse, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if response.reset:
            self._server.stats.resets += 1
            reset_transport(transport)
            return
        transport.write(response.encode(keep_alive))
        self.last_activity = time.monotonic()
        if not keep_alive or response.close:
            transport.close()

    def _reply_error(self, status: int, message: str) -> None:
        self._write(HttpResponse(status, message.encode(), close=True), keep_alive=False)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def idle(self, now: float, limit: float) -> bool:
        """True when nothing happened on this connection for ``limit`` seconds and nothing is pending."""
        return not self._busy and now - self.last_activity > limit

    def close(self) -> asyncio.Task[None] | None:
        """Close the connection (server stop or idle sweep); return the answer still being produced, if any."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self._close()
        return task


class HttpServer:
    """The listener and its live connections."""

    def __init__(self, handler: HttpHandler, idle_timeout_s: float) -> None:
        self.handler = handler
        self.idle_timeout_s = idle_timeout_s
        self.connections: set[HttpConnection] = set()
        self.stats = HttpStats()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0 = a free one); return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), host=host, port=port, backlog=4096, reuse_address=True
        )
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="sim-http-idle-sweep")
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def _sweep_idle(self) -> None:
        period = max(0.5, self.idle_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for connection in [c for c in self.connections if c.idle(now, self.idle_timeout_s)]:
                connection.close()

    async def stop(self) -> None:
        """Stop listening, close every connection and wait for the listener to finish."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            pending = [task for connection in list(self.connections) if (task := connection.close()) is not None]
            await asyncio.gather(*pending, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
