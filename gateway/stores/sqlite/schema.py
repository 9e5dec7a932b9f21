"""The embedded database's tables, created or migrated on open.

``schema_version`` holds one row: the number of migrations applied. Each migration runs in its
own transaction, so a crash mid-way leaves the file at the previous version. Append new
migrations to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

from xueliang.gateway.errors import StoreUnavailable

_V1 = """
CREATE TABLE cameras (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    region_code TEXT NOT NULL,
    township    TEXT NOT NULL,
    grid_code   TEXT NOT NULL,
    category    TEXT NOT NULL,
    name        TEXT NOT NULL,
    search_text TEXT NOT NULL,      -- name, host, address, case-folded (CameraQuery.search)
    record      TEXT NOT NULL,      -- CameraRecord.model_dump_json()
    UNIQUE (host, port)
);
CREATE INDEX cameras_status ON cameras (status, id);
CREATE INDEX cameras_region ON cameras (region_code, id);
CREATE INDEX cameras_township ON cameras (township, id);
CREATE INDEX cameras_grid ON cameras (grid_code, id);
CREATE INDEX cameras_category ON cameras (category, id);
CREATE INDEX cameras_name ON cameras (name);

CREATE TABLE users (username TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, record TEXT NOT NULL);

CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at, seq);
CREATE INDEX audit_actor ON audit (actor, at, seq);
CREATE INDEX audit_action ON audit (action, at, seq);

-- The bus: ids are "ms-seq" with seq this table's autoincrement id (increasing in every topic).
CREATE TABLE bus_messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    ms      INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX bus_messages_topic ON bus_messages (topic, id);
CREATE TABLE bus_topics (
    topic   TEXT PRIMARY KEY,
    length  INTEGER NOT NULL,           -- messages kept (trimmed to maxlen)
    last_ms INTEGER NOT NULL            -- ms part of the newest id: ids never go back with the clock
) WITHOUT ROWID;
CREATE TABLE bus_groups (
    topic   TEXT NOT NULL,
    grp     TEXT NOT NULL,
    last_id INTEGER NOT NULL DEFAULT 0,     -- last message id delivered to the group
    PRIMARY KEY (topic, grp)
) WITHOUT ROWID;
CREATE TABLE bus_pending (
    topic        TEXT NOT NULL,
    grp          TEXT NOT NULL,
    msg_id       INTEGER NOT NULL,
    consumer     TEXT NOT NULL,
    deliveries   INTEGER NOT NULL,
    delivered_at REAL NOT NULL,
    PRIMARY KEY (topic, grp, msg_id)
) WITHOUT ROWID;

CREATE TABLE outbox (
    key             TEXT PRIMARY KEY,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    due_at          REAL,               -- claimable from: next attempt (pending), lease end (sending)
    sender          TEXT NOT NULL DEFAULT '',
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL,
    delivered_at    REAL,
    response        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_status ON outbox (status, created_at);

CREATE TABLE leases (role TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL);
"""

MIGRATIONS: tuple[str, ...] = (_V1,)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file to the newest schema; refuses a file written by a newer gateway."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else int(row[0])
    if version > len(MIGRATIONS):
        raise StoreUnavailable(
            f"database schema version {version} is newer than this gateway knows ({len(MIGRATIONS)}); "
            "upgrade the gateway or point storage.sqlite_path at another file"
        )
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number + 1,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def refuse_foreign(conn: sqlite3.Connection) -> None:
    """Refuse, before anything writes to it, a file of something else: tables but no ``schema_version``
    (another program's database, or the case store's file named as the gateway's)."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    tables = [str(row[0]) for row in rows if not str(row[0]).startswith("sqlite_")]
    if tables and "schema_version" not in tables:
        raise StoreUnavailable(
            f"{_database_file(conn)} is not a gateway database (it holds tables {', '.join(tables[:8])} and no "
            "schema_version); it was left as it is: point storage.sqlite_path at another file"
        )


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit behind our back)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def _database_file(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row is not None and row[2] else "the database"
