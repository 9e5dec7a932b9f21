"""One SQLite file, driven from one dedicated worker thread so the event loop never blocks.

Every statement runs on that thread (a single-worker executor), in order; ``run`` is for reads,
``write`` wraps a function in ``BEGIN IMMEDIATE ... COMMIT`` so it is one atomic step. The file
is opened in WAL mode with ``synchronous=NORMAL`` (durable across process crashes, at most the
last transactions lost on power loss) and its schema is created or migrated on open.

Errors: SQLite's operational errors (file unwritable, disk full, locked past ``busy_timeout``,
corrupt file) become ``StoreUnavailable`` naming the file; integrity errors are left to the
stores, which turn them into ``Conflict``; anything else is a bug and surfaces as is.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.stores.sqlite.schema import migrate, refuse_foreign

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
MIN_SQLITE = (3, 35, 0)  # RETURNING and UPSERT
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})  # the file, not the disk or a lock


class DatabaseState(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Database:
    """A SQLite connection owned by one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = DatabaseState.NEW
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.name}")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating it) and migrate; ``StoreUnavailable`` if the file cannot be used."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreUnavailable(
                f"SQLite {sqlite3.sqlite_version} is too old for {path} (needs 3.35 or newer); "
                "run the gateway on a newer Python build or use node.mode: scaleout"
            )
        db = cls(path)
        try:
            await db._submit(db._connect)
        except BaseException:
            db._executor.shutdown(wait=False)
            raise
        db.state = DatabaseState.OPEN
        return db

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            refuse_foreign(conn)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning(
                    "SQLite %s: journal_mode is %s, not WAL (file system without shared memory?)", self.path, mode
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker thread (autocommit: each statement on its own)."""
        return await self._submit(lambda: fn(self._connection()))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker thread inside one immediate transaction."""

        def transaction() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(transaction)

    async def close(self) -> None:
        """Finish the queued work, close the file and stop the thread; idempotent."""
        if self.state is DatabaseState.CLOSED:
            return
        self.state = DatabaseState.CLOSED
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)  # the worker is idle now: this only joins it

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"SQLite database {self.path} is closed; the gateway is stopping")
        return self._conn

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self.state is DatabaseState.CLOSED:
            raise StoreUnavailable(f"SQLite database {self.path} is closed; the gateway is stopping")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.IntegrityError:
            raise
        except (sqlite3.OperationalError, sqlite3.InternalError) as exc:
            raise self._unavailable(exc) from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # ProgrammingError, DataError...: a bug
                raise
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        name = getattr(exc, "sqlite_errorname", type(exc).__name__)
        if name in DAMAGED:
            return StoreUnavailable(
                f"SQLite database {self.path} is damaged or is not a gateway database ({name}: {exc}); "
                "it was left as it is: restore it from a backup, or move it aside to start with an empty one"
            )
        return StoreUnavailable(
            f"SQLite database {self.path} failed ({name}: {exc}); check that node.data_dir is writable, "
            "the disk is not full and no other process holds the file"
        )
