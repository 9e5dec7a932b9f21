"""The event store's file: opening it (owner lock, schema check, tables) and refusing what is not ours.

``open_store_file(path)`` runs on the store's worker thread (the connection belongs to it) and returns
the connection and the ``OwnerLock`` held on ``<file>.lock``; every refusal is an ``EventStoreError``
naming the file and what to do, and leaves the file as it was:

- the directory cannot be created, or the lock file cannot be (rights, a read-only disk);
- another process holds the lock (a second node given the same ``node.data_dir``): its pid and host;
- the file is damaged or not SQLite; it holds tables of something else; it was written by a newer
  gateway (``PRAGMA user_version`` above ``SCHEMA_VERSION``). A file from before the number (0,
  same tables) is adopted.

``OwnerLock`` itself is neutral (it raises nothing of its own): the gateway's node takes one on
``<data_dir>/node.lock`` with it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import sqlite3
from pathlib import Path

from xueliang.events.errors import EventStoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, state TEXT NOT NULL, last_seen TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents(state);
CREATE TABLE IF NOT EXISTS cases (
    code TEXT PRIMARY KEY, incident_id TEXT NOT NULL, status TEXT NOT NULL, due_at TEXT NOT NULL,
    overdue_at TEXT, created_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cases_status ON cases(status);
CREATE TABLE IF NOT EXISTS case_history (
    n INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL,
    note TEXT NOT NULL, source TEXT NOT NULL, event_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_history_code ON case_history(code);
CREATE UNIQUE INDEX IF NOT EXISTS case_history_event ON case_history(code, event_id) WHERE event_id != '';
CREATE TABLE IF NOT EXISTS sequences (scope TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (
    code TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL);
"""
SCHEMA_VERSION = 1  # PRAGMA user_version of the file; 0: a file from before the number (same tables)
_COLUMNS = {
    "incidents": {"id", "camera_id", "state", "last_seen", "data"},
    "cases": {"code", "incident_id", "status", "due_at", "overdue_at", "created_at", "data"},
    "case_history": {"n", "code", "status", "at", "note", "source", "event_id"},
    "sequences": {"scope", "value"},
    "evidence": {"code", "path", "sha256", "bytes", "created_at"},
}


@dataclasses.dataclass(frozen=True, slots=True)
class Held:
    """The lock is held by another open file: ``owner`` as its holder wrote itself ("pid N on host")."""

    lock_path: Path
    owner: str


class OwnerLock:
    """An exclusive ``flock`` on a lock file, with the holder's pid and host written in it for the
    message of whoever is refused. ``flock`` belongs to the open file, so a second ``take`` is refused
    in the same process too; the kernel drops the lock when its holder dies (no stale lock)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, lock_path: Path) -> OwnerLock | Held:
        """The lock, or ``Held`` naming its owner; ``OSError`` if the lock file cannot be opened or written."""
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                return Held(lock_path, owner)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode(), 0)
        except OSError:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # drops the flock; the file stays (removing it would race a new owner)


def take_store_lock(path: Path) -> OwnerLock:
    """The owner lock of the event store ``path`` (on ``<file>.lock``); ``EventStoreError`` if it is
    held by another process or cannot be taken."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock = OwnerLock.take(lock_path)
    except OSError as exc:
        raise EventStoreError(
            f"cannot open event store {path}: its lock file {lock_path} cannot be created ({exc.strerror}); "
            "set node.data_dir (or events.store.sqlite_path) to a writable directory"
        ) from exc
    if isinstance(lock, Held):
        raise EventStoreError(
            f"event store {path} is in use by another process ({lock.owner}): two gateway nodes must not share "
            "node.data_dir; stop the other one, or give this node its own data_dir"
        )
    return lock


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse, before anything writes to it, a file written by a newer gateway or whose tables are not ours."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise EventStoreError(
            f"event store {path} has schema version {version}, newer than this gateway knows ({SCHEMA_VERSION}); "
            "it was left as it is: upgrade the gateway or point events.store.sqlite_path at another file"
        )
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    others = sorted(str(r[0]) for r in rows if str(r[0]) not in _COLUMNS and not str(r[0]).startswith("sqlite_"))
    if others:
        raise EventStoreError(
            f"event store {path} holds tables of something else ({', '.join(others[:8])}): it is not an event "
            "store; it was left as it is: point events.store.sqlite_path at another file"
        )
    for table, wanted in _COLUMNS.items():
        have = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        if have and not wanted <= have:
            raise EventStoreError(
                f"event store {path} has a table {table} without the columns {', '.join(sorted(wanted - have))}: "
                "it is not an event store; it was left as it is: point events.store.sqlite_path at another file"
            )


def _connect(path: Path) -> sqlite3.Connection:
    """Connect, check, create the tables and stamp the version; the connection is closed on any error."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        check_schema(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.isolation_level = "DEFERRED"
    except BaseException:
        conn.close()
        raise
    return conn


def open_store_file(path: Path) -> tuple[sqlite3.Connection, OwnerLock]:
    """Open (creating it) the event store file ``path`` under its owner lock; call it on the thread that
    will use the connection. ``EventStoreError`` names the file and what to do when it is refused."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EventStoreError(
            f"cannot create the directory {path.parent} of the event store ({exc.strerror}); "
            "set node.data_dir (or events.store.sqlite_path) to a writable directory"
        ) from exc
    lock = take_store_lock(path)
    try:
        return _connect(path), lock
    except sqlite3.DatabaseError as exc:
        lock.release()
        name = getattr(exc, "sqlite_errorname", "")
        if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            raise EventStoreError(
                f"event store {path} is damaged or is not an event store ({name}: {exc}); it was left "
                "as it is: restore it from a backup, or move it aside to start with an empty one"
            ) from exc
        raise EventStoreError(f"cannot open event store {path}: {exc}; check the path and rights") from exc
    except BaseException:
        lock.release()
        raise
