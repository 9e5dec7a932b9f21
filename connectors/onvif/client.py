"""``OnvifClient``: one camera's ONVIF device client (probe, PTZ, events).

::

    async with OnvifClient("10.1.2.3", 80, "admin", "pw", session=shared_session) as camera:
        result = await camera.probe()

Give every client the same ``aiohttp.ClientSession`` (:func:`create_session`) when talking to
many cameras: connections are pooled and bounded there, and nothing else per camera is heavy.
Without one the client opens (and closes) its own, refusing addresses outside ``policy`` when
given (a shared session gets its policy from :func:`create_session`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from types import TracebackType

import aiohttp

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.errors import AuthFailed, DeviceFault, MalformedResponse, OnvifError, Unsupported
from xueliang.connectors.onvif.events import PullPointSubscription
from xueliang.connectors.onvif.media import MediaReader, MediaVersion, choose_profiles, mark_sub_streams
from xueliang.connectors.onvif.models import DeviceIdentity, MediaProfile, ProbeResult, PtzPreset
from xueliang.connectors.onvif.parsers import (
    ServiceList,
    parse_capabilities,
    parse_device_information,
    parse_services,
    parse_system_date_time,
)
from xueliang.connectors.onvif.policy import AddressPolicy
from xueliang.connectors.onvif.ptz import PtzControl
from xueliang.connectors.onvif.settings import OnvifSettings
from xueliang.connectors.onvif.soap import SoapChannel, create_session, format_camera, hide_userinfo
from xueliang.connectors.onvif.urls import AddressFixer

logger = logging.getLogger(__name__)

DEVICE_SERVICE_PATH = "/onvif/device_service"  # fixed by ONVIF Core 5.1.1


class OnvifClient:
    """One camera. Cheap to create; an async context manager (closes its own session, if any)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        timeout_s: float | None = None,
        session: aiohttp.ClientSession | None = None,
        settings: OnvifSettings | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        settings = settings or OnvifSettings()
        if timeout_s is not None:
            settings = settings.model_copy(update={"timeout_s": timeout_s})
        self.host = host
        self.port = port
        self.camera = format_camera(host, port)
        self.settings = settings
        self._session = session
        self._policy = policy
        self._own_session: aiohttp.ClientSession | None = None
        self._username = username
        self._password = password
        self._channel: SoapChannel | None = None
        self._fixer = AddressFixer(host, port, enabled=settings.rewrite_addresses)
        self.device_xaddr = f"http://{self.camera}{DEVICE_SERVICE_PATH}"
        self._services: ServiceList | None = None
        self._unusable: dict[str, str] = {}  # service namespace -> why its advertised address was dropped
        self.used_capabilities_fallback = False

    async def __aenter__(self) -> OnvifClient:
        self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None
            self._channel = None

    def _open(self) -> SoapChannel:
        if self._channel is None:
            session = self._session
            if session is None:
                session = self._own_session = create_session(self.settings, policy=self._policy)
            self._channel = SoapChannel(
                self.host, self.port, self._username, self._password, session=session, settings=self.settings
            )
        return self._channel

    @property
    def clock_offset_s(self) -> float | None:
        return self._channel.clock_offset_s if self._channel else None

    # ------------------------------------------------------------------ device

    async def sync_clock(self) -> float:
        """Measure the camera's clock offset (seconds, camera minus us) and sign with it from now on.

        ``GetSystemDateAndTime`` is the one call ONVIF lets a client make without credentials;
        cameras that authenticate every request (Axis, per onvif-zeep-async) get it signed.
        """
        channel = self._open()
        sent = time.time()
        try:
            answer = await channel.call("devicemgmt", "GetSystemDateAndTime", {}, self.device_xaddr, auth=False)
        except AuthFailed:
            sent = time.time()
            answer = await channel.call("devicemgmt", "GetSystemDateAndTime", {}, self.device_xaddr)
        received = time.time()
        camera_utc: datetime | None = channel.read("GetSystemDateAndTime", parse_system_date_time, answer)
        if camera_utc is None:
            logger.warning("camera %s: reports no UTC time; assuming its clock is right", self.camera)
            offset = 0.0
        else:
            offset = round(camera_utc.timestamp() - (sent + received) / 2, 3)
            if abs(offset) > self.settings.max_clock_skew_s:
                logger.warning(
                    "camera %s: clock is %.0f s off; signing with the offset (fix the camera's NTP)",
                    self.camera,
                    offset,
                )
        channel.set_clock_offset(offset)
        return offset

    async def device_information(self) -> DeviceIdentity:
        channel = await self._ready()
        answer = await channel.call("devicemgmt", "GetDeviceInformation", {}, self.device_xaddr)
        return channel.read("GetDeviceInformation", parse_device_information, answer)

    async def services(self) -> dict[str, str]:
        """Service namespace -> XAddr; GetServices, or GetCapabilities when GetServices fails."""
        return dict((await self._service_list()).xaddrs)

    async def _service_list(self) -> ServiceList:
        if self._services is not None:
            return self._services
        channel = await self._ready()
        try:
            answer = await channel.call("devicemgmt", "GetServices", {"IncludeCapability": True}, self.device_xaddr)
            found = channel.read("GetServices", parse_services, answer)
        except (DeviceFault, Unsupported, MalformedResponse) as exc:
            # Camera quirk: older firmwares (the captured Axis Q6045-E among them) answer
            # GetServices with a fault; GetCapabilities (ONVIF 1.0) lists the core services.
            logger.info("camera %s: GetServices failed (%s); using GetCapabilities", self.camera, exc.detail)
            answer = await channel.call("devicemgmt", "GetCapabilities", {"Category": "All"}, self.device_xaddr)
            found = channel.read("GetCapabilities", parse_capabilities, answer)
            self.used_capabilities_fallback = True
        found.xaddrs = self._usable_xaddrs(found.xaddrs)
        self._services = found
        return found

    def _usable_xaddrs(self, xaddrs: dict[str, str]) -> dict[str, str]:
        """The advertised addresses made usable (:class:`AddressFixer`); one that is not a URL at
        all (``http://[::1``, a port that is no number) is dropped with a warning, as if the
        service were not offered, so the other services still work."""
        usable = {}
        for namespace, xaddr in xaddrs.items():
            try:
                usable[namespace] = self._fixer.service(xaddr)
            except ValueError as exc:  # urllib / yarl: the address does not parse
                why = self._unusable[namespace] = f"its address {hide_userinfo(xaddr)[:200]!r} is not a URL ({exc})"
                logger.warning("camera %s: ignoring the %s service: %s", self.camera, namespace, why)
        return usable

    def _absent(self, operation: str, what: str, *namespaces: str) -> OnvifError:
        """The error for a service the probe needs and does not have: ``MalformedResponse`` when the
        camera did advertise it with a broken address, else ``Unsupported``."""
        for namespace in namespaces:
            if namespace in self._unusable:
                return MalformedResponse(self.camera, operation, f"the {what} service: {self._unusable[namespace]}")
        return Unsupported(self.camera, operation, f"the camera offers no {what} service")

    async def _ready(self) -> SoapChannel:
        channel = self._open()
        if channel.clock_offset_s is None:
            await self.sync_clock()
        return channel

    async def _xaddr(self, namespace: str, what: str) -> str:
        xaddr = (await self._service_list()).xaddrs.get(namespace)
        if not xaddr:
            raise self._absent(what, what, namespace)
        return xaddr

    # ------------------------------------------------------------------ probe

    async def probe(self) -> ProbeResult:
        """Clock, identity, services, media profiles with their URIs, PTZ and presets."""
        offset = await self.sync_clock()
        identity = await self.device_information()
        services = await self._service_list()
        media = await self._media_reader(services)
        try:
            profiles = await media.profiles()
        except (DeviceFault, Unsupported, MalformedResponse) as exc:
            if media.version != 2 or ns.MEDIA not in services.xaddrs:
                raise
            logger.info("camera %s: Media2 GetProfiles failed (%s); using Media1", self.camera, exc.detail)
            media = MediaReader(self._open(), services.xaddrs[ns.MEDIA], 1, self._fixer)
            profiles = await media.profiles()
        with_uris = []
        for profile in profiles:
            if not profile.encoding:  # a profile without a video encoder has nothing to stream
                with_uris.append(profile)
                continue
            stream_uri = await media.stream_uri(profile.token)
            snapshot_uri = await media.snapshot_uri(profile.token)
            with_uris.append(dataclasses.replace(profile, stream_uri=stream_uri, snapshot_uri=snapshot_uri))
        profiles = mark_sub_streams(with_uris)
        analysis, live = choose_profiles(profiles)
        ptz = ns.PTZ in services.xaddrs and any(p.ptz for p in profiles)
        presets = await self._probe_presets(profiles, live) if ptz else []
        return ProbeResult(
            host=self.host,
            port=self.port,
            identity=identity,
            clock_offset_s=offset,
            services=dict(services.xaddrs),
            media_version=media.version,
            profiles=tuple(profiles),
            analysis_profile=analysis,
            live_profile=live,
            ptz=ptz,
            presets=tuple(presets),
            events_supported=ns.EVENTS in services.xaddrs,
            pullpoint_supported=services.pullpoint,
            used_capabilities_fallback=self.used_capabilities_fallback,
        )

    async def _media_reader(self, services: ServiceList) -> MediaReader:
        version: MediaVersion
        if ns.MEDIA2 in services.xaddrs:
            version, xaddr = 2, services.xaddrs[ns.MEDIA2]
        elif ns.MEDIA in services.xaddrs:
            version, xaddr = 1, services.xaddrs[ns.MEDIA]
        else:
            raise self._absent("probe", "Media", ns.MEDIA2, ns.MEDIA)
        return MediaReader(self._open(), xaddr, version, self._fixer)

    async def _probe_presets(self, profiles: list[MediaProfile], live: str) -> list[PtzPreset]:
        token = live if any(p.token == live and p.ptz for p in profiles) else next(p.token for p in profiles if p.ptz)
        try:
            return await (await self._ptz()).get_presets(token)
        except (DeviceFault, Unsupported) as exc:
            logger.info("camera %s: presets unavailable: %s", self.camera, exc.detail)
            return []

    # ------------------------------------------------------------------ PTZ

    async def _ptz(self) -> PtzControl:
        return PtzControl(await self._ready(), await self._xaddr(ns.PTZ, "PTZ"))

    async def continuous_move(
        self, profile: str, pan: float = 0.0, tilt: float = 0.0, zoom: float = 0.0, timeout_s: float | None = None
    ) -> None:
        await (await self._ptz()).continuous_move(profile, pan, tilt, zoom, timeout_s)

    async def stop(self, profile: str) -> None:
        await (await self._ptz()).stop(profile)

    async def goto_preset(self, profile: str, token: str) -> None:
        await (await self._ptz()).goto_preset(profile, token)

    async def get_presets(self, profile: str) -> list[PtzPreset]:
        return await (await self._ptz()).get_presets(profile)

    # ------------------------------------------------------------------ events

    def events(self) -> PullPointSubscription:
        """Camera events: ``async with client.events() as events: async for event in events: ...``.

        The subscription is created on entering (``Unsupported`` when the camera has no event
        service) and removed on leaving.
        """
        return PullPointSubscription(self.camera, self._events_endpoint, self._fixer, self.settings)

    async def _events_endpoint(self) -> tuple[SoapChannel, str]:
        return await self._ready(), await self._xaddr(ns.EVENTS, "events")
