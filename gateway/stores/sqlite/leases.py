"""Singleton-role leases in SQLite (one process in embedded mode, but the same contract)."""

from __future__ import annotations

import sqlite3
import time

from xueliang.gateway.stores.sqlite.database import Database


class SqliteLeases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(self, role: str, holder: str, ttl_s: float) -> bool:
        def acquire(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute("SELECT holder, expires_at FROM leases WHERE role = ?", (role,)).fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO leases (role, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (role, holder, now + ttl_s),
            )
            return True

        return await self._db.write(acquire)

    async def release(self, role: str, holder: str) -> None:
        await self._db.run(
            lambda conn: conn.execute("DELETE FROM leases WHERE role = ? AND holder = ?", (role, holder))
        )

    async def holder(self, role: str) -> str | None:
        def holder(conn: sqlite3.Connection) -> str | None:
            sql = "SELECT holder FROM leases WHERE role = ? AND expires_at > ?"
            row = conn.execute(sql, (role, time.time())).fetchone()
            return None if row is None else str(row[0])

        return await self._db.run(holder)
