"""The embedded backend keeps its data across close and reopen, in a WAL-mode file with a schema version."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.models import AuditEntry, CameraQuery, CameraRecord, Role, User
from xueliang.gateway.settings import Settings
from xueliang.gateway.stores import open_stores
from xueliang.gateway.stores.base import OutboxItem, OutboxStatus
from xueliang.gateway.stores.sqlite.schema import MIGRATIONS

Poll = Callable[..., Awaitable[Any]]
MakeSettings = Callable[..., Settings]


async def test_data_survives_close_and_reopen(tmp_path: Path, make_settings: MakeSettings, poll: Poll) -> None:
    settings = make_settings("sqlite", tmp_path / "fresh" / "data")  # the data dir does not exist yet
    stores = await open_stores(settings)
    assert stores.backend == "sqlite"
    camera = CameraRecord(id="cam-1", name="北门", host="127.0.0.9", port=8000)
    await stores.cameras.upsert(camera)
    await stores.users.add_user(User(username="admin", password_hash="h", role=Role.ADMIN))
    await stores.audit.record(AuditEntry(actor="admin", action="users.add", outcome="ok"))
    message_id = await stores.bus.publish("cases", {"case": "5119-0001"})
    [read] = await stores.bus.read("cases", "forwarder", "node-a", block_s=0)  # read, never acknowledged
    await stores.outbox.add("5119-0001", {"case": "5119-0001"})
    await stores.outbox.add("5119-0002", {"case": "5119-0002"})
    claimed = await stores.outbox.claim("crashed-sender", limit=1, lease_s=0.2)  # the process dies mid-send
    await stores.close()
    await stores.close()  # idempotent

    assert settings.sqlite_file.exists()
    async with await open_stores(settings) as again:
        assert await again.cameras.get("cam-1") == camera
        assert await again.cameras.count(CameraQuery(search="北门")) == 1
        assert (await again.users.get_user("admin")).role is Role.ADMIN
        assert [e.action for e in await again.audit.query()] == ["users.add"]
        assert await again.bus.pending("cases", "forwarder") == 1
        assert await again.bus.read("cases", "forwarder", "node-a", block_s=0) == []  # delivered before
        later = await again.bus.read("cases", "late-group", "node-b", block_s=0)
        assert [(m.id, m.payload) for m in later] == [(message_id, read.payload)]
        newer = await again.bus.publish("cases", {"case": "5119-0003"})
        assert int(newer.partition("-")[2]) > int(message_id.partition("-")[2])  # ids keep increasing
        counts = await again.outbox.counts()
        assert (counts[OutboxStatus.SENDING], counts[OutboxStatus.PENDING]) == (1, 1)

        got: list[OutboxItem] = []

        async def claim_expired() -> bool:
            got.extend(await again.outbox.claim("sender-2", limit=10, lease_s=60))
            return {item.key for item in got} == {"5119-0001", "5119-0002"}

        await poll(claim_expired)
        assert claimed[0].key in {item.key for item in got}


async def test_the_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings("sqlite", tmp_path)
    stores = await open_stores(settings)
    await stores.close()
    with sqlite3.connect(settings.sqlite_file) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]


async def test_a_file_from_a_newer_gateway_is_refused(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings("sqlite", tmp_path)
    stores = await open_stores(settings)
    await stores.close()
    with sqlite3.connect(settings.sqlite_file) as conn:
        conn.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StoreUnavailable, match=r"schema version 999 is newer.*upgrade the gateway"):
        await open_stores(settings)


async def test_an_unusable_data_dir_is_a_clear_error(tmp_path: Path, make_settings: MakeSettings) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(StoreUnavailable, match=r"not-a-dir.*node\.data_dir"):
        await open_stores(make_settings("sqlite", blocker / "data"))


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings("sqlite", tmp_path)
    settings.sqlite_file.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreUnavailable, match=r"gateway\.sqlite3.*SQLITE_NOTADB"):
        await open_stores(settings)


async def test_closed_stores_refuse_work_clearly(tmp_path: Path, make_settings: MakeSettings) -> None:
    stores = await open_stores(make_settings("sqlite", tmp_path))
    await stores.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await stores.cameras.get("cam-1")
