"""WS-Security UsernameToken verification (PasswordDigest), as ONVIF cameras enforce it.

Digest = Base64(SHA1(nonce_bytes + created + password)). ``Created`` must lie within
``CREATED_WINDOW_S`` of the camera's own (possibly skewed) clock, and a nonce already seen by the
same camera inside that window is a replay. Each camera remembers its last ``NONCE_MEMORY`` nonces.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections import OrderedDict

from xueliang.connectors.onvif.simulator.durations import parse_datetime
from xueliang.connectors.onvif.simulator.soap_request import UsernameToken

CREATED_WINDOW_S = 300.0
NONCE_MEMORY = 64


class AuthFailure(Exception):
    """Why a token was refused (the reason goes into the SOAP fault text)."""


def password_digest(nonce_b64: str, created: str, password: str) -> str:
    """Compute the PasswordDigest of a UsernameToken (used by tests and the benchmark client too)."""
    nonce = base64.b64decode(nonce_b64)
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


class ReplayGuard:
    """Per-camera memory of recently used nonces (bounded: oldest forgotten first)."""

    def __init__(self) -> None:
        self._seen: dict[int, OrderedDict[str, None]] = {}

    def check_and_remember(self, camera_index: int, nonce: str) -> bool:
        """False when ``nonce`` was already used on this camera."""
        seen = self._seen.get(camera_index)
        if seen is None:
            seen = self._seen[camera_index] = OrderedDict()
        if nonce in seen:
            return False
        seen[nonce] = None
        if len(seen) > NONCE_MEMORY:
            seen.popitem(last=False)
        return True


def verify_token(
    token: UsernameToken | None,
    *,
    username: str,
    password: str,
    camera_now: dt.datetime,
    camera_index: int,
    replay_guard: ReplayGuard,
) -> None:
    """Raise AuthFailure unless ``token`` authenticates ``username``/``password`` right now."""
    if token is None:
        raise AuthFailure("no WS-Security UsernameToken in the request")
    if token.username != username:
        raise AuthFailure("unknown user name")
    if not token.digest:
        # Cameras configured for digest-only refuse PasswordText; the simulator accepts it only when right.
        if not hmac.compare_digest(token.password.encode(), password.encode()):
            raise AuthFailure("wrong password")
        return
    if not token.nonce or not token.created:
        raise AuthFailure("PasswordDigest without Nonce or Created")
    try:
        created = parse_datetime(token.created)
        expected = password_digest(token.nonce, token.created, password)
    except (ValueError, binascii.Error) as exc:
        raise AuthFailure(f"unreadable Nonce or Created: {exc}") from exc
    if abs((created - camera_now).total_seconds()) > CREATED_WINDOW_S:
        raise AuthFailure("Created lies more than 5 minutes from the camera clock; synchronise time")
    if not hmac.compare_digest(expected.encode(), token.password.encode()):
        raise AuthFailure("wrong password")
    if not replay_guard.check_and_remember(camera_index, token.nonce):
        raise AuthFailure("nonce replayed")
