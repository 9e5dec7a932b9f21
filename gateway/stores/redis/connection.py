"""The Redis connection the scale-out stores share: one client, key naming, error mapping.

Every key is ``storage.redis_prefix`` + a name (``xl:cam:<id>``, ``xl:bus:<topic>``...), so one
Redis can hold several gateways. The Lua scripts build some key names themselves, which is fine
on a standalone Redis (or Sentinel) but not on Redis Cluster.

Errors: ``redis.exceptions.ConnectionError`` and ``TimeoutError`` (refused, reset, DNS, auth,
loading) become ``StoreUnavailable`` naming the URL (password removed) and what to do; a
``ResponseError`` that a store does not expect is a bug and surfaces as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from xueliang.gateway.errors import StoreUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 10.0  # longer than any blocking read we issue (see MAX_BLOCK_S)
MAX_BLOCK_S = 5.0  # blocking XREAD/XREADGROUP calls are cut into slices this long


def is_missing_group(exc: redis.exceptions.ResponseError) -> bool:
    """The stream or consumer group named in the command does not exist (NOGROUP, also inside a
    script's or a pipeline's error text)."""
    return "NOGROUP" in str(exc)


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        netloc = f"{user}:***@{host}" if user else f":***@{host}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparseable redis url>"


class _KeepsCancellation(AbstractConnection):
    """Sends that never lose a cancellation.

    redis-py bounds a send with ``asyncio.wait_for``, which on Python 3.11 returns normally when the
    task is cancelled just as the write completes: the cancellation is lost, and a node stopping (or
    an ``asyncio.timeout`` around the call) waits for ever. A cancel that arrived during the send is
    raised here; the connection is dropped, as redis-py does for a cancelled read, since its answer
    is still on the way."""

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        task = asyncio.current_task()
        requested = 0 if task is None else task.cancelling()
        await super().send_packed_command(command, check_health)
        if task is not None and task.cancelling() > requested:
            await self.disconnect(nowait=True)
            raise asyncio.CancelledError


class _TcpConnection(_KeepsCancellation, Connection):
    pass


class _TlsConnection(_KeepsCancellation, SSLConnection):
    pass


class _UnixConnection(_KeepsCancellation, UnixDomainSocketConnection):
    pass


_KEEPING_CANCELLATION: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    SSLConnection: _TlsConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


class RedisConnection:
    """A ``redis.asyncio`` client (strings in, strings out) and the prefix its keys live under."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = redact(url)
        self.prefix = prefix
        try:
            self.client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=SOCKET_TIMEOUT_S,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
                health_check_interval=30,
            )
        except ValueError as exc:
            raise StoreUnavailable(
                f"storage.redis_url {self.url} is not a Redis URL ({exc}); use redis://host:port/db"
            ) from exc
        pool = self.client.connection_pool
        pool.connection_class = _KEEPING_CANCELLATION.get(pool.connection_class, pool.connection_class)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @contextlib.contextmanager
    def mapped(self, what: str) -> Iterator[None]:
        """Turn Redis connection failures inside the block into ``StoreUnavailable``."""
        try:
            yield
        except redis.exceptions.AuthenticationError as exc:
            raise StoreUnavailable(
                f"Redis at {self.url} refused the credentials while {what} ({exc}); "
                "fix the user/password in storage.redis_url (XUELIANG_STORAGE__REDIS_URL)"
            ) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailable(
                f"Redis at {self.url} cannot be reached while {what} ({type(exc).__name__}: {exc}); "
                "start Redis or correct storage.redis_url (XUELIANG_STORAGE__REDIS_URL)"
            ) from exc

    async def create_group(self, stream: str, group: str) -> None:
        """Create consumer ``group`` of ``stream`` at id 0, and the stream, unless they exist (call inside
        ``mapped``)."""
        try:
            await self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):  # BUSYGROUP: it exists already
                raise

    async def check(self) -> None:
        """PING once; ``StoreUnavailable`` if Redis does not answer."""
        with self.mapped("connecting"):
            await self.client.ping()
        log.info("connected to Redis at %s (key prefix %r)", self.url, self.prefix)

    async def close(self) -> None:
        await self.client.aclose()
