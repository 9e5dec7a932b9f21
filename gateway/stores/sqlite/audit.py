"""The audit log in SQLite: append-only rows, queried newest first."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from xueliang.gateway.models import AuditEntry
from xueliang.gateway.stores._codec import from_epoch, to_epoch
from xueliang.gateway.stores.sqlite.database import Database

_INSERT = "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)"


class SqliteAuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditEntry) -> None:
        row = (to_epoch(entry.at), entry.actor, entry.action, entry.target, entry.outcome, entry.detail)
        await self._db.run(lambda conn: conn.execute(_INSERT, row))

    async def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("actor", actor), ("action", action)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(to_epoch(since))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT at, actor, action, target, outcome, detail FROM audit{where} ORDER BY at DESC, seq DESC LIMIT ?"

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, (*params, max(limit, 0))).fetchall()

        return [
            AuditEntry(at=from_epoch(at), actor=who, action=what, target=target, outcome=outcome, detail=detail)
            for at, who, what, target, outcome, detail in await self._db.run(select)
        ]
