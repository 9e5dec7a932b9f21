"""The durable outbox in SQLite.

``due_at`` is when a row may be claimed: its next attempt while ``pending``, the end of its lease
while ``sending`` (so a crashed sender's items come back by themselves), NULL once delivered or
dead. ``claim`` selects and leases in one statement on the database's single writer, so two
senders never lease the same item. A failure reported for an item that is already delivered
(a slow sender whose lease had expired) changes nothing: delivery wins.
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.stores._codec import decode_json, encode_json, from_epoch, from_epoch_or_none, to_epoch
from xueliang.gateway.stores.base import JSON, OutboxItem, OutboxStatus
from xueliang.gateway.stores.sqlite.database import Database

_COLUMNS = "key, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at, response"
_CLAIM = f"""
UPDATE outbox SET status = 'sending', sender = ?, due_at = ?
WHERE key IN (SELECT key FROM outbox WHERE due_at <= ? ORDER BY due_at LIMIT ?)
RETURNING {_COLUMNS}
"""


def _item(row: tuple[Any, ...]) -> OutboxItem:
    key, payload, status, attempts, next_at, error, created, delivered, response = row
    return OutboxItem(
        key=key,
        payload=decode_json(payload),
        status=OutboxStatus(status),
        attempts=attempts,
        next_attempt_at=from_epoch(next_at),
        last_error=error,
        created_at=from_epoch(created),
        delivered_at=from_epoch_or_none(delivered),
        response=decode_json(response),
    )


def _status_of(conn: sqlite3.Connection, key: str) -> OutboxStatus:
    row = conn.execute("SELECT status FROM outbox WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise NotFound(f"outbox item {key} does not exist")
    return OutboxStatus(row[0])


class SqliteOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, key: str, payload: JSON) -> bool:
        text = encode_json(payload, f"outbox item {key}")

        def add(conn: sqlite3.Connection) -> bool:
            now = time.time()
            sql = (
                "INSERT INTO outbox (key, payload, status, next_attempt_at, due_at, created_at) "
                "VALUES (?, ?, 'pending', ?, ?, ?) ON CONFLICT (key) DO NOTHING"
            )
            return conn.execute(sql, (key, text, now, now, now)).rowcount == 1

        return await self._db.run(add)

    async def claim(self, sender: str, *, limit: int, lease_s: float) -> builtins.list[OutboxItem]:
        def claim(conn: sqlite3.Connection) -> builtins.list[tuple[Any, ...]]:
            now = time.time()
            return conn.execute(_CLAIM, (sender, now + lease_s, now, limit)).fetchall()

        items = [_item(row) for row in await self._db.write(claim)]
        return sorted(items, key=lambda item: (item.next_attempt_at, item.key))

    async def mark_delivered(self, key: str, response: Mapping[str, Any]) -> None:
        text = encode_json(response, f"outbox item {key} response")

        def delivered(conn: sqlite3.Connection) -> int:
            sql = (
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, due_at = NULL, sender = '', "
                "delivered_at = ?, response = ? WHERE key = ?"
            )
            return conn.execute(sql, (time.time(), text, key)).rowcount

        if await self._db.write(delivered) == 0:
            raise NotFound(f"outbox item {key} does not exist")

    async def mark_failed(self, key: str, error: str, *, retry_at: datetime | None) -> None:
        def failed(conn: sqlite3.Connection) -> None:
            if _status_of(conn, key) is OutboxStatus.DELIVERED:
                return
            if retry_at is None:
                status, next_at = OutboxStatus.DEAD, None
            else:
                status, next_at = OutboxStatus.PENDING, to_epoch(retry_at)
            sql = (
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, sender = '', "
                "next_attempt_at = coalesce(?, next_attempt_at), due_at = ? WHERE key = ?"
            )
            conn.execute(sql, (str(status), error, next_at, next_at, key))

        await self._db.write(failed)

    async def retry(self, key: str) -> None:
        def retry(conn: sqlite3.Connection) -> None:
            status = _status_of(conn, key)
            if status is not OutboxStatus.DEAD:
                raise Conflict(f"outbox item {key} is {status}, not dead; only dead items can be retried")
            now = time.time()
            sql = "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, due_at = ? WHERE key = ?"
            conn.execute(sql, (now, now, key))

        await self._db.write(retry)

    async def get(self, key: str) -> OutboxItem:
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE key = ?"
        row = await self._db.run(lambda conn: conn.execute(sql, (key,)).fetchone())
        if row is None:
            raise NotFound(f"outbox item {key} does not exist")
        return _item(row)

    async def list(self, status: OutboxStatus | None = None, limit: int = 100) -> builtins.list[OutboxItem]:
        where, params = ("", ()) if status is None else (" WHERE status = ?", (str(status),))
        sql = f"SELECT {_COLUMNS} FROM outbox{where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, (*params, limit)).fetchall())
        return [_item(row) for row in rows]

    async def counts(self) -> dict[OutboxStatus, int]:
        sql = "SELECT status, count(*) FROM outbox GROUP BY status"
        found = dict(await self._db.run(lambda conn: conn.execute(sql).fetchall()))
        return {status: int(found.get(str(status), 0)) for status in OutboxStatus}
