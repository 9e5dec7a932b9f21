"""A lean ONVIF SOAP exchange for the health sweep: precomputed envelopes, a WS-UsernameToken
digest, one HTTP/1.1 connection per camera (httptools), and a targeted lxml parse (answers over
``onvif.parse_in_executor_bytes`` parsed in a worker thread, as the connector does).

Why not the connector's ``OnvifClient`` here: a sweep of 31,000 cameras makes 62,000 calls a
minute. Through aiohttp and zeep-built envelopes a call costs ~0.45 ms of gateway CPU (connect
included); this path costs ~0.1 ms, measured by ``benchmarks/provision.py``. Everything else
(provisioning, PTZ, events) goes through the connector. Answers are read with the connector's own
lxml parsers, and failures become the connector's error classes, so a status means the same
whichever path found it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import httptools

from xueliang.connectors.onvif import (
    AddressRefused,
    MalformedResponse,
    NotOnvif,
    Timeout,
    Unreachable,
)
from xueliang.connectors.onvif.parsers import Element
from xueliang.connectors.onvif.soap import format_camera, hide_userinfo, interpret_answer
from xueliang.gateway.cameras.errors import AddressNotAllowed, AddressUnresolvable
from xueliang.gateway.cameras.guard import NetworkGuard

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
MAX_ANSWER = 4 << 20  # bytes; a longer answer is cut off as malformed

_ENVELOPE = (
    f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP12}">{{header}}<s:Body>{{body}}</s:Body>'
    "</s:Envelope>"
)
_SECURITY = (
    f'<s:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" s:mustUnderstand="1"><wsse:UsernameToken>'
    f'<wsse:Username>{{username}}</wsse:Username><wsse:Password Type="{DIGEST}">{{digest}}</wsse:Password>'
    f'<wsse:Nonce EncodingType="{BASE64}">{{nonce}}</wsse:Nonce><wsu:Created>{{created}}</wsu:Created>'
    "</wsse:UsernameToken></wsse:Security></s:Header>"
)


def envelope(body: str, security: str = "") -> bytes:
    return _ENVELOPE.format(header=security, body=body).encode()


def username_token(username: str, password: str, offset_s: float) -> str:
    """A WS-UsernameToken header (PasswordDigest), ``Created`` shifted by the camera's clock offset."""
    nonce = os.urandom(16)
    created = (datetime.now(UTC) + timedelta(seconds=offset_s)).replace(microsecond=0)
    stamp = created.isoformat().replace("+00:00", "Z")
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return _SECURITY.format(
        username=escape(username), digest=digest, nonce=base64.b64encode(nonce).decode(), created=stamp
    )


class _Response(asyncio.Protocol):
    """One HTTP/1.1 client connection; requests are sent one at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, str, bytes]] | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._content_type = ""
        self._header = b""
        self.keep_alive = True
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    @property
    def usable(self) -> bool:
        return not self.closed and self.keep_alive and self.transport is not None and not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ValueError(f"not valid HTTP ({exc})"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._fail(ConnectionResetError("the camera closed the connection before answering"))

    def _fail(self, exc: BaseException) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_ANSWER:
            self._fail(ValueError(f"answer longer than {MAX_ANSWER} bytes"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = bool(self._parser.should_keep_alive())
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((self._parser.get_status_code(), self._content_type, b"".join(self._body)))

    async def exchange(self, request: bytes) -> tuple[int, str, bytes]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._body, self._size, self._content_type = [], 0, ""
        self.transport.write(request)
        return await self._answer


class CameraConnection:
    """Connections to one camera's HTTP endpoints (device and media may differ), reused while the
    camera keeps them alive; close with ``close()``."""

    def __init__(
        self,
        camera: str,
        connect_timeout_s: float,
        max_clock_skew_s: float,
        parse_in_executor_bytes: int,
        *,
        policy: NetworkGuard | None = None,
    ) -> None:
        """``policy``: where connections may go (the node's ``NetworkGuard``); each host, the media
        XAddr's included, is resolved, checked and then connected to by the checked address, so a
        name cannot resolve elsewhere between the check and the connect."""
        self.camera = camera
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.max_clock_skew_s = max_clock_skew_s
        self.parse_in_executor_bytes = parse_in_executor_bytes
        self.clock_offset_s: float | None = None
        self._open: dict[tuple[str, int], _Response] = {}

    def close(self) -> None:
        for protocol in self._open.values():
            if protocol.transport is not None:
                protocol.transport.close()
        self._open.clear()

    async def _connection(self, host: str, port: int, operation: str) -> _Response:
        protocol = self._open.get((host, port))
        if protocol is not None and protocol.usable:
            return protocol
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                address = host if self.policy is None else await self._allowed_address(host, port, operation)
                _transport, protocol = await loop.create_connection(_Response, address, port)
        except TimeoutError:
            raise Timeout(self.camera, operation, f"no TCP connection within {self.connect_timeout_s:g} s") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise Unreachable(self.camera, operation, f"cannot connect to {host}:{port}: {reason}") from exc
        self._open[(host, port)] = protocol
        return protocol

    async def _allowed_address(self, host: str, port: int, operation: str) -> str:
        """The address to connect to, as the guard checked it (its rules, its DNS cache: the sweep has
        just checked this host); ``AddressRefused`` outside the allowed networks."""
        assert self.policy is not None
        try:
            return str((await self.policy.check(host.partition("%")[0]))[0])
        except AddressNotAllowed as exc:
            raise AddressRefused(self.camera, operation, f"not connecting to {host} ({exc})") from exc
        except AddressUnresolvable as exc:
            raise Unreachable(self.camera, operation, f"cannot connect to {host}:{port}: {exc}") from exc

    async def call(self, url: str, namespace: str, operation: str, body: bytes) -> Element:
        """POST ``body`` to ``url`` and return the SOAP Body's answer element, or raise an ``OnvifError``."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # "http://[::1", a port out of range or not a number
            host, port, parts = "", 0, urlsplit("")
        if parts.scheme != "http" or not host:
            shown = hide_userinfo(url)[:200]
            raise MalformedResponse(self.camera, operation, f"unusable service address {shown!r}")
        netloc = format_camera(host, port)
        request = (
            f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\nHost: {netloc}\r\n"
            f'Content-Type: application/soap+xml; charset=utf-8; action="{namespace}/{operation}"\r\n'
            f"Content-Length: {len(body)}\r\nUser-Agent: xueliang-gateway-sweep\r\n\r\n"
        ).encode() + body
        for attempt in (1, 2):
            protocol = await self._connection(host, port, operation)
            try:
                status, content_type, content = await protocol.exchange(request)
                break
            except ConnectionResetError as exc:
                self._open.pop((host, port), None)
                if attempt == 2:  # a reused connection may have been closed by the camera: retry once
                    raise Unreachable(self.camera, operation, str(exc)) from exc
            except ValueError as exc:
                raise NotOnvif(self.camera, operation, str(exc)) from exc
        return await self._interpret(status, content_type, content, operation)

    async def _interpret(self, status: int, content_type: str, content: bytes, operation: str) -> Element:
        answer = await interpret_answer(
            self.camera,
            operation,
            status,
            content_type,
            content,
            parse_in_executor_bytes=self.parse_in_executor_bytes,
            clock_offset_s=self.clock_offset_s,
            max_clock_skew_s=self.max_clock_skew_s,
        )
        if answer is None:
            raise MalformedResponse(self.camera, operation, "the SOAP Body is empty")
        return answer
