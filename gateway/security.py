"""Secrets at work: password hashing, login tokens, API keys and camera-password encryption.

- Passwords: argon2id (``argon2-cffi``), verified off the event loop (hashing is deliberately slow).
- Login tokens: JWT HS256 signed with ``security.secret_key``, carrying the user and role.
- API keys (machine clients): ``xlk_<key_id>_<secret>``; only a SHA-256 of the whole key is kept
  (the key is 32 random bytes, so a slow hash adds nothing but latency on every request).
- Camera passwords: Fernet (AES-128-CBC + HMAC) with ``security.camera_key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from xueliang.gateway.errors import AuthError, ConfigError, ConfigProblem, SecretUnreadable
from xueliang.gateway.models import Role
from xueliang.gateway.settings import Environment, Settings, is_placeholder

log = logging.getLogger(__name__)

API_KEY_PREFIX = "xlk"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user or a machine client, with its role."""

    name: str  # username, or "apikey:<key_id>"
    role: Role


class Passwords:
    """argon2id hashing; the blocking work runs in a worker thread."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def verify_nobody(self, password: str) -> bool:
        """Spend what a real check costs, for a user name that does not exist: the answer's timing
        must not tell which user names exist."""
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._decoy, password)
        return False


class Tokens:
    """Signed, expiring login tokens."""

    ALGORITHM = "HS256"

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, principal: Principal) -> tuple[str, int]:
        now = int(time.time())
        claims = {"sub": principal.name, "role": principal.role.value, "iat": now, "exp": now + self._ttl_s}
        return jwt.encode(claims, self._secret, algorithm=self.ALGORITHM), self._ttl_s

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[self.ALGORITHM], options={"require": ["exp", "sub"]})
            return Principal(name=str(claims["sub"]), role=Role(claims["role"]))
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("login token expired: log in again") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise AuthError("login token invalid: log in again") from exc


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (full key shown once, key_id, hash to store)."""
    key_id = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return key, key_id, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_id(key: str) -> str:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise AuthError("API key malformed: expected xlk_<id>_<secret>")
    return parts[1]


def api_key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)


class CameraCipher:
    """Encrypts camera passwords at rest. Ciphertexts are never returned by the API or logged."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            problem = ConfigProblem(
                "security.camera_key", "not a Fernet key (urlsafe base64 of 32 bytes)", "run `xueliang config gen-key`"
            )
            raise ConfigError("settings", [problem]) from exc

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode() if password else ""

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(
                "a stored camera password cannot be decrypted: security.camera_key changed? "
                "restore the old key or re-enter the camera's password"
            ) from exc


@dataclass(frozen=True, slots=True)
class Secrets:
    token_secret: str
    camera_key: str


#: the development secrets' file under ``node.data_dir``
DEV_SECRETS_FILE = "dev-secrets.json"


def resolve_secrets(settings: Settings) -> Secrets:
    """The secrets to use. In development, placeholders are replaced by keys generated once and
    kept in ``<data_dir>/dev-secrets.json`` (mode 0600) so encrypted passwords survive restarts."""
    token_secret = settings.security.secret_key.get_secret_value()
    camera_key = settings.security.camera_key.get_secret_value()
    if settings.environment != Environment.DEVELOPMENT:
        return Secrets(token_secret, camera_key)
    path = settings.node.data_dir / DEV_SECRETS_FILE
    stored = _read_dev_secrets(path)
    if is_placeholder(token_secret):
        token_secret = stored.setdefault("secret_key", secrets.token_urlsafe(48))
    if is_placeholder(camera_key):
        camera_key = stored.setdefault("camera_key", Fernet.generate_key().decode())
    write_private(path, json.dumps(stored))
    return Secrets(token_secret, camera_key)


def _read_dev_secrets(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), [ConfigProblem("(file)", f"unreadable dev secrets: {exc}", "delete it")]) from exc
    return {str(k): str(v) for k, v in data.items()}


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by this user only (mode 0600); raises ``OSError``."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    tmp.replace(path)
