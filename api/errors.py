"""Maps the gateway's errors, the live wall's included, to HTTP answers with a readable ``detail``.

The live wall's errors (``xueliang.api.wall.errors.WallError``) are answered Chinese first, their
English message after it (``operator_text``): the wall page shows ``detail`` to operators as given.

A request that does not validate is a 422 in FastAPI's shape (``loc``, ``msg``, ``type``, ``input``),
made safe to send back: non-finite numbers (``NaN``, ``Infinity``, which Python's JSON reader
accepts but JSON cannot carry) are echoed as text instead of failing the answer with a 500, secrets
(passwords, keys, tokens) are masked and long inputs cut. A body that is not UTF-8 is a 400 that says so.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    WallError,
    operator_text,
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
from xueliang.gateway.validation_messages import readable

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
    detail = operator_text(exc) if isinstance(exc, WallError) else str(exc)  # the wall's: Chinese first
    return JSONResponse({"detail": detail}, status_code=code)


SECRET_NAME = re.compile(r"password|passwd|secret|token|api[-_]?key|credential", re.IGNORECASE)
MASK = "***"
MAX_ECHO_CHARS = 200
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
NOT_JSON_BODY = (
    "the request body could not be read as JSON (not UTF-8 text?): "
    "send UTF-8 encoded JSON with Content-Type: application/json"
)


def safe_echo(value: object, secret: bool = False) -> object:
    """``value`` (a JSON-encoded request input) fit to send back: secrets masked, non-finite
    numbers as text, long strings cut to ``MAX_ECHO_CHARS``."""
    if secret and value is not None:
        return MASK
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > MAX_ECHO_CHARS:
        return value[:MAX_ECHO_CHARS] + f"... ({len(value)} characters)"
    if isinstance(value, dict):
        return {k: safe_echo(v, bool(SECRET_NAME.search(str(k)))) for k, v in value.items()}
    if isinstance(value, list):
        return [safe_echo(v) for v in value]
    return value


def _names_secret(loc: Sequence[object]) -> bool:
    return any(isinstance(part, str) and SECRET_NAME.search(part) for part in loc)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, object]] = []
    for error in jsonable_encoder(exc.errors()):
        loc = error.get("loc", [])
        error["msg"] = readable(str(error.get("msg", "")))
        if "input" in error:
            error["input"] = safe_echo(error["input"], _names_secret(loc))
        if "ctx" in error:
            error["ctx"] = safe_echo(error["ctx"])
        if error.get("type") == "model_attributes_type" and list(loc) == ["body"] and isinstance(error["input"], str):
            error["msg"] = "the body is not a JSON object: send JSON with Content-Type: application/json"
            error["input"] = None  # the raw body, secrets and all: not echoed
        errors.append(error)
    return JSONResponse({"detail": errors}, status_code=422)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
        return JSONResponse({"detail": NOT_JSON_BODY}, status_code=400)
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, gateway_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
