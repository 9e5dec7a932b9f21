"""Users and API keys in SQLite, each record kept as JSON under its name."""

from __future__ import annotations

import sqlite3

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import ApiKey, User
from xueliang.gateway.stores.sqlite.database import Database


class SqliteUserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_user(self, user: User) -> None:
        await self._insert(
            "INSERT INTO users (username, record) VALUES (?, ?)",
            user.username,
            user.model_dump_json(),
            f"user {user.username} exists already; choose another name or update it",
        )

    async def get_user(self, username: str) -> User:
        record = await self._one("SELECT record FROM users WHERE username = ?", username)
        if record is None:
            raise NotFound(f"user {username} does not exist")
        return User.model_validate_json(record)

    async def list_users(self) -> list[User]:
        rows = await self._db.run(lambda conn: conn.execute("SELECT record FROM users ORDER BY username").fetchall())
        return [User.model_validate_json(row[0]) for row in rows]

    async def update_user(self, user: User) -> None:
        await self._update(
            "UPDATE users SET record = ? WHERE username = ?",
            user.username,
            user.model_dump_json(),
            f"user {user.username} does not exist; add it first",
        )

    async def add_api_key(self, key: ApiKey) -> None:
        await self._insert(
            "INSERT INTO api_keys (key_id, record) VALUES (?, ?)",
            key.key_id,
            key.model_dump_json(),
            f"API key {key.key_id} exists already; generate a new key",
        )

    async def get_api_key(self, key_id: str) -> ApiKey:
        record = await self._one("SELECT record FROM api_keys WHERE key_id = ?", key_id)
        if record is None:
            raise NotFound(f"API key {key_id} does not exist")
        return ApiKey.model_validate_json(record)

    async def update_api_key(self, key: ApiKey) -> None:
        await self._update(
            "UPDATE api_keys SET record = ? WHERE key_id = ?",
            key.key_id,
            key.model_dump_json(),
            f"API key {key.key_id} does not exist; list the keys to find its id",
        )

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._db.run(lambda conn: conn.execute("SELECT record FROM api_keys ORDER BY key_id").fetchall())
        return [ApiKey.model_validate_json(row[0]) for row in rows]

    async def _insert(self, sql: str, name: str, record: str, conflict: str) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, (name, record))
            except sqlite3.IntegrityError as exc:
                raise Conflict(conflict) from exc

        await self._db.run(insert)

    async def _update(self, sql: str, name: str, record: str, missing: str) -> None:
        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, (record, name)).rowcount

        if await self._db.run(update) == 0:
            raise NotFound(missing)

    async def _one(self, sql: str, name: str) -> str | None:
        def one(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(sql, (name,)).fetchone()
            return None if row is None else str(row[0])

        return await self._db.run(one)
