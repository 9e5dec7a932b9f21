"""One camera's SOAP channel: sign, post, read, and turn every failure into an ``OnvifError``.

The HTTP session is shared by all cameras (pass the gateway's, or let
:func:`create_session` make one with a bounded pool); the zeep bindings come from the
process-wide catalogue in :mod:`xueliang.connectors.onvif.wsdl`. Per camera this holds only the
address, the WS-UsernameToken and the measured clock offset, so a probe costs a few small
objects and the SOAP round trips themselves.

WS-UsernameToken (ONVIF Core 5.12): ``PasswordDigest = Base64(SHA1(nonce + created + password))``
with ``created`` in UTC. Cameras reject tokens whose ``created`` is far from their own clock, so
``created`` is shifted by the offset measured with the unauthenticated ``GetSystemDateAndTime``:
onvif-zeep-async's ``UsernameDigestTokenDtDiff(dt_diff=...)`` does exactly that (its
``ONVIFCamera(adjust_time=True)`` path) and is reused here.

Cameras are untrusted: redirects are never followed (a 3xx is ``NotOnvif``), and a session made
with an address policy (``create_session(settings, policy=guard)``) refuses, at connect time, any
address outside it, whoever supplied it (:mod:`xueliang.connectors.onvif.policy`).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from lxml import etree
from onvif.client import UsernameDigestTokenDtDiff

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.errors import (
    AddressRefused,
    AuthFailed,
    ClockSkew,
    MalformedResponse,
    NotOnvif,
    OnvifError,
    Timeout,
    TlsFailed,
    Unreachable,
    classify_fault,
)
from xueliang.connectors.onvif.parsers import (
    Element,
    FaultInfo,
    ParseError,
    first_child,
    local_name,
    make_parser,
    parse_fault,
    parse_xml,
)
from xueliang.connectors.onvif.policy import AddressPolicy, guarded_socket_factory, refused_by_policy
from xueliang.connectors.onvif.settings import OnvifSettings
from xueliang.connectors.onvif.tls import ssl_context
from xueliang.connectors.onvif.wsdl import build_plain_request, build_request, load_binding

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The exceptions one HTTP exchange can raise, by what they mean (order matters: aiohttp's
# ServerTimeoutError is also a ClientError, ClientConnectorError is also a ClientOSError).
TIMEOUT_ERRORS = (TimeoutError,)  # asyncio.TimeoutError, aiohttp.ServerTimeoutError
CERTIFICATE_ERRORS = (aiohttp.ClientConnectorCertificateError,)  # HTTPS: the certificate did not verify
TLS_ERRORS = (aiohttp.ClientSSLError,)  # HTTPS: the handshake failed (both are ClientConnectorErrors)
CONNECT_ERRORS = (aiohttp.ClientConnectorError,)  # refused, no route, DNS
DROPPED_ERRORS = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,  # connection reset mid-exchange
    aiohttp.ClientPayloadError,  # body cut short
)
NOT_HTTP_ERRORS = (aiohttp.ClientResponseError,)  # garbage instead of HTTP
BAD_URL_ERRORS = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)  # unparsable; ftp:// and other schemes
# A pooled keep-alive connection the camera closed before our request reached it: RFC 9112 9.3.1
# lets a client retry once (onvif-zeep-async does the same).
RETRY_ONCE_ERRORS = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientConnectionResetError,
)


def create_session(settings: OnvifSettings, *, policy: AddressPolicy | None = None) -> aiohttp.ClientSession:
    """The HTTP session to share between all ``OnvifClient``s of a process (caller closes it).

    ``limit`` bounds open connections across all cameras; idle ones are dropped after
    ``keepalive_s`` so a bulk import does not keep one socket per finished camera. HTTPS
    certificates are verified as ``verify_tls`` and ``ca_bundle`` say (:mod:`.tls`). With
    ``policy`` (the gateway passes its ``NetworkGuard``) every connection is checked on the IP
    address it is about to use, after DNS: a refused one raises ``AddressRefused``.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.pool_size,
        limit_per_host=8,
        keepalive_timeout=settings.keepalive_s,
        ssl=ssl_context(settings.verify_tls, settings.ca_bundle),
        socket_factory=guarded_socket_factory(policy) if policy is not None else None,
    )
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": "xueliang-gateway-onvif"})


