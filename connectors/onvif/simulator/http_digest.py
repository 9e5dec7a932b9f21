"""HTTP/RTSP Digest authentication (RFC 7616 MD5, qop=auth, RFC 2069 without qop), server side.

Nonces are stateless: ``<hex expiry>.<hmac>``, so thousands of cameras need no nonce table. A nonce
past its lifetime is answered with ``stale=true`` and clients retry transparently. Basic
credentials are accepted too (some clients send them); the challenge always offers Digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from enum import Enum

NONCE_LIFETIME_S = 300
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class Verdict(Enum):
    """Outcome of checking an Authorization header."""

    OK = "ok"
    MISSING = "missing"
    DENIED = "denied"
    STALE = "stale"


def _md5(value: str) -> str:
    return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()


def parse_params(text: str) -> dict[str, str]:
    """The key=value pairs of a Digest header (quoted or bare values)."""
    return {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(text)}


class DigestAuthority:
    """Issues challenges and checks answers for one realm."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self._secret = os.urandom(16)

    def _sign(self, expiry_hex: str) -> str:
        return hmac.new(self._secret, expiry_hex.encode(), hashlib.sha256).hexdigest()[:24]

    def new_nonce(self) -> str:
        """A nonce valid for NONCE_LIFETIME_S seconds."""
        expiry = format(int(time.time()) + NONCE_LIFETIME_S, "x")
        return f"{expiry}.{self._sign(expiry)}"

    def challenge(self, stale: bool = False) -> str:
        """The WWW-Authenticate value."""
        suffix = ", stale=true" if stale else ""
        return f'Digest realm="{self.realm}", qop="auth", nonce="{self.new_nonce()}", algorithm=MD5{suffix}'

    def verify(self, method: str, authorization: str | None, username: str, password: str) -> Verdict:
        """Check ``authorization`` (the header value) for ``method`` against the credentials."""
        if not authorization:
            return Verdict.MISSING
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, given = base64.b64decode(rest.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return Verdict.DENIED
            ok = user == username and hmac.compare_digest(given.encode(), password.encode())
            return Verdict.OK if ok else Verdict.DENIED
        if scheme.lower() != "digest":
            return Verdict.DENIED
        params = parse_params(rest)
        nonce = params.get("nonce", "")
        expiry_hex, _, signature = nonce.partition(".")
        if params.get("username") != username or not hmac.compare_digest(signature, self._sign(expiry_hex)):
            return Verdict.DENIED
        ha1 = _md5(f"{username}:{params.get('realm', self.realm)}:{password}")
        ha2 = _md5(f"{method}:{params.get('uri', '')}")
        qop = params.get("qop")
        if qop:
            expected = _md5(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:{qop}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(expected, params.get("response", "")):
            return Verdict.DENIED
        try:
            expired = int(expiry_hex, 16) < time.time()
        except ValueError:
            return Verdict.DENIED
        return Verdict.STALE if expired else Verdict.OK
