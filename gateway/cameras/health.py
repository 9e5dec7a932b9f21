"""One camera's health check, as the sweep runs it 31,000 times a round.

On one connection (:mod:`xueliang.gateway.cameras.lean_soap`):

1. ``GetSystemDateAndTime``, unauthenticated (ONVIF lets anyone ask; cameras that authenticate
   everything, like Axis, get it signed): the camera is there, speaks ONVIF, and its clock offset;
2. the first time after a restart, ``GetServices`` (or ``GetCapabilities`` when that faults) to
   learn where the media service is (see :mod:`xueliang.gateway.cameras.endpoints`);
3. ``GetStreamUri`` for the analysis profile, signed: the stored credentials still work and the
   stored stream URI is still the one the camera gives. A different URI, or a profile the camera
   no longer knows, asks for a re-probe (``needs_probe``).

A camera whose credentials were refused (``auth_failed``) is not asked to authenticate again:
many cameras lock the account after repeated failures. It is checked for reachability only and
stays ``auth_failed`` until a technician updates its credentials or re-probes it (or it goes
offline: when it comes back, one authenticated call tells again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from xml.sax.saxutils import escape

from xueliang.connectors.onvif import (
    AddressRefused,
    AuthFailed,
    DeviceFault,
    MalformedResponse,
    OnvifError,
    OnvifSettings,
    Timeout,
    Unreachable,
    Unsupported,
)
from xueliang.connectors.onvif import ns as onvif_ns
from xueliang.connectors.onvif.parsers import (
    Element,
    ParseError,
    parse_capabilities,
    parse_media_uri,
    parse_services,
    parse_system_date_time,
)
from xueliang.connectors.onvif.urls import reached_service, reached_stream
from xueliang.gateway.cameras.endpoints import MediaEndpoint, media_endpoint
from xueliang.gateway.cameras.errors import CameraAddressError
from xueliang.gateway.cameras.guard import NetworkGuard
from xueliang.gateway.cameras.lean_soap import CameraConnection, envelope, username_token
from xueliang.gateway.cameras.mapping import describe, status_for
from xueliang.gateway.cameras.models import HealthResult
from xueliang.gateway.cameras.notify import address_of
from xueliang.gateway.cameras.settings import SweepSettings
from xueliang.gateway.models import CameraRecord, CameraStatus, StreamProfile

T = TypeVar("T")
DEVICE_PATH = "/onvif/device_service"  # fixed by ONVIF Core 5.1.1
TT = "http://www.onvif.org/ver10/schema"
GET_TIME_BODY = f'<GetSystemDateAndTime xmlns="{onvif_ns.DEVICE}"/>'
GET_TIME = envelope(GET_TIME_BODY)
GET_SERVICES = f'<GetServices xmlns="{onvif_ns.DEVICE}"><IncludeCapability>false</IncludeCapability></GetServices>'
GET_CAPABILITIES = f'<GetCapabilities xmlns="{onvif_ns.DEVICE}"><Category>Media</Category></GetCapabilities>'
STREAM_URI_2 = (
    f'<GetStreamUri xmlns="{onvif_ns.MEDIA2}"><Protocol>RTSP</Protocol><ProfileToken>{{token}}</ProfileToken>'
    "</GetStreamUri>"
)
STREAM_URI_1 = (
    f'<GetStreamUri xmlns="{onvif_ns.MEDIA}"><StreamSetup><Stream xmlns="{TT}">RTP-Unicast</Stream>'
    f'<Transport xmlns="{TT}"><Protocol>RTSP</Protocol></Transport></StreamSetup>'
    "<ProfileToken>{token}</ProfileToken></GetStreamUri>"
)


def analysis_profile(record: CameraRecord) -> StreamProfile | None:
    chosen = [p for p in record.profiles if p.token == record.analysis_profile and p.stream_uri]
    return chosen[0] if chosen else None


class HealthChecker:
    def __init__(self, settings: SweepSettings, onvif: OnvifSettings, guard: NetworkGuard) -> None:
        self.settings = settings
        self.onvif = onvif
        self.guard = guard

    async def check(
        self, record: CameraRecord, password: str, media: MediaEndpoint | None
    ) -> tuple[HealthResult, MediaEndpoint | None]:
        """The camera's health, and its media endpoint (learned now if ``media`` was None)."""
        try:
            await self.guard.check(record.host)
        except CameraAddressError as exc:
            return HealthResult(CameraStatus.OFFLINE, f"不在允许的网络内 / {exc}", checked_at=datetime.now(UTC)), media
        camera = address_of(record)
        error: OnvifError | None = None
        offset: float | None = None
        for _attempt in range(self.settings.attempts):
            connection = CameraConnection(
                camera,
                self.settings.connect_timeout_s,
                self.onvif.max_clock_skew_s,
                self.onvif.parse_in_executor_bytes,
                policy=self.guard,
            )
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    return await self._check(connection, record, password, media)
            except TimeoutError:
                error = Timeout(camera, "health check", f"no complete answer within {self.settings.timeout_s:g} s")
            except OnvifError as exc:
                error = exc
            finally:
                offset = connection.clock_offset_s
                connection.close()
            if isinstance(error, AddressRefused) or not isinstance(error, Unreachable | Timeout):
                break  # a refused address stays refused: no second attempt
        assert error is not None
        needs_probe = isinstance(error, DeviceFault) and error.operation == "GetStreamUri"
        status = status_for(error)
        return HealthResult(
            status, describe(error), offset, needs_probe=needs_probe, checked_at=datetime.now(UTC)
        ), media

    async def _check(
        self, connection: CameraConnection, record: CameraRecord, password: str, media: MediaEndpoint | None
    ) -> tuple[HealthResult, MediaEndpoint | None]:
        device = f"http://{address_of(record)}{DEVICE_PATH}"
        signed = bool(record.username or password)
        sent = time.time()
        try:
            answer = await connection.call(device, onvif_ns.DEVICE, "GetSystemDateAndTime", GET_TIME)
        except AuthFailed:
            if not signed:
                raise
            if record.status is CameraStatus.AUTH_FAILED:  # it answered; do not try the refused login again
                now = datetime.now(UTC)
                return HealthResult(CameraStatus.AUTH_FAILED, record.last_error, None, checked_at=now), media
            sent = time.time()
            body = envelope(GET_TIME_BODY, username_token(record.username, password, 0.0))
            answer = await connection.call(device, onvif_ns.DEVICE, "GetSystemDateAndTime", body)
        received = time.time()
        camera_utc = _read(connection, "GetSystemDateAndTime", answer, parse_system_date_time)
        offset = round(camera_utc.timestamp() - (sent + received) / 2, 3) if camera_utc is not None else 0.0
        connection.clock_offset_s = offset
        now = datetime.now(UTC)
        if record.status is CameraStatus.AUTH_FAILED:  # do not lock the camera's account: see above
            return HealthResult(CameraStatus.AUTH_FAILED, record.last_error, offset, checked_at=now), media
        profile = analysis_profile(record)
        if profile is None:  # never probed successfully, or no usable profile: probe it fully
            return HealthResult(CameraStatus.ONLINE, "", offset, needs_probe=True, checked_at=now), media
        token = username_token(record.username, password, offset) if signed else ""
        if media is None:
            media = await self._media_endpoint(connection, record, password, offset)
        template = STREAM_URI_2 if media.version == 2 else STREAM_URI_1
        body = envelope(template.format(token=escape(profile.token)), token)
        namespace = onvif_ns.MEDIA2 if media.version == 2 else onvif_ns.MEDIA
        answer = await connection.call(media.xaddr, namespace, "GetStreamUri", body)
        advertised = _read(connection, "GetStreamUri", answer, parse_media_uri)
        uri = reached_stream(advertised, record.host, rewrite=self.onvif.rewrite_addresses)
        if uri != profile.stream_uri:
            return HealthResult(CameraStatus.ONLINE, "", offset, uri, needs_probe=True, checked_at=now), media
        return HealthResult(CameraStatus.ONLINE, "", offset, uri, checked_at=now), media

    async def _media_endpoint(
        self, connection: CameraConnection, record: CameraRecord, password: str, offset: float
    ) -> MediaEndpoint:
        device = f"http://{address_of(record)}{DEVICE_PATH}"
        signed = bool(record.username or password)

        def token() -> str:
            return username_token(record.username, password, offset) if signed else ""

        try:
            answer = await connection.call(device, onvif_ns.DEVICE, "GetServices", envelope(GET_SERVICES, token()))
            services = _read(connection, "GetServices", answer, parse_services)
        except (DeviceFault, Unsupported, MalformedResponse):
            # Camera quirk (the connector's too): older firmwares fault on GetServices.
            answer = await connection.call(
                device, onvif_ns.DEVICE, "GetCapabilities", envelope(GET_CAPABILITIES, token())
            )
            services = _read(connection, "GetCapabilities", answer, parse_capabilities)
        xaddrs = {
            namespace: reached_service(xaddr, record.host, record.port, rewrite=self.onvif.rewrite_addresses)
            for namespace, xaddr in services.xaddrs.items()
        }
        endpoint = media_endpoint(xaddrs)
        if endpoint is None:
            raise Unsupported(connection.camera, "GetServices", "the camera no longer offers a media service")
        return endpoint


def _read(connection: CameraConnection, operation: str, answer: Element, parser: Callable[[Element], T]) -> T:
    try:
        return parser(answer)
    except ParseError as exc:
        raise MalformedResponse(connection.camera, operation, str(exc)) from exc
