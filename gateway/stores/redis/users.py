"""Users and API keys in Redis: one hash each (``users``, ``apikeys``), name -> record JSON."""

from __future__ import annotations

from typing import Any

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import ApiKey, User
from xueliang.gateway.stores.redis.connection import RedisConnection

# KEYS[1] the hash; ARGV: field, value. Replaces an existing field only; returns 1 if it did.
_REPLACE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisUserStore:
    def __init__(self, conn: RedisConnection) -> None:
        self._c = conn
        self._users = conn.key("users")
        self._keys = conn.key("apikeys")
        self._replace = conn.client.register_script(_REPLACE)

    async def add_user(self, user: User) -> None:
        if not await self._add(self._users, user.username, user.model_dump_json(), f"adding user {user.username}"):
            raise Conflict(f"user {user.username} exists already; choose another name or update it")

    async def get_user(self, username: str) -> User:
        record = await self._get(self._users, username, f"reading user {username}")
        if record is None:
            raise NotFound(f"user {username} does not exist")
        return User.model_validate_json(record)

    async def list_users(self) -> list[User]:
        return [User.model_validate_json(record) for record in await self._all(self._users, "listing users")]

    async def update_user(self, user: User) -> None:
        with self._c.mapped(f"updating user {user.username}"):
            replaced = await self._replace(keys=[self._users], args=[user.username, user.model_dump_json()])
        if not replaced:
            raise NotFound(f"user {user.username} does not exist; add it first")

    async def add_api_key(self, key: ApiKey) -> None:
        if not await self._add(self._keys, key.key_id, key.model_dump_json(), f"adding API key {key.key_id}"):
            raise Conflict(f"API key {key.key_id} exists already; generate a new key")

    async def get_api_key(self, key_id: str) -> ApiKey:
        record = await self._get(self._keys, key_id, f"reading API key {key_id}")
        if record is None:
            raise NotFound(f"API key {key_id} does not exist")
        return ApiKey.model_validate_json(record)

    async def update_api_key(self, key: ApiKey) -> None:
        with self._c.mapped(f"updating API key {key.key_id}"):
            replaced = await self._replace(keys=[self._keys], args=[key.key_id, key.model_dump_json()])
        if not replaced:
            raise NotFound(f"API key {key.key_id} does not exist; list the keys to find its id")

    async def list_api_keys(self) -> list[ApiKey]:
        return [ApiKey.model_validate_json(record) for record in await self._all(self._keys, "listing API keys")]

    async def _add(self, hash_key: str, name: str, record: str, what: str) -> bool:
        with self._c.mapped(what):
            return bool(await self._c.client.hsetnx(hash_key, name, record))

    async def _get(self, hash_key: str, name: str, what: str) -> str | None:
        with self._c.mapped(what):
            record: Any = await self._c.client.hget(hash_key, name)
        return None if record is None else str(record)

    async def _all(self, hash_key: str, what: str) -> list[str]:
        """Every record of the hash, ordered by name."""
        with self._c.mapped(what):
            records: Any = await self._c.client.hgetall(hash_key)
        return [str(records[name]) for name in sorted(records)]
