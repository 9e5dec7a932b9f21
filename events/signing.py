"""HMAC-SHA256 request signing between the gateway and the intake (both directions).

The signed text is ``timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + hex(sha256(body))``; the
signature is its HMAC-SHA256 under the shared secret, in lowercase hex. Headers::

    X-Xueliang-Timestamp: 1735689600          (Unix seconds)
    X-Xueliang-Key-Id:    gateway             (which secret; allows rotation)
    X-Xueliang-Signature: 3f1c...             (64 hex digits)

``verify`` checks the key id, the timestamp window (clock skew both ways) and the signature in
constant time; ``ReplayGuard`` refuses a signature seen before within the window, so a captured
request cannot be played again (and after the window its timestamp is refused).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping

from xueliang.events.errors import SignatureRejected

TIMESTAMP_HEADER = "X-Xueliang-Timestamp"
SIGNATURE_HEADER = "X-Xueliang-Signature"
KEY_ID_HEADER = "X-Xueliang-Key-Id"


def canonical(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode(), canonical(timestamp, method, path, body), hashlib.sha256).hexdigest()


def signed_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {
        TIMESTAMP_HEADER: timestamp,
        KEY_ID_HEADER: key_id,
        SIGNATURE_HEADER: sign(secret, timestamp, method, path, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value or ""


def verify(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    secrets: Mapping[str, str],
    *,
    window_s: float,
    now: float | None = None,
) -> tuple[str, str]:
    """Check one signed request; returns (key id, signature). Raises ``SignatureRejected``."""
    key_id = _header(headers, KEY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER).lower()
    if not (key_id and timestamp and signature):
        raise SignatureRejected(f"missing {KEY_ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    secret = secrets.get(key_id)
    if secret is None:
        raise SignatureRejected(f"unknown key id {key_id!r}")
    try:
        stamped = int(timestamp)
    except ValueError:
        raise SignatureRejected(f"{TIMESTAMP_HEADER} {timestamp!r} is not Unix seconds") from None
    skew = (time.time() if now is None else now) - stamped
    if abs(skew) > window_s:
        raise SignatureRejected(f"timestamp outside the {window_s:.0f} s window (skew {skew:.0f} s)")
    expected = sign(secret, timestamp, method, path, body)
    if not hmac.compare_digest(expected, signature):
        raise SignatureRejected("signature does not match (wrong secret, or the body/path was altered)")
    return key_id, signature


class ReplayGuard:
    """Signatures seen within the window; bounded at ``capacity`` (full: refuse, counted in ``refused_full``)."""

    def __init__(self, window_s: float, capacity: int) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.replays = 0
        self.refused_full = 0

    def check(self, signature: str, *, now: float | None = None) -> None:
        """Remember ``signature``; raises ``SignatureRejected`` if it was seen within the window."""
        moment = time.time() if now is None else now
        horizon = moment - 2 * self.window_s  # a timestamp may be up to window_s in the future too
        while self._seen:
            first, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[first]
        if signature in self._seen:
            self.replays += 1
            raise SignatureRejected("replayed request (this signature was already used)")
        if len(self._seen) >= self.capacity:
            self.refused_full += 1
            raise SignatureRejected("too many signed requests within the window; try again later")
        self._seen[signature] = moment
