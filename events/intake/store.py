"""The reference intake's SQLite persistence: cases, their history, pending callbacks, counters.

One connection owned by one worker thread (like the gateway's stores); each call is one transaction.
Idempotency on the case code is the table's primary key: the first insert wins, a repeat reads the
stored receipt back.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from xueliang.events.intake.schema import CaseStatusView, HistoryItem, Receipt

T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    code TEXT PRIMARY KEY, n INTEGER NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL,
    next_step_at REAL, receipt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL,
    note TEXT NOT NULL, event_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS callbacks (
    event_id TEXT PRIMARY KEY, code TEXT NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class IntakeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-db")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._conn is not None, "IntakeStore.open() first"
            with self._conn:
                return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.isolation_level = "DEFERRED"
            self._conn = conn

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    async def count(self, name: str, by: int = 1) -> None:
        sql = "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?"
        await self._run(lambda c: c.execute(sql, (name, by, by)))

    async def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        def read(c: sqlite3.Connection) -> tuple[dict[str, int], dict[str, int]]:
            counters = {n: int(v) for n, v in c.execute("SELECT name, value FROM counters")}
            by_status = {s: int(n) for s, n in c.execute("SELECT status, COUNT(*) FROM cases GROUP BY status")}
            counters["received"] = sum(by_status.values())
            return counters, by_status

        return await self._run(read)

    async def receive(self, code: str, body: dict[str, Any], step_s: float) -> tuple[Receipt, bool]:
        """Store a case once; returns its receipt and whether it was new."""

        def write(c: sqlite3.Connection) -> tuple[Receipt, bool]:
            row = c.execute("SELECT receipt FROM cases WHERE code=?", (code,)).fetchone()
            if row is not None:
                c.execute(
                    "INSERT INTO counters(name, value) VALUES ('duplicates_refused', 1) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + 1"
                )
                receipt = Receipt.model_validate_json(row[0])
                return receipt.model_copy(update={"duplicate": True}), False
            n = int(c.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM cases").fetchone()[0])
            now = datetime.now(UTC)
            event_id = f"{code}-received"
            receipt = Receipt(code=code, intake_id=f"ZZ{n:08d}", received_at=now, status="received", event_id=event_id)
            next_at = (now + timedelta(seconds=step_s)).timestamp()
            c.execute(
                "INSERT INTO cases(code, n, body, status, step, next_step_at, receipt) VALUES (?,?,?,?,?,?,?)",
                (code, n, json.dumps(body, ensure_ascii=False), "received", 0, next_at, receipt.model_dump_json()),
            )
            _history(c, code, "received", at=now, note="受理 / received", event_id=event_id)
            return receipt, True

        return await self._run(write)

    async def advance(self, steps: list[str], step_s: float, now: datetime) -> int:
        """Move every due case one step along ``steps``; queue a callback for each move."""

        def write(c: sqlite3.Connection) -> int:
            rows = c.execute(
                "SELECT code, step FROM cases WHERE next_step_at IS NOT NULL AND next_step_at <= ?", (now.timestamp(),)
            ).fetchall()
            for code, step in rows:
                following = step + 1
                status = steps[following]
                last = following >= len(steps) - 1
                next_at = None if last else now.timestamp() + step_s
                c.execute(
                    "UPDATE cases SET status=?, step=?, next_step_at=? WHERE code=?", (status, following, next_at, code)
                )
                _history(c, code, status, at=now, note=f"{status} (reference intake)", event_id=f"{code}-{status}")
            return len(rows)

        return await self._run(write)

    async def pending_callbacks(self, limit: int = 100) -> list[tuple[str, str, str, str, str]]:
        sql = "SELECT event_id, code, status, at, note FROM callbacks WHERE sent = 0 ORDER BY rowid LIMIT ?"
        return await self._run(lambda c: [tuple(r) for r in c.execute(sql, (limit,)).fetchall()])

    async def callback_done(self, event_id: str, ok: bool) -> None:
        sql = "UPDATE callbacks SET attempts = attempts + 1, sent = ? WHERE event_id = ?"
        await self._run(lambda c: c.execute(sql, (1 if ok else 0, event_id)))

    async def status(self, code: str) -> CaseStatusView | None:
        def read(c: sqlite3.Connection) -> CaseStatusView | None:
            row = c.execute("SELECT status, receipt FROM cases WHERE code=?", (code,)).fetchone()
            if row is None:
                return None
            history = [
                HistoryItem(status=s, at=datetime.fromisoformat(at), note=note, event_id=e)
                for s, at, note, e in c.execute(
                    "SELECT status, at, note, event_id FROM history WHERE code=? ORDER BY id", (code,)
                )
            ]
            receipt = Receipt.model_validate_json(row[1])
            return CaseStatusView(code=code, intake_id=receipt.intake_id, status=row[0], history=history)

        return await self._run(read)


def _history(c: sqlite3.Connection, code: str, status: str, *, at: datetime, note: str, event_id: str) -> None:
    c.execute(
        "INSERT OR IGNORE INTO history(code, status, at, note, event_id) VALUES (?,?,?,?,?)",
        (code, status, at.isoformat(), note, event_id),
    )
    c.execute(
        "INSERT OR IGNORE INTO callbacks(event_id, code, status, at, note) VALUES (?,?,?,?,?)",
        (event_id, code, status, at.isoformat(), note),
    )