async def parse_answer(content: bytes, in_executor_above: int) -> Element:
    """``parse_xml`` of an answer: on the event loop up to ``in_executor_above`` bytes
    (``onvif.parse_in_executor_bytes``), above that in the loop's default executor (a bounded
    thread pool) with a parser of its own, so a big answer never stalls the other cameras. Raises
    what ``parse_xml`` raises (``lxml.etree.XMLSyntaxError``, ``ParseError``)."""
    if len(content) <= in_executor_above:
        return parse_xml(content)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(parse_xml, content, make_parser()))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def hide_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@``, for messages and logs. Pure text, so it
    works on addresses too broken to parse (a camera's XAddr may carry its credentials)."""
    return _USERINFO.sub(r"\1***@", url)


REFUSALS_REMEMBERED = 10_000  # (camera, address) pairs whose refusal was logged; oldest forgotten first
_refusals_logged: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()


def log_refusal_once(camera: str, address: str, advertised: str, message: str) -> None:
    """One warning per camera and refused address per process (each call still raises)."""
    key = (camera, address)
    if key in _refusals_logged:
        _refusals_logged.move_to_end(key)
        return
    _refusals_logged[key] = None
    if len(_refusals_logged) > REFUSALS_REMEMBERED:
        _refusals_logged.popitem(last=False)
    logger.warning("camera %s: not connecting to %s (for %s): %s", camera, address, advertised, message)


def format_camera(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class SoapChannel:
    """Signs, posts and reads SOAP requests for one camera."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        session: aiohttp.ClientSession,
        settings: OnvifSettings,
    ) -> None:
        self.camera = format_camera(host, port)
        self._session = session
        self._settings = settings
        self._token: Any = (
            UsernameDigestTokenDtDiff(username, password, use_digest=True) if username or password else None
        )
        self.clock_offset_s: float | None = None

    def set_clock_offset(self, seconds: float) -> None:
        """Shift every later token's ``Created`` by ``seconds`` (camera clock minus ours)."""
        self.clock_offset_s = seconds
        if self._token is not None:
            self._token.dt_diff = timedelta(seconds=seconds)

    async def call(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        address: str,
        *,
        auth: bool = True,
        timeout_s: float | None = None,
        reference_parameters: Sequence[Element] = (),
    ) -> Element:
        """Call ``operation`` of an onvif-zeep-async ``service`` and return the Body's answer element."""
        answer = await self.call_optional(
            service,
            operation,
            params,
            address,
            auth=auth,
            timeout_s=timeout_s,
            reference_parameters=reference_parameters,
        )
        if answer is None:
            raise MalformedResponse(self.camera, operation, "the SOAP Body is empty")
        return answer

    async def call_optional(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        address: str,
        *,
        auth: bool = True,
        timeout_s: float | None = None,
        reference_parameters: Sequence[Element] = (),
    ) -> Element | None:
        """Like :meth:`call`, for commands whose answer may be an empty Body (PTZ Stop, Unsubscribe)."""
        loaded = await load_binding(service)
        envelope, headers = build_request(loaded, operation, params, address)
        if reference_parameters:
            # WS-Addressing: each ReferenceParameter of the endpoint reference goes back as a
            # SOAP header. Axis identifies PullPoint subscriptions this way (SubscriptionId).
            header = _soap_header(envelope)
            for parameter in reference_parameters:
                echoed = copy.deepcopy(parameter)
                echoed.set(f"{{{ns.WSA}}}IsReferenceParameter", "true")
                header.append(echoed)
        return await self._exchange(envelope, headers, operation, address, auth=auth, timeout_s=timeout_s)

    async def call_plain(
        self, namespace: str, operation: str, children: Sequence[tuple[str, str]], address: str
    ) -> Element:
        """Call an operation of a service onvif-zeep-async has no WSDL for (Media2)."""
        envelope, headers = build_plain_request(namespace, operation, children)
        answer = await self._exchange(envelope, headers, operation, address, auth=True, timeout_s=None)
        if answer is None:
            raise MalformedResponse(self.camera, operation, "the SOAP Body is empty")
        return answer

    def read(self, operation: str, parser: Callable[[Element], T], answer: Element) -> T:
        """Run a parser on an answer; a :class:`ParseError` becomes ``MalformedResponse``."""
        try:
            return parser(answer)
        except ParseError as exc:
            raise MalformedResponse(self.camera, operation, str(exc)) from exc

    # ------------------------------------------------------------------ internals

    async def _exchange(
        self,
        envelope: Element,
        headers: dict[str, str],
        operation: str,
        address: str,
        *,
        auth: bool,
        timeout_s: float | None,
    ) -> Element | None:
        if auth and self._token is not None:
            self._token.apply(envelope, headers)
        payload = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        status, content_type, content = await self._post(address, payload, headers, operation, timeout_s)
        return await interpret_answer(
            self.camera,
            operation,
            status,
            content_type,
            content,
            parse_in_executor_bytes=self._settings.parse_in_executor_bytes,
            clock_offset_s=self.clock_offset_s,
            max_clock_skew_s=self._settings.max_clock_skew_s,
        )

    async def _post(
        self, address: str, payload: bytes, headers: dict[str, str], operation: str, timeout_s: float | None
    ) -> tuple[int, str, bytes]:
        total = timeout_s if timeout_s is not None else self._settings.timeout_s
        timeout = aiohttp.ClientTimeout(total=total, connect=min(total, self._settings.connect_timeout_s))
        shown = hide_userinfo(address)
        for attempt in (1, 2):
            try:
                async with self._session.post(
                    address, data=payload, headers=headers, timeout=timeout, allow_redirects=False
                ) as response:
                    if 300 <= response.status < 400:
                        raise self._redirected(operation, shown, response)
                    content = await self._read_bounded(response, operation)
                    return response.status, response.headers.get("Content-Type", ""), content
            except TIMEOUT_ERRORS:
                raise Timeout(self.camera, operation, f"no answer within {total:g} s from {shown}") from None
            except RETRY_ONCE_ERRORS as exc:
                if attempt == 2:
                    raise Unreachable(self.camera, operation, f"the camera closed the connection ({exc})") from exc
                logger.debug(
                    "camera %s: %s: connection closed before the request, retrying once", self.camera, operation
                )
            except CERTIFICATE_ERRORS as exc:
                problem = exc.certificate_error
                reason = getattr(problem, "verify_message", "") or str(problem)
                raise TlsFailed(self.camera, operation, f"the certificate of {shown} did not verify: {reason}") from exc
            except TLS_ERRORS as exc:
                raise TlsFailed(self.camera, operation, f"the TLS handshake with {shown} failed: {exc}") from exc
            except CONNECT_ERRORS as exc:
                refused = refused_by_policy(exc)
                if refused is not None:
                    log_refusal_once(self.camera, refused.address, shown, refused.reason)
                    raise AddressRefused(
                        self.camera, operation, f"not connecting to {refused.address} (for {shown}): {refused.reason}"
                    ) from exc
                reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
                raise Unreachable(self.camera, operation, f"cannot connect to {shown}: {reason}") from exc
            except DROPPED_ERRORS as exc:
                raise Unreachable(self.camera, operation, f"the connection dropped: {exc}") from exc
            except NOT_HTTP_ERRORS as exc:
                raise NotOnvif(self.camera, operation, f"the answer is not valid HTTP ({exc.message})") from exc
            except BAD_URL_ERRORS as exc:
                raise MalformedResponse(
                    self.camera, operation, f"the camera gave an unusable address {shown!r}"
                ) from exc
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _read_bounded(self, response: aiohttp.ClientResponse, operation: str) -> bytes:
        """The answer's body, refused (``MalformedResponse``) past ``onvif.max_answer_bytes``
        without reading the rest: a broken or hostile peer must not fill the gateway's memory."""
        limit = self._settings.max_answer_bytes
        if response.content_length is not None and response.content_length > limit:
            raise self._too_big(operation, f"announces {response.content_length} bytes")
        content = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            content += chunk
            if len(content) > limit:
                raise self._too_big(operation, f"went past {limit} bytes")
        return bytes(content)

    def _redirected(self, operation: str, shown: str, response: aiohttp.ClientResponse) -> NotOnvif:
        location = hide_userinfo(response.headers.get("Location", ""))[:200] or "(no Location)"
        return NotOnvif(
            self.camera,
            operation,
            f"{shown} answered HTTP {response.status} redirecting to {location!r}; redirects are not followed",
            advice=(
                "An ONVIF service answers at its own address; if the camera moved, register it at its new "
                "address (a camera's answers are never trusted to send the gateway elsewhere)"
            ),
        )

    def _too_big(self, operation: str, what: str) -> MalformedResponse:
        return MalformedResponse(
            self.camera,
            operation,
            f"the answer {what}, more than onvif.max_answer_bytes allows",
            advice=(
                "The camera (or whatever answers on that port) sends an answer far larger than any ONVIF "
                "answer; check that the address is the camera's, or raise onvif.max_answer_bytes"
            ),
        )


async def interpret_answer(
    camera: str,
    operation: str,
    status: int,
    content_type: str,
    content: bytes,
    *,
    parse_in_executor_bytes: int,
    clock_offset_s: float | None,
    max_clock_skew_s: float,
) -> Element | None:
    """An HTTP answer to a SOAP request: its Body's first element (None for an empty Body), or
    the :class:`OnvifError` it means: refused credentials (``ClockSkew`` when the camera's clock
    is known to be off by more than ``max_clock_skew_s``), a web page or something that is not
    SOAP (``NotOnvif``), broken XML or a Body-less envelope (``MalformedResponse``), a SOAP fault
    by its codes. Shared by :class:`SoapChannel` and the health sweep's lean connection, so an
    answer means the same status on both paths."""
    if status in (401, 403):
        raise _auth_error(camera, operation, f"HTTP {status}", clock_offset_s, max_clock_skew_s)
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        if status == 200:
            raise MalformedResponse(camera, operation, "HTTP 200 with an empty body")
        raise NotOnvif(camera, operation, f"HTTP {status} with an empty body")
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
        raise NotOnvif(camera, operation, f"HTTP {status} answered with a web page ({content_type or 'no type'})")
    try:
        root = await parse_answer(content, parse_in_executor_bytes)
    except etree.XMLSyntaxError as exc:
        if b"envelope" in head or b"envelope" in content[:4096].lower():
            raise MalformedResponse(camera, operation, f"invalid XML: {exc}") from exc
        raise NotOnvif(camera, operation, f"HTTP {status} answered with something that is not XML") from exc
    except ParseError as exc:
        raise MalformedResponse(camera, operation, str(exc)) from exc
    qname = etree.QName(root)
    if qname.localname != "Envelope" or qname.namespace not in ns.SOAP_ENVS:
        raise NotOnvif(camera, operation, f"HTTP {status} answered with XML that is not SOAP ({qname.localname})")
    body = root.find(f"{{{qname.namespace}}}Body")
    if body is None:
        raise MalformedResponse(camera, operation, "the SOAP Envelope has no Body")
    answer = first_child(body)
    if answer is not None and local_name(answer) == "Fault":
        raise _fault_error(camera, operation, parse_fault(answer), clock_offset_s, max_clock_skew_s)
    if status >= 300:
        raise MalformedResponse(camera, operation, f"HTTP {status} without a SOAP fault")
    return answer


def _fault_error(
    camera: str, operation: str, fault: FaultInfo, clock_offset_s: float | None, max_clock_skew_s: float
) -> OnvifError:
    kind = classify_fault(fault.codes, fault.reason)
    if kind is AuthFailed:
        return _auth_error(camera, operation, fault.describe(), clock_offset_s, max_clock_skew_s)
    return kind(camera, operation, fault.describe())


def _auth_error(
    camera: str, operation: str, detail: str, clock_offset_s: float | None, max_clock_skew_s: float
) -> AuthFailed:
    if clock_offset_s is not None and abs(clock_offset_s) > max_clock_skew_s:
        return ClockSkew(camera, operation, clock_offset_s, max_clock_skew_s)
    return AuthFailed(camera, operation, detail)


def _soap_header(envelope: Element) -> Element:
    """The envelope's Header, created as its first child when missing."""
    soap_ns = etree.QName(envelope).namespace
    header = envelope.find(f"{{{soap_ns}}}Header")
    if header is None:
        header = etree.Element(f"{{{soap_ns}}}Header")
        envelope.insert(0, header)
    return header
