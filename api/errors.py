"""Maps the gateway's errors, the live wall's included, to HTTP answers with a readable ``detail``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from xueliang.api.wall.errors import (
    CameraAddressRefused,
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
)
from xueliang.gateway.errors import (
    AuthError,
    ConfigError,
    Conflict,
    GatewayError,
    NotFound,
    PermissionDenied,
    SecretUnreadable,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[GatewayError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (StoreUnavailable, 503),
    (AuthError, 401),
    (PermissionDenied, 403),
    (SecretUnreadable, 409),
    (ConfigError, 422),
    # the live wall's (xueliang.api.wall.errors)
    (NoLiveStream, 409),
    (CameraAddressRefused, 409),
    (PtzUnsupported, 409),
    (RelayNotRunning, 503),
    (OfferRejected, 400),
    (SessionNotFound, 404),
    (PtzFailed, 502),
    (SourceError, 502),
    (SavedWallLimit, 422),
    (SavedWallError, 500),
)


def status_for(error: GatewayError) -> int:
    if isinstance(error, CapacityReached):
        return 429 if error.per_user else 503  # a user's own limit, or the node's
    for kind, code in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return code
    return 400


async def gateway_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    code = status_for(exc)
    if code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, gateway_error_handler)
