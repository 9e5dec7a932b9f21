"""Maps the wall's errors to HTTP answers.

Every wall router uses ``WallRoute``, which turns a ``WallError`` raised by its endpoint into the
answer below. A route class rather than an app exception handler: ``attach_wall`` runs in the
lifespan, after Starlette has built its exception middleware (handlers added then are ignored), and
the gateway's own ``GatewayError`` handler would answer 400 to all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from xueliang.api.wall.errors import (
    CapacityReached,
    NoLiveStream,
    OfferRejected,
    PtzFailed,
    PtzUnsupported,
    RelayNotRunning,
    SavedWallError,
    SavedWallLimit,
    SessionNotFound,
    SourceError,
    WallError,
)

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[WallError], int], ...] = (
    (NoLiveStream, 409),
    (PtzUnsupported, 409),
    (RelayNotRunning, 503),
    (OfferRejected, 400),
    (SessionNotFound, 404),
    (PtzFailed, 502),
    (SourceError, 502),
    (SavedWallLimit, 422),
    (SavedWallError, 500),
)


def status_for(error: WallError) -> int:
    if isinstance(error, CapacityReached):
        return 429 if error.per_user else 503
    for kind, code in STATUS:
        if isinstance(error, kind):
            return code
    return 400


def error_response(request: Request, exc: WallError) -> JSONResponse:
    code = status_for(exc)
    if code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code)


class WallRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wall_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except WallError as exc:
                return error_response(request, exc)

        return wall_handler
