"""Turn one HTTP POST into one SOAP answer: parse, authenticate, apply faults, dispatch."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Awaitable

from xueliang.connectors.onvif.simulator import device_service, media_service, ptz_service
from xueliang.connectors.onvif.simulator.errors import SoapFault
from xueliang.connectors.onvif.simulator.event_service import EventHub
from xueliang.connectors.onvif.simulator.http_types import HttpRequest, HttpResponse
from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.soap_context import SoapContext, SoapHandler, StreamInfo
from xueliang.connectors.onvif.simulator.soap_request import (
    SoapParseError,
    SoapRequest,
    UsernameToken,
    parse_soap_request,
)
from xueliang.connectors.onvif.simulator.soap_xml import CONTENT_TYPE, NS_DEVICE, envelope, fault
from xueliang.connectors.onvif.simulator.wsse import AuthFailure, ReplayGuard, verify_token

logger = logging.getLogger(__name__)

NO_AUTH = frozenset({(NS_DEVICE, "GetSystemDateAndTime")})
WRONG_PASSWORD_SUFFIX = "-changed-by-site"  # what a camera with the wrong_password fault expects instead


def camera_password(camera: SimCamera, password: str) -> str:
    """The password this camera accepts right now (differs under the wrong_password fault)."""
    return password + WRONG_PASSWORD_SUFFIX if camera.faults.wrong_password else password


def _fault_response(exc: SoapFault) -> HttpResponse:
    # SOAP 1.2 HTTP binding: Sender faults are HTTP 400, Receiver faults HTTP 500.
    status = 400 if exc.code == "Sender" else 500
    return HttpResponse(status, fault(exc.code, exc.subcodes, exc.reason), CONTENT_TYPE)


def _malformed(body: bytes) -> bytes:
    return body[: len(body) // 2] + b"<env:Broken attr='>\x00"


class SoapEndpoint:
    """All SOAP services of every camera."""

    def __init__(self, username: str, password: str, streams: StreamInfo, events: EventHub) -> None:
        self.username = username
        self.password = password
        self.streams = streams
        self.http_port = 0
        self.rtsp_port = 0
        self.replay_guard = ReplayGuard()
        self.handlers: dict[tuple[str, str], SoapHandler] = {
            **device_service.HANDLERS,
            **media_service.HANDLERS,
            **ptz_service.HANDLERS,
            **events.handlers(),
        }
        self.calls: Counter[str] = Counter()
        self.auth_failures = 0

    def handle(self, camera: SimCamera, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        """Answer one SOAP request addressed to ``camera``."""
        try:
            soap = parse_soap_request(request.body)
        except SoapParseError as exc:
            return _fault_response(SoapFault("Sender", ("ter:WellFormed",), str(exc)))
        self.calls[soap.operation] += 1
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=camera.faults.clock_skew_s)
        try:
            handler = self._admit(camera, soap, now)
            ctx = SoapContext(
                camera=camera,
                request=soap,
                path=request.path,
                http_base=f"http://{camera.address}:{self.http_port}",
                rtsp_base=f"rtsp://{camera.address}:{self.rtsp_port}",
                now=now,
                streams=self.streams,
            )
            result = handler(ctx)
        except SoapFault as exc:
            return _fault_response(exc)
        if isinstance(result, str):
            return self._ok(camera, result)
        return self._later(camera, result)

    def _admit(self, camera: SimCamera, soap: SoapRequest, now: dt.datetime) -> SoapHandler:
        """The handler for this call, or a SoapFault (simulated failure, authentication, unknown operation)."""
        if camera.faults.soap_fault:
            raise SoapFault("Receiver", ("ter:Action",), "simulated device failure")
        key = (soap.namespace, soap.operation)
        if key not in NO_AUTH:
            self._authenticate(camera, soap.token, now)
        handler = self.handlers.get(key)
        if handler is None:
            raise SoapFault("Receiver", ("ter:ActionNotSupported",), f"{soap.operation} is not implemented")
        return handler

    def _authenticate(self, camera: SimCamera, token: UsernameToken | None, now: dt.datetime) -> None:
        try:
            verify_token(
                token,
                username=self.username,
                password=camera_password(camera, self.password),
                camera_now=now,
                camera_index=camera.index,
                replay_guard=self.replay_guard,
            )
        except AuthFailure as exc:
            self.auth_failures += 1
            logger.debug("camera %s refused a SOAP call: %s", camera.address, exc)
            raise SoapFault("Sender", ("ter:NotAuthorized",), f"Sender not authorized: {exc}") from exc

    def _ok(self, camera: SimCamera, body: str) -> HttpResponse:
        payload = envelope(body)
        if camera.faults.malformed_xml:
            payload = _malformed(payload)
        return HttpResponse(200, payload, CONTENT_TYPE)

    async def _later(self, camera: SimCamera, pending: Awaitable[str]) -> HttpResponse:
        try:
            body = await pending
        except SoapFault as exc:
            return _fault_response(exc)
        return self._ok(camera, body)
