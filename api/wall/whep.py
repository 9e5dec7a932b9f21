"""WHEP-style signalling (draft-ietf-wish-whep): POST an SDP offer, get the SDP answer back.

::

    POST   /api/wall/whep/{camera_id}          Content-Type: application/sdp, body: offer
           -> 201, Location: /api/wall/whep/sessions/{id}, body: answer (application/sdp)
    DELETE /api/wall/whep/sessions/{id}        -> 204, the session and its peer connection end
    PATCH  /api/wall/whep/sessions/{id}        -> 405: no trickle ICE; offer with all candidates
    GET    /api/wall/streams                   -> upstreams of this node (state, viewers, counters)
    POST   /api/wall/warm {"cameras": [...]}    -> start upstreams ahead of viewers (tours), kept grace_s

Operators (and admins) only. Only the session's owner or an admin may delete it. A camera whose
address is outside the allowed networks, or whose stored password cannot be decrypted, is a 409
(as for PTZ: see ``xueliang.api.wall.errors``); a camera that cannot be read is a 502.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import NodeDep, Operator
from xueliang.api.wall.cameras import camera_source, find_camera
from xueliang.api.wall.deps import WallDep
from xueliang.api.wall.errors import WallError, operator_text
from xueliang.api.wall.models import UpstreamInfo
from xueliang.gateway.errors import NotFound, SecretUnreadable
from xueliang.gateway.models import Role

router = APIRouter(prefix="/api/wall", tags=["wall"])

SDP_TYPE = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024


class WarmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: list[str] = Field(..., max_length=16, description="Camera ids about to be shown")


class WarmResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warmed: list[UpstreamInfo] = Field(description="Upstreams now running or starting")
    refused: dict[str, str] = Field(description="Camera id -> why it cannot be warmed")


class StreamsView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upstreams: list[UpstreamInfo]
    sessions: int
    viewers: int


async def read_offer(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``MAX_OFFER_BYTES`` (by its
    Content-Length, or while it streams in): a huge or endless body is never held in memory."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=(
            f"浏览器的视频请求过大：请刷新页面 / SDP offer larger than {MAX_OFFER_BYTES // 1024} KiB: "
            "send the browser's offer unmodified"
        ),
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_OFFER_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            raise too_large
    return bytes(body)


@router.post(
    "/whep/{camera_id}",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    summary="Start watching a camera: SDP offer in, SDP answer out (WHEP)",
    responses={201: {"content": {SDP_TYPE: {}}, "description": "SDP answer; Location names the session"}},
)
async def whep_offer(camera_id: str, request: Request, principal: Operator, node: NodeDep, wall: WallDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != SDP_TYPE:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"视频请求格式错误：请刷新页面 / send the SDP offer as {SDP_TYPE}, not {content_type!r}",
        )
    body = await read_offer(request)
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail="视频请求不是 UTF-8 文本：请刷新页面 / the SDP offer is not UTF-8 text"
        ) from exc
    camera = await find_camera(node, camera_id)
    session, answer = await wall.sessions.open(await camera_source(node, camera), offer, principal.name)
    location = f"/api/wall/whep/sessions/{session.id}"
    return Response(answer, status_code=status.HTTP_201_CREATED, media_type=SDP_TYPE, headers={"Location": location})


@router.delete(
    "/whep/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop watching (end a session)"
)
async def whep_delete(session_id: str, principal: Operator, wall: WallDep) -> Response:
    session = wall.sessions.get(session_id)
    if session.owner != principal.name and principal.role is not Role.ADMIN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"无权结束他人的观看会话 / viewer session {session_id} belongs to another user",
        )
    await wall.sessions.close(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/whep/sessions/{session_id}", summary="Trickle ICE: not supported", status_code=405)
async def whep_patch(session_id: str, _: Operator) -> Response:
    del session_id
    raise HTTPException(
        status.HTTP_405_METHOD_NOT_ALLOWED,
        detail="不支持逐个发送 ICE 候选：请一次发送完整的视频请求 / trickle ICE is not supported: "
        "gather every candidate before sending the offer",
        headers={"Allow": "DELETE"},
    )


@router.get("/streams", summary="Upstreams relayed by this node, with their counters")
async def streams(_: Operator, wall: WallDep) -> StreamsView:
    return StreamsView(upstreams=wall.relay.upstreams(), sessions=len(wall.sessions), viewers=wall.relay.viewers)


@router.post("/warm", summary="Start cameras' upstreams before anyone watches (the next step of a tour)")
async def warm(body: WarmRequest, _: Operator, node: NodeDep, wall: WallDep) -> WarmResult:
    result = WarmResult(warmed=[], refused={})
    for camera_id in dict.fromkeys(body.cameras):
        try:
            camera = await find_camera(node, camera_id)
            result.warmed.append(wall.relay.warm(await camera_source(node, camera)))
        except (NotFound, SecretUnreadable) as exc:
            result.refused[camera_id] = str(exc)  # Chinese first already (``find_camera``, ``camera_password``)
        except WallError as exc:
            result.refused[camera_id] = operator_text(exc)
    return result
