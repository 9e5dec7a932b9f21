"""Route HTTP requests to the camera they reach: SOAP services, snapshots, or the /_sim control API.

Connection-level faults act here: ``offline`` resets the connection, ``timeout`` leaves the request
unanswered, ``slow_s`` delays the answer. The control API is exempt from faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from xueliang.connectors.onvif.simulator.control_api import PREFIX, ControlApi
from xueliang.connectors.onvif.simulator.errors import VideoSourceError
from xueliang.connectors.onvif.simulator.fleet import Fleet
from xueliang.connectors.onvif.simulator.frames import FrameStore
from xueliang.connectors.onvif.simulator.http_digest import DigestAuthority, Verdict
from xueliang.connectors.onvif.simulator.http_server import is_loopback
from xueliang.connectors.onvif.simulator.http_types import HandlerResult, HttpRequest, HttpResponse
from xueliang.connectors.onvif.simulator.media_service import SNAPSHOT_PATH
from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.soap_endpoint import SoapEndpoint, camera_password

RESET = HttpResponse(0, reset=True)
JPEG = "image/jpeg"


class Router:
    """The HttpHandler of the simulator."""

    def __init__(
        self,
        *,
        fleet: Fleet,
        soap: SoapEndpoint,
        frames: FrameStore,
        digest: DigestAuthority,
        control: ControlApi,
        username: str,
        password: str,
    ) -> None:
        self.fleet, self.soap, self.frames, self.digest, self.control = fleet, soap, frames, digest, control
        self.username, self.password = username, password
        self.snapshots = 0
        self.snapshot_denied = 0

    def accept(self, local_address: str) -> bool:
        """Reset connections to offline cameras at once, and any that did not come over loopback (the
        wildcard listener also hears the machine's network: the cameras and the control API are the lab's)."""
        if not is_loopback(local_address):
            return False
        camera = self.fleet.by_address(local_address)
        return camera is None or not camera.faults.offline

    def handle(self, request: HttpRequest) -> HandlerResult:
        """Answer one request (see the module docstring for faults)."""
        if request.path.startswith(PREFIX):
            return self.control.handle(request)
        camera = self.fleet.by_address(request.local_address)
        if camera is None:
            message = (
                f"no simulated camera at {request.local_address}; cameras start at {self.fleet.cameras[0].address}"
            )
            return HttpResponse(404, message.encode())
        faults = camera.faults
        if faults.offline:
            return RESET
        if faults.timeout:
            return None
        if faults.slow_s > 0:
            return self._slow(camera, request, faults.slow_s)
        return self._route(camera, request)

    def _route(self, camera: SimCamera, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        path = request.path
        if path == SNAPSHOT_PATH:
            if request.method != "GET":
                return HttpResponse(405, b"use GET for snapshots", headers=[("Allow", "GET")])
            return self._snapshot(camera, request)
        if path.startswith("/onvif/"):
            if request.method != "POST":
                return HttpResponse(405, b"ONVIF services take SOAP over POST", headers=[("Allow", "POST")])
            return self.soap.handle(camera, request)
        return HttpResponse(404, f"nothing at {path} on camera {camera.address}".encode())

    async def _slow(self, camera: SimCamera, request: HttpRequest, delay: float) -> HttpResponse | None:
        await asyncio.sleep(delay)
        if camera.faults.offline:
            return RESET
        result = self._route(camera, request)
        return result if isinstance(result, HttpResponse) else await result

    def _snapshot(self, camera: SimCamera, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if camera.faults.no_snapshot:
            return HttpResponse(404, b"snapshot not supported")
        verdict = self.digest.verify(
            request.method, request.headers.get("authorization"), self.username, camera_password(camera, self.password)
        )
        if verdict is not Verdict.OK:
            self.snapshot_denied += 1
            challenge = self.digest.challenge(stale=verdict is Verdict.STALE)
            return HttpResponse(401, b"authentication required", headers=[("WWW-Authenticate", challenge)])
        self.snapshots += 1
        jpeg = self.frames.jpeg_for(camera.index)
        if isinstance(jpeg, bytes):
            return HttpResponse(200, jpeg, JPEG)
        return self._snapshot_later(jpeg)

    @staticmethod
    async def _snapshot_later(pending: Awaitable[bytes]) -> HttpResponse:
        try:
            return HttpResponse(200, await pending, JPEG)
        except VideoSourceError as exc:
            return HttpResponse(500, f"snapshot source failed: {exc}".encode())
