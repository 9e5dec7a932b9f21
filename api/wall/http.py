"""Maps the wall's errors to HTTP answers (registered by ``attach_wall``; more specific than the
gateway's own handler, which would answer 400 for them)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


async def wall_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WallError)
    code = status_for(exc)
    if code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(WallError, wall_error_handler)
