"""PTZ from the wall: ``POST /api/cameras/{id}/ptz`` sent to the camera over ONVIF (operators).

Press-and-hold on the page sends ``move`` with a short ``timeout_s`` and repeats it while the
button is held; release sends ``stop``. The timeout is the safety net: a camera whose ``stop``
never arrives (the page closed, the network dropped) stops by itself.

Before anything is sent, the camera's address and password are checked as for the live stream
(``xueliang.api.wall.cameras``): outside the allowed networks, or a password that cannot be
decrypted, is a 409 on both routes; a camera that cannot be reached or refuses is a 502. A preset
token that is not among the camera's presets on record is a 404 before the camera is asked (when
the record lists none, the camera decides).

The ONVIF clients are kept per camera in ``ptz_clients``.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from xueliang.api.deps import NodeDep, Operator
from xueliang.api.wall.cameras import camera_password, check_camera_host, find_camera, ptz_profile
from xueliang.api.wall.deps import WallDep
from xueliang.api.wall.errors import PtzFailed, PtzUnsupported
from xueliang.connectors.onvif import OnvifError, Unsupported
from xueliang.gateway.errors import NotFound

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/cameras", tags=["wall"])


class PtzRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["move", "stop", "preset"] = Field(..., description="move (continuous), stop, or go to a preset")
    pan: float = Field(0.0, ge=-1, le=1, description="Pan speed, -1 (left) .. 1 (right)")
    tilt: float = Field(0.0, ge=-1, le=1, description="Tilt speed, -1 (down) .. 1 (up)")
    zoom: float = Field(0.0, ge=-1, le=1, description="Zoom speed, -1 (out) .. 1 (in)")
    preset: str = Field("", max_length=64, description="Preset token (action preset)")
    timeout_s: float = Field(2.0, gt=0, le=60, description="A move stops by itself after this long")

    @model_validator(mode="after")
    def _preset_named(self) -> PtzRequest:
        if self.action == "preset" and not self.preset:
            raise ValueError("action preset needs a preset token (see the camera's presets)")
        return self


class PtzResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str
    action: str
    profile: str


@router.post("/{camera_id}/ptz", summary="Pan, tilt, zoom, stop or go to a preset (ONVIF)")
async def ptz(camera_id: str, body: PtzRequest, principal: Operator, node: NodeDep, wall: WallDep) -> PtzResult:
    camera = await find_camera(node, camera_id)
    if not camera.ptz:
        raise PtzUnsupported(f"camera {camera_id} ({camera.name}) has no PTZ on record")
    if body.action == "preset" and camera.ptz_presets and body.preset not in camera.ptz_presets:
        known = ", ".join(sorted(camera.ptz_presets))
        raise NotFound(
            f"预置位 {body.preset} 不存在：摄像机 {camera_id}（{camera.name}）的预置位为 {known} / "
            f"camera {camera_id} has no preset {body.preset!r} (presets on record: {known})"
        )
    profile = ptz_profile(camera)
    await check_camera_host(node, camera, camera.host, "PTZ", PtzFailed)
    client = wall.ptz.client(camera, camera_password(node, camera))
    action = body.action
    if action == "move" and not (body.pan or body.tilt or body.zoom):
        action = "stop"  # a zero-speed move is a stop (ONVIF refuses an empty velocity)
    try:
        if action == "move":
            await client.continuous_move(profile, body.pan, body.tilt, body.zoom, body.timeout_s)
        elif action == "stop":
            await client.stop(profile)
        else:
            await client.goto_preset(profile, body.preset)
    except Unsupported as exc:
        raise PtzUnsupported(f"camera {camera_id}: {exc}") from exc
    except OnvifError as exc:
        raise PtzFailed(f"camera {camera_id}: PTZ {action} failed: {exc}") from exc
    log.info(
        "camera %s: PTZ %s (pan %.2f tilt %.2f zoom %.2f preset %s) by %s",
        camera_id,
        action,
        body.pan,
        body.tilt,
        body.zoom,
        body.preset or "-",
        principal.name,
    )
    return PtzResult(camera_id=camera_id, action=action, profile=profile)
