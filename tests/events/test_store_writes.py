"""The event store's lazy incident writes lose nothing: a failed write (the database refusing writes)
keeps the updates dirty for the next flush, the background failure is logged with the incident ids,
``flush()``/``close()`` raise while writing fails, and an update put during a write is not dropped."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from xueliang.events.errors import EventStoreError
from xueliang.events.models import Incident, IncidentState
from xueliang.events.store import SqliteEventStore

from .conftest import BASE


def incident(n: int) -> Incident:
    return Incident(
        id=f"incident-{n:03d}", camera_id=f"cam-{n:03d}", rule="crowd", zone="", state=IncidentState.OPEN,
        first_seen=BASE, last_seen=BASE, count=1, peak_value=40.0,
    )  # fmt: skip


async def refuse_writes(store: SqliteEventStore, refuse: bool) -> None:
    """The failure at the unit's edge: SQLite itself refuses writes ("attempt to write a readonly database")."""
    pragma = f"PRAGMA query_only = {'ON' if refuse else 'OFF'}"
    await store._run(lambda c: c.execute(pragma))


def stored_count(path: Path, incident_id: str) -> int | None:
    """What another process would read from the file."""
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT data FROM incidents WHERE id=?", (incident_id,)).fetchone()
    return None if row is None else int(json.loads(row[0])["count"])


async def test_a_failed_background_flush_keeps_the_updates_and_names_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteEventStore(path, flush_delay_s=0.05)
    await store.open()
    await refuse_writes(store, True)
    first = incident(1)
    with caplog.at_level(logging.ERROR, logger="xueliang.events.store"):
        store.put_incident(first)
        task = store._flush_task
        assert task is not None
        await asyncio.wait([task])
    assert first.id in caplog.text and "kept for the next flush" in caplog.text and "readonly" in caplog.text
    assert stored_count(path, first.id) is None
    await refuse_writes(store, False)
    await store.flush()  # or the background retry got there first: either way it is written now
    assert stored_count(path, first.id) == 1
    assert store.write_failures == 0  # counted the failure, reset by the good write
    await store.close()
    again = SqliteEventStore(path)
    await again.open()
    assert (await again.get_incident(first.id)).count == 1  # a restart finds it (and its case code)
    await again.close()


async def test_flush_and_close_raise_while_writing_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteEventStore(path, flush_delay_s=60)
    await store.open()
    await refuse_writes(store, True)
    second = incident(2)
    store.put_incident(second)
    with pytest.raises(EventStoreError, match="readonly"):
        await store.flush()
    assert (await store.get_incident(second.id)) is second  # still pending, not dropped
    with pytest.raises(EventStoreError, match="readonly"), caplog.at_level(logging.ERROR):
        await store.close()
    assert f"1 incident update(s) unwritten: {second.id}" in caplog.text
    assert stored_count(path, second.id) is None


async def test_an_update_put_during_a_write_stays_dirty(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteEventStore(path, flush_delay_s=60)
    await store.open()
    third = incident(3)
    store.put_incident(third)
    writing = asyncio.create_task(store.flush())
    await asyncio.sleep(0)  # the flush took its snapshot (count 1) and waits for the writer thread
    third.count = 2
    store.put_incident(third)
    await writing
    assert stored_count(path, third.id) == 1
    await store.flush()
    assert stored_count(path, third.id) == 2
    await store.close()
