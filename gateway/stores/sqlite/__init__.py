"""The embedded stores: one SQLite file (WAL) driven from one worker thread, and an in-process job queue.

Modules, one store each: ``database`` (the file and its thread), ``schema`` (tables and
migrations), ``cameras``, ``users``, ``audit``, ``bus``, ``outbox``, ``leases``, and ``jobs``
(in-process, not durable by design).
"""

from __future__ import annotations

from pathlib import Path

from xueliang.gateway.settings import StorageSettings
from xueliang.gateway.stores.base import Stores
from xueliang.gateway.stores.sqlite.audit import SqliteAuditLog
from xueliang.gateway.stores.sqlite.bus import SqliteEventBus
from xueliang.gateway.stores.sqlite.cameras import SqliteCameraRegistry
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.jobs import LocalJobQueue
from xueliang.gateway.stores.sqlite.leases import SqliteLeases
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox
from xueliang.gateway.stores.sqlite.users import SqliteUserStore

__all__ = ["Database", "LocalJobQueue", "open_sqlite_stores"]


async def open_sqlite_stores(path: Path, storage: StorageSettings) -> Stores:
    """Open (creating and migrating) the SQLite file at ``path``; ``StoreUnavailable`` if it cannot be."""
    db = await Database.open(path)
    return Stores(
        cameras=SqliteCameraRegistry(db),
        users=SqliteUserStore(db),
        audit=SqliteAuditLog(db),
        jobs=LocalJobQueue(storage.job_queue_capacity, storage.job_visibility_s),
        bus=SqliteEventBus(db, storage.bus_maxlen),
        outbox=SqliteOutbox(db),
        leases=SqliteLeases(db),
        backend="sqlite",
        closer=db.close,
    )
