"""``/api/wall/ws``: the wall's live feed over a WebSocket (operators and admins).

Authentication: ``?token=<login token or API key>`` (refused during the handshake: HTTP 401 for a
bad token, 403 for a role that may not watch), or, without the query parameter, a first message
``{"type": "auth", "token": "..."}`` within ``AUTH_TIMEOUT_S`` (refused by closing with 4401 or 4403).

Client -> server::

    {"type": "watch", "cameras": ["cam-1", ...]}    cameras on the wall: their detections are sent
    {"type": "ping"}                                 answered with {"type": "pong"}

A message the feed cannot take (binary, not JSON, nested too deep, of an unknown type or shape,
watching more than ``MAX_WATCHED`` cameras) is answered with ``{"type": "error", "detail"}`` and
the connection goes on; one larger than ``MAX_MESSAGE_CHARS`` closes it with 1009. The token is
checked again every ``RECHECK_S``: an expired token, a disabled or removed user closes with 4401,
a role that may no longer watch with 4403 (as at the handshake).

Server -> client: ``{"type": "hello", "user", "role"}`` once, then one message per live item:
``{"type": <kind>, "camera_id", "seq", "data"}`` for ``detections`` (only watched cameras),
``incident`` (all), ``camera_status`` (all, for the tree's colours) and ``stream`` (watched
cameras: upstream state). When the node dropped items for this slow client, ``{"type":
"dropped", "count"}`` says how many (the live feed keeps the newest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from xueliang.api.deps import get_principal
from xueliang.gateway.models import Role
from xueliang.gateway.node import Node
from xueliang.gateway.security import Principal

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/wall", tags=["wall"])

AUTH_TIMEOUT_S = 10.0
RECHECK_S = 60.0  # how often a connected client's token and role are checked again
MAX_WATCHED = 64
MAX_MESSAGE_CHARS = 64 * 1024  # commands are small; a larger message closes the socket (1009)
WATCHED_KINDS = frozenset({"detections", "stream"})
FEED_KINDS = frozenset({"detections", "incident", "camera_status", "stream"})
WATCH_ROLES = frozenset({Role.OPERATOR, Role.ADMIN})


class Refused(Exception):
    def __init__(self, status: int, detail: str, actor: str = "anonymous") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.actor = actor


async def authenticate(websocket: WebSocket, node: Node, token: str) -> Principal:
    """The principal for ``token`` (login token or API key) allowed to watch; ``Refused`` otherwise."""
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    try:
        # get_principal only touches ``.state`` of the connection, which a WebSocket has too.
        principal = await get_principal(cast(Request, websocket), node, credentials, None)
    except HTTPException as exc:
        raise Refused(401, str(exc.detail)) from exc
    if principal.role not in WATCH_ROLES:
        detail = f"role {principal.role.value} may not watch the wall; needs operator or admin"
        raise Refused(403, detail, principal.name)
    return principal


async def _deny(websocket: WebSocket, node: Node, refused: Refused, accepted: bool) -> None:
    outcome = "denied 403" if refused.status == 403 else "unauthenticated 401"
    await node.audit(refused.actor, "WS /api/wall/ws", outcome, detail=refused.detail)
    if accepted:
        await websocket.close(code=4000 + refused.status, reason=refused.detail[:120])
    elif "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": refused.detail}, status_code=refused.status))
    else:
        await websocket.close(code=1008, reason=refused.detail[:120])  # the server answers 403


async def receive_frame(websocket: WebSocket) -> str | None:
    """The next text message, ``None`` for a binary one; ``WebSocketDisconnect`` when the client left.
    (Starlette's ``receive_text`` raises ``KeyError`` on a binary frame.)"""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


async def _first_message_token(websocket: WebSocket) -> str:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            text = await receive_frame(websocket)
    except TimeoutError as exc:
        raise Refused(401, "no auth message within 10 s") from exc
    try:
        message = json.loads(text) if text is not None and len(text) <= MAX_MESSAGE_CHARS else None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Refused(401, 'first message must be JSON text {"type": "auth", "token": ...}') from exc
    if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
        raise Refused(401, 'first message must be {"type": "auth", "token": ...}')
    return str(message["token"])


@router.websocket("/ws")
async def wall_feed(websocket: WebSocket, token: str | None = None) -> None:
    node: Node = websocket.state.node
    accepted = False
    try:
        if token is None:
            await websocket.accept()
            accepted = True
            token = await _first_message_token(websocket)
        principal = await authenticate(websocket, node, token)
    except Refused as refused:
        await _deny(websocket, node, refused, accepted)
        return
    except WebSocketDisconnect:
        return
    if not accepted:
        await websocket.accept()
    await FeedConnection(websocket, node, principal, token).serve()


class FeedConnection:
    def __init__(self, websocket: WebSocket, node: Node, principal: Principal, token: str) -> None:
        self.websocket = websocket
        self.node = node
        self.principal = principal
        self.token = token
        self.watched: frozenset[str] = frozenset()

    async def serve(self) -> None:
        await self.websocket.send_json({"type": "hello", "user": self.principal.name, "role": self.principal.role})
        log.info("wall feed opened for %s", self.principal.name)
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._read()),
                group.create_task(self._write()),
                group.create_task(self._recheck()),
            ]
            for task in tasks:
                task.add_done_callback(lambda _: [t.cancel() for t in tasks])
        log.info("wall feed closed for %s", self.principal.name)

    async def _recheck(self) -> None:
        """Close the feed once the token expired, the user was disabled or removed, or lost the role."""
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                await authenticate(self.websocket, self.node, self.token)
            except Refused as refused:
                refused.actor = self.principal.name
                log.info("wall feed of %s ends: %s", self.principal.name, refused.detail)
                with contextlib.suppress(RuntimeError, OSError):  # the client may be gone already
                    await _deny(self.websocket, self.node, refused, accepted=True)
                return

    async def _read(self) -> None:
        while True:
            try:
                text = await receive_frame(self.websocket)
            except WebSocketDisconnect:
                return
            if text is None:
                await self._send({"type": "error", "detail": "binary messages are not accepted: send JSON text"})
                continue
            if len(text) > MAX_MESSAGE_CHARS:
                reason = f"message of {len(text)} characters exceeds {MAX_MESSAGE_CHARS // 1024} KiB"
                with contextlib.suppress(RuntimeError, OSError):
                    await self.websocket.close(code=1009, reason=reason)
                return
            try:
                message = json.loads(text)
            except json.JSONDecodeError:
                await self._send({"type": "error", "detail": "messages must be JSON objects"})
                continue
            except RecursionError:
                await self._send({"type": "error", "detail": "message nested too deeply: send a flat JSON object"})
                continue
            await self._handle(message)

    async def _handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "watch":
            cameras = message.get("cameras")
            if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
                await self._send({"type": "error", "detail": 'watch needs {"cameras": [camera ids]}'})
                return
            if len(cameras) > MAX_WATCHED:
                detail = f"watch at most {MAX_WATCHED} cameras, not {len(cameras)}: the watch list is unchanged"
                await self._send({"type": "error", "detail": detail})
                return
            self.watched = frozenset(cameras)
        elif kind == "ping":
            await self._send({"type": "pong"})
        else:
            await self._send({"type": "error", "detail": f"unknown message type {kind!r}: use watch or ping"})

    async def _write(self) -> None:
        with self.node.live.subscribe(kinds=FEED_KINDS) as subscription:
            reported = 0
            while True:
                item = await subscription.queue.get()
                if subscription.dropped != reported:
                    await self._send({"type": "dropped", "count": subscription.dropped - reported})
                    reported = subscription.dropped
                if item.kind in WATCHED_KINDS and item.camera_id not in self.watched:
                    continue
                message = {"type": item.kind, "camera_id": item.camera_id, "seq": item.seq, "data": item.data}
                if not await self._send(message):
                    return

    async def _send(self, message: dict[str, Any]) -> bool:
        try:
            await self.websocket.send_json(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False  # the client went away; _read ends too
        return True
