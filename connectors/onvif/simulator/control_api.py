"""The /_sim control API: list cameras, switch faults, read PTZ logs (JSON over the same HTTP port).

    GET    /_sim/health                       counts, ports and counters
    GET    /_sim/cameras?offset=0&limit=1000  cameras (address, identity, faults)
    GET    /_sim/cameras/<address|index>      one camera, with its PTZ state
    GET    /_sim/cameras/<key>/faults         its fault switches
    PATCH|PUT|POST /_sim/cameras/<key>/faults {"offline": true, ...}: change some switches
    DELETE /_sim/cameras/<key>/faults         back to healthy
    GET    /_sim/cameras/<key>/ptz            PTZ position and the commands received
    POST   /_sim/faults                       {"cameras": ["127.1.0.3", "7"] | "all", "faults": {...}}
    DELETE /_sim/faults                       every camera back to healthy

Use a non-camera address (e.g. 127.0.0.1) to reach it: faults never apply to /_sim.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from xueliang.connectors.onvif.simulator.fleet import Fleet
from xueliang.connectors.onvif.simulator.http_types import HttpRequest, HttpResponse
from xueliang.connectors.onvif.simulator.models import Faults, SimCamera
from xueliang.connectors.onvif.simulator.ptz_service import current_position

PREFIX = "/_sim"
JSON = "application/json; charset=utf-8"


def _json(status: int, payload: object) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload, ensure_ascii=False).encode(), JSON)


def _error(status: int, message: str) -> HttpResponse:
    return _json(status, {"error": message})


class ControlApi:
    """Answers /_sim requests against the fleet."""

    def __init__(self, fleet: Fleet, ports: Callable[[], tuple[int, int]], counters: Callable[[], dict[str, Any]]):
        self.fleet = fleet
        self._ports = ports
        self._counters = counters

    def camera_view(self, camera: SimCamera, detail: bool = False) -> dict[str, Any]:
        """JSON-ready description of a camera."""
        http_port, rtsp_port = self._ports()
        view: dict[str, Any] = {
            "index": camera.index,
            "address": camera.address,
            "name": camera.name,
            "serial": camera.serial,
            "manufacturer": camera.manufacturer,
            "model": camera.model,
            "firmware": camera.firmware,
            "has_ptz": camera.has_ptz,
            "has_rtsp": camera.has_rtsp,
            "device_service": f"http://{camera.address}:{http_port}/onvif/device_service",
            "rtsp_main": f"rtsp://{camera.address}:{rtsp_port}/Streaming/Channels/101" if camera.has_rtsp else None,
            "faults": camera.faults.model_dump(),
        }
        if detail and camera.ptz is not None:
            view["ptz"] = self.ptz_view(camera)
        return view

    def ptz_view(self, camera: SimCamera) -> dict[str, Any]:
        """PTZ position, movement and the commands received (oldest first)."""
        state = camera.ptz
        if state is None:
            return {}
        pan, tilt, zoom, moving = current_position(state, time.monotonic())
        return {
            "pan": pan,
            "tilt": tilt,
            "zoom": zoom,
            "moving": moving,
            "last_move": state.last_move,
            "presets": {
                t: {"name": p.name, "pan": p.pan, "tilt": p.tilt, "zoom": p.zoom} for t, p in state.presets.items()
            },
            "commands": [
                {
                    "at": c.at,
                    "operation": c.operation,
                    "profile_token": c.profile_token,
                    "pan": c.pan,
                    "tilt": c.tilt,
                    "zoom": c.zoom,
                    "preset_token": c.preset_token,
                    "timeout_s": c.timeout_s,
                }
                for c in state.commands
            ],
            "commands_dropped": state.commands_dropped,
        }

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Route one /_sim request."""
        parts = [p for p in request.path[len(PREFIX) :].split("/") if p]
        method = request.method
        if parts in ([], ["health"]) and method == "GET":
            http_port, rtsp_port = self._ports()
            return _json(
                200,
                {
                    "cameras": len(self.fleet.cameras),
                    "http_port": http_port,
                    "rtsp_port": rtsp_port,
                    "counters": self._counters(),
                },
            )
        if parts == ["cameras"] and method == "GET":
            query = parse_qs(request.query)
            try:
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", ["100000"])[0])
            except ValueError:
                return _error(400, "offset and limit must be integers")
            chosen = self.fleet.cameras[offset : offset + limit]
            return _json(200, {"total": len(self.fleet.cameras), "cameras": [self.camera_view(c) for c in chosen]})
        if parts == ["faults"]:
            return self._bulk_faults(request)
        if len(parts) >= 2 and parts[0] == "cameras":
            camera = self.fleet.lookup(parts[1])
            if camera is None:
                return _error(404, f"no simulated camera {parts[1]!r}; use an address like 127.1.0.1 or an index")
            return self._camera(request, camera, parts[2:])
        return _error(404, f"unknown control path {request.path}; see GET /_sim/health")

    def _camera(self, request: HttpRequest, camera: SimCamera, rest: list[str]) -> HttpResponse:
        method = request.method
        if not rest and method == "GET":
            return _json(200, self.camera_view(camera, detail=True))
        if rest == ["ptz"] and method == "GET":
            if camera.ptz is None:
                return _error(404, f"camera {camera.address} has no PTZ")
            return _json(200, self.ptz_view(camera))
        if rest == ["faults"]:
            if method == "GET":
                return _json(200, camera.faults.model_dump())
            if method == "DELETE":
                camera.faults = Faults()
                return _json(200, camera.faults.model_dump())
            if method in ("PUT", "PATCH", "POST"):
                patch = self._body(request)
                if isinstance(patch, HttpResponse):
                    return patch
                updated = self._merge(camera.faults, patch)
                if isinstance(updated, HttpResponse):
                    return updated
                camera.faults = updated
                return _json(200, camera.faults.model_dump())
        return _error(405, f"{method} not allowed on {request.path}")

    def _bulk_faults(self, request: HttpRequest) -> HttpResponse:
        if request.method == "DELETE":
            for camera in self.fleet.cameras:
                camera.faults = Faults()
            return _json(200, {"reset": len(self.fleet.cameras)})
        if request.method != "POST":
            return _error(405, "use POST or DELETE on /_sim/faults")
        body = self._body(request)
        if isinstance(body, HttpResponse):
            return body
        selector, patch = body.get("cameras"), body.get("faults")
        if not isinstance(patch, dict):
            return _error(400, 'body needs "faults": {...}')
        if selector == "all":
            targets = list(self.fleet.cameras)
        elif isinstance(selector, list):
            found = [self.fleet.lookup(str(key)) for key in selector]
            missing = [str(k) for k, c in zip(selector, found, strict=True) if c is None]
            if missing:
                return _error(404, f"no simulated cameras {missing}")
            targets = [c for c in found if c is not None]
        else:
            return _error(400, 'body needs "cameras": [addresses or indexes] or "all"')
        for camera in targets:
            updated = self._merge(camera.faults, patch)
            if isinstance(updated, HttpResponse):
                return updated
            camera.faults = updated
        return _json(200, {"updated": len(targets)})

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any] | HttpResponse:
        try:
            body = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        return body

    @staticmethod
    def _merge(current: Faults, patch: dict[str, Any]) -> Faults | HttpResponse:
        try:
            return Faults.model_validate({**current.model_dump(), **patch})
        except ValidationError as exc:
            return _error(400, f"invalid faults: {exc.errors(include_url=False)}")
