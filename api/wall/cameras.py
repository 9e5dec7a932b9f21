"""Cameras as the wall sees them: the read-only list for the camera tree, where a camera's live
stream is (with the credentials put into the RTSP URL, never logged), and the two checks every
route of the wall makes before it connects to a camera (its address, its password): the one place
their failures become the wall's errors (see ``xueliang.api.wall.errors``)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import NodeDep, Staff
from xueliang.api.wall.errors import CameraAddressRefused, NoLiveStream, SourceUnavailable, WallError
from xueliang.api.wall.models import SourceSpec
from xueliang.gateway.cameras.errors import AddressNotAllowed, AddressUnresolvable
from xueliang.gateway.cameras.export import all_cameras
from xueliang.gateway.errors import NotFound, SecretUnreadable
from xueliang.gateway.models import CameraRecord, CameraStatus, StreamProfile
from xueliang.gateway.node import Node

router = APIRouter(prefix="/api/wall", tags=["wall"])


class WallLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_code: str = ""
    district: str = ""
    township: str = ""
    grid_code: str = ""
    address: str = ""


class WallCamera(BaseModel):
    """One camera in the wall's tree."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    status: CameraStatus
    location: WallLocation
    category: str = ""
    ptz: bool = Field(False, description="The camera can pan/tilt/zoom")
    presets: dict[str, str] = Field(default_factory=dict, description="PTZ preset token -> name")
    has_live: bool = Field(False, description="A live stream URI is on record")


def live_profile(camera: CameraRecord) -> StreamProfile | None:
    """The profile the wall plays: ``live_profile`` when set, else the first one with a stream URI."""
    with_uri = [p for p in camera.profiles if p.stream_uri]
    chosen = [p for p in with_uri if p.token == camera.live_profile]
    candidates = chosen or with_uri
    return candidates[0] if candidates else None


def ptz_profile(camera: CameraRecord) -> str:
    """The media profile token PTZ commands go to."""
    for profile in camera.profiles:
        if profile.ptz and profile.token == camera.live_profile:
            return profile.token
    ptz = [p.token for p in camera.profiles if p.ptz]
    return ptz[0] if ptz else (camera.live_profile or (camera.profiles[0].token if camera.profiles else ""))


async def find_camera(node: Node, camera_id: str) -> CameraRecord:
    """The camera record behind a wall route; ``NotFound`` Chinese first (the page shows it) when
    the camera is not registered, e.g. deleted while on someone's wall."""
    try:
        return await node.stores.cameras.get(camera_id)
    except NotFound as exc:
        raise NotFound(f"摄像机不存在（可能已被删除）：请刷新页面后重新选择 / {exc}") from exc


def camera_password(node: Node, camera: CameraRecord) -> str:
    """The camera's password in clear; ``SecretUnreadable`` (naming the camera, Chinese first:
    the wall page shows it) when the stored one cannot be decrypted."""
    try:
        return node.cipher.decrypt(camera.password_enc)
    except SecretUnreadable as exc:
        raise SecretUnreadable(
            "摄像机密码无法解密（security.camera_key 可能已更换）：请技术人员重新录入该摄像机的密码 / "
            f"camera {camera.id} ({camera.name}): {exc}"
        ) from exc


async def check_camera_host(
    node: Node, camera: CameraRecord, host: str, what: str, unreachable: type[WallError]
) -> None:
    """Raise ``CameraAddressRefused`` when ``host`` (``camera``'s, for ``what``: "its stream",
    "PTZ") lies outside ``security.allowed_networks``, ``unreachable`` when the name does not
    resolve."""
    try:
        await node.guard.check(host)
    except AddressNotAllowed as exc:
        raise CameraAddressRefused(f"camera {camera.id} ({camera.name}): not connecting for {what}: {exc}") from exc
    except AddressUnresolvable as exc:
        raise unreachable(f"camera {camera.id} ({camera.name}): cannot reach it for {what}: {exc}") from exc


async def camera_source(node: Node, camera: CameraRecord) -> SourceSpec:
    """Where to read ``camera``'s live stream; raises ``NoLiveStream`` when none is on record,
    ``CameraAddressRefused`` when its URI points outside ``security.allowed_networks`` and
    ``SecretUnreadable`` when its password cannot be decrypted."""
    profile = live_profile(camera)
    if profile is None:
        raise NoLiveStream(
            f"camera {camera.id} ({camera.name}) has no stream URI on record: probe it again (technician) "
            "or set its live profile"
        )
    parts = urlsplit(profile.stream_uri)
    host = parts.hostname or ""
    await check_camera_host(node, camera, host, "its live stream", SourceUnavailable)
    host = f"[{host}]" if ":" in host else host
    safe = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    if parts.username or not camera.username:
        return SourceSpec(camera.id, profile.stream_uri, safe)
    password = camera_password(node, camera)
    auth = quote(camera.username, safe="") + (":" + quote(password, safe="") if password else "")
    url = urlunsplit(parts._replace(netloc=f"{auth}@{parts.netloc}"))
    return SourceSpec(camera.id, url, safe)


def wall_camera(camera: CameraRecord) -> WallCamera:
    loc = camera.location
    return WallCamera(
        id=camera.id,
        name=camera.name,
        status=camera.status,
        location=WallLocation(
            region_code=loc.region_code,
            district=loc.district,
            township=loc.township,
            grid_code=loc.grid_code,
            address=loc.address,
        ),
        category=camera.category,
        ptz=camera.ptz,
        presets=camera.ptz_presets,
        has_live=live_profile(camera) is not None,
    )


@router.get("/cameras", summary="Cameras for the wall's tree (id, name, status, location, PTZ, live)")
async def list_cameras(node: NodeDep, _: Staff) -> list[WallCamera]:
    return [wall_camera(camera) async for camera in all_cameras(node.stores.cameras)]
