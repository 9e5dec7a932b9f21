"""Replay recorded ONVIF traffic: an HTTP server that answers like a captured real camera.

For tests and benchmarks (``shared/onvif-captures/<camera>/<service>/<Method>.{Response,Error}.xml``).
Each SOAP request is answered with the capture whose ``<Method>`` is the local name of the first
element of the request Body, looked up in the folder of the service its namespace belongs to:
``Response.xml`` with HTTP 200, else ``Error.xml`` with HTTP 500, else an ``ActionNotSupported``
fault. It checks no credentials (the captures are fixed) and records every request it gets.
With ``live_clock`` it answers ``GetSystemDateAndTime`` with the current time instead of the
capture's (2018), like a camera whose NTP works; with ``refuse_unsigned`` it answers a
``ter:NotAuthorized`` fault to any request without a WS-UsernameToken, like cameras that
authenticate every request (even the clock query ONVIF leaves open).

Addresses inside the captures point at the cameras' original private IPs. With
``rewrite_addresses`` (the default) HTTP addresses are rewritten to the address and port the
request came in on, and RTSP addresses to that host (keeping their port), so a client can follow
them; without it the client sees the private IPs, as it would behind NAT. With ``ssl_context``
it serves HTTPS (a camera with a certificate), and rewritten HTTP addresses become ``https``.
"""

from __future__ import annotations

import collections
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from lxml import etree

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.parsers import make_parser

SERVICE_FOLDERS: dict[str, str] = {
    ns.DEVICE: "core",
    ns.MEDIA: "media",
    ns.MEDIA2: "media2",
    ns.PTZ: "ptz",
    ns.EVENTS: "events",
    ns.WSNT: "events",  # Renew, Unsubscribe (WS-BaseNotification)
    ns.ANALYTICS: "analytics",
    ns.IMAGING: "imaging",
}
SOAP_CONTENT_TYPE = "application/soap+xml"  # web.Response takes no charset in content_type
_ADDRESS = re.compile(rb"(https?|rtsp)://(\d{1,3}(?:\.\d{1,3}){3})(:\d+)?")
_NOT_SUPPORTED = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">'
    "<env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value><env:Subcode>"
    "<env:Value>ter:ActionNotSupported</env:Value></env:Subcode></env:Code>"
    '<env:Reason><env:Text xml:lang="en">replay: no capture for {what}</env:Text></env:Reason>'
    "</env:Fault></env:Body></env:Envelope>"
)


NOT_AUTHORIZED = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">'
    b"<env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
    b"<env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code>"
    b'<env:Reason><env:Text xml:lang="en">Sender not Authorized</env:Text></env:Reason>'
    b"</env:Fault></env:Body></env:Envelope>"
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    local_host: str  # the address the request came in on
    path: str
    service: str  # capture folder, "" when the namespace is unknown
    method: str
    body: bytes


class CaptureReplayServer:
    """Serves one camera's captures on one port, on each of ``hosts`` (loopback addresses)."""

    def __init__(
        self,
        camera_dir: Path,
        *,
        hosts: tuple[str, ...] = ("127.0.0.1",),
        port: int = 0,
        rewrite_addresses: bool = True,
        live_clock: bool = False,
        refuse_unsigned: bool = False,
        record_limit: int = 10_000,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not camera_dir.is_dir():
            raise FileNotFoundError(f"no capture folder {camera_dir}")
        self.camera_dir = camera_dir
        self.hosts = hosts
        self.port = port
        self.rewrite_addresses = rewrite_addresses
        self.live_clock = live_clock
        self.refuse_unsigned = refuse_unsigned
        self.ssl_context = ssl_context
        self.requests: collections.deque[RecordedRequest] = collections.deque(maxlen=record_limit)
        self.overrides: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._captures = self._load(camera_dir)
        self._rendered: dict[tuple[str, str, str], bytes] = {}
        self._parser = make_parser()
        self._runner: web.AppRunner | None = None

    @staticmethod
    def _load(camera_dir: Path) -> dict[tuple[str, str], tuple[int, bytes]]:
        captures: dict[tuple[str, str], tuple[int, bytes]] = {}
        for path in sorted(camera_dir.glob("*/*.xml")):
            method, _, kind = path.stem.rpartition(".")
            key = (path.parent.name, method)
            if kind == "Response" or (kind == "Error" and key not in captures):
                captures[key] = (200 if kind == "Response" else 500, path.read_bytes())
        return captures

    def answer(self, service: str, method: str, body: bytes, status: int = 200) -> None:
        """Answer ``method`` of ``service`` (capture folder name) with ``body`` instead of the capture."""
        self.overrides[(service, method)] = (status, body)
        self._rendered = {k: v for k, v in self._rendered.items() if k[1:] != (service, method)}

    def url(self, host: str | None = None) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host or self.hosts[0]}:{self.port}"

    def methods(self) -> list[str]:
        return [request.method for request in self.requests]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in self.hosts:
            site = web.TCPSite(self._runner, host, self.port, ssl_context=self.ssl_context)
            await site.start()
            if self.port == 0:
                self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CaptureReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local_host = sockname[0] if sockname else self.hosts[0]
        service, method = self._identify(body)
        self.requests.append(RecordedRequest(local_host, request.path, service, method, body))
        if self.refuse_unsigned and b"UsernameToken" not in body:
            return web.Response(status=400, body=NOT_AUTHORIZED, content_type=SOAP_CONTENT_TYPE)
        status, content = self.overrides.get((service, method)) or self._captures.get((service, method), (0, b""))
        if self.live_clock and (service, method) == ("core", "GetSystemDateAndTime"):
            return web.Response(body=system_date_time_response(datetime.now(UTC)), content_type=SOAP_CONTENT_TYPE)
        if not status:
            status, content = 500, _NOT_SUPPORTED.format(what=f"{service}/{method}").encode()
        return web.Response(
            status=status, body=self._render(local_host, service, method, content), content_type=SOAP_CONTENT_TYPE
        )

    def _identify(self, body: bytes) -> tuple[str, str]:
        try:
            root = etree.fromstring(body, parser=self._parser)
        except etree.XMLSyntaxError:
            return "", ""
        operation = root.find("{*}Body/*")
        if operation is None:
            return "", ""
        qname = etree.QName(operation)
        return SERVICE_FOLDERS.get(qname.namespace or "", ""), str(qname.localname)

    def _render(self, local_host: str, service: str, method: str, content: bytes) -> bytes:
        if not self.rewrite_addresses:
            return content
        key = (local_host, service, method)
        rendered = self._rendered.get(key)
        if rendered is None:
            host = local_host.encode()
            http = host + b":" + str(self.port).encode()
            tls = self.ssl_context is not None

            def replace(match: re.Match[bytes]) -> bytes:
                scheme, port = match.group(1), match.group(3) or b""
                if scheme == b"rtsp":
                    return scheme + b"://" + host + port
                return (b"https" if tls else scheme) + b"://" + http

            rendered = self._rendered[key] = _ADDRESS.sub(replace, content)
        return rendered


def system_date_time_response(utc: datetime) -> bytes:
    """A GetSystemDateAndTimeResponse reporting ``utc`` (NTP-synchronised, UTC time zone)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
        "<env:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
        f"<tt:Time><tt:Hour>{utc.hour}</tt:Hour><tt:Minute>{utc.minute}</tt:Minute>"
        f"<tt:Second>{utc.second}</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>{utc.year}</tt:Year><tt:Month>{utc.month}</tt:Month><tt:Day>{utc.day}</tt:Day></tt:Date>"
        "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></env:Body></env:Envelope>"
    ).encode()
