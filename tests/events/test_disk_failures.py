"""The embedded node's files when the disk misbehaves: an unusable data directory, a damaged or foreign
SQLite file, a second process on the same files, a full disk. Each is refused or reported with the file
named and what to do, and nothing on disk is changed or lost on the way."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xueliang.events.errors import EventStoreError, EvidenceError
from xueliang.events.evidence import EvidenceStore
from xueliang.events.models import CaseStatus
from xueliang.events.service import CaseService
from xueliang.events.settings import EvidenceSettings
from xueliang.events.store import SqliteEventStore
from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import EVIDENCE, anomaly, camera, make_settings

AT = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


async def filled_gateway_file(path: Path) -> bytes:
    """A gateway database of ~200 pages (audit rows), closed; returns its bytes."""
    db = await Database.open(path)
    row = "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (1, 'a', 'b', 'c', 'd', ?)"
    await db.write(lambda c: c.executemany(row, [("x" * 3000,)] * 200))
    await db.close()
    return path.read_bytes()


async def filled_event_file(path: Path) -> bytes:
    store = SqliteEventStore(path)
    await store.open()
    for n in range(300):
        await store.next_sequence(f"scope-{n:04d}-" + "x" * 400)
    await store.close()
    return path.read_bytes()


async def test_an_event_store_whose_directory_is_a_file_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(EventStoreError, match=r"directory .*data of the event store.*writable directory"):
        await SqliteEventStore(blocker / "events.sqlite3").open()


async def test_a_truncated_gateway_database_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    whole = await filled_gateway_file(tmp_path / "full.sqlite3")
    for cut in (50, len(whole) // 2):
        path = tmp_path / f"cut-{cut}.sqlite3"
        path.write_bytes(whole[:cut])
        with pytest.raises(StoreUnavailable, match=rf"cut-{cut}\.sqlite3 is damaged.*restore it from a backup"):
            await Database.open(path)
        assert path.read_bytes() == whole[:cut]  # never reinitialised


@pytest.mark.parametrize("damage", ["random", "truncated"])
async def test_a_damaged_event_store_is_refused_and_left_as_it_is(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "events.sqlite3"
    whole = await filled_event_file(path)
    broken = os.urandom(8192) if damage == "random" else whole[: len(whole) // 2]
    path.write_bytes(broken)
    with pytest.raises(EventStoreError, match=r"events\.sqlite3 is damaged.*left as it is.*restore it from a backup"):
        await SqliteEventStore(path).open()
    assert path.read_bytes() == broken


async def test_an_event_store_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    await filled_event_file(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(EventStoreError, match=r"schema version 7, newer than this gateway knows \(1\).*upgrade"):
        await SqliteEventStore(path).open()


async def test_an_event_store_from_before_the_version_number_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    await filled_event_file(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 0")  # as every file written before the number was kept
    store = SqliteEventStore(path)
    await store.open()
    assert await store.next_sequence("scope-0000-" + "x" * 400) == 2  # its data is there
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


async def test_each_store_refuses_the_others_file_untouched(tmp_path: Path) -> None:
    """storage.sqlite_path and events.store.sqlite_path swapped, or pointed at another program's file."""
    events = tmp_path / "events.sqlite3"
    gateway = tmp_path / "gateway.sqlite3"
    events_bytes = await filled_event_file(events)
    gateway_bytes = await filled_gateway_file(gateway)
    with pytest.raises(
        StoreUnavailable, match=r"events\.sqlite3 is not a gateway database.*cases.*storage\.sqlite_path"
    ):
        await Database.open(events)
    with pytest.raises(
        EventStoreError, match=r"gateway\.sqlite3 holds tables of something else \(api_keys, audit.*not an event"
    ):
        await SqliteEventStore(gateway).open()
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE cases (x)")
    other_bytes = other.read_bytes()
    with pytest.raises(EventStoreError, match=r"table cases without the columns .*code.*not an event store"):
        await SqliteEventStore(other).open()
    assert (events.read_bytes(), gateway.read_bytes(), other.read_bytes()) == (events_bytes, gateway_bytes, other_bytes)


SECOND_NODE = """
import asyncio, sys
from pathlib import Path
from xueliang.events.errors import EventStoreError
from xueliang.events.store import SqliteEventStore

async def main() -> None:
    store = SqliteEventStore(Path(sys.argv[1]))
    try:
        await store.open()
    except EventStoreError as exc:
        print("REFUSED", exc)
        return
    print("OPENED", await store.next_sequence("second-node"))
    await store.close()

asyncio.run(main())
"""


def second_node(path: Path) -> str:
    """Another process opening the same event store, as a second node given the same data_dir would."""
    done = subprocess.run(
        [sys.executable, "-c", SECOND_NODE, str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


async def test_a_second_process_on_the_same_event_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteEventStore(path)
    await store.open()
    try:
        answer = second_node(path)
        assert answer.startswith("REFUSED"), answer
        assert f"pid {os.getpid()}" in answer and "must not share node.data_dir" in answer
        assert await store.next_sequence("first-node") == 1  # the first goes on
    finally:
        await store.close()
    assert second_node(path) == "OPENED 1"  # once the first has closed, the file is free


# -- a full disk ------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (the tests run as root in CI); skipped where mounting is not allowed."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=False, capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 1024)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_evidence_on_a_full_disk_is_an_error_that_leaves_no_partial_file(small_disk: Path) -> None:
    store = EvidenceStore(EvidenceSettings(dir=small_disk / "evidence"))
    try:
        await store.save("case-0", AT, EVIDENCE)  # creates the day's directory
        filler = fill(small_disk)
        for code in ("case-1", "case-2"):
            with pytest.raises(EvidenceError, match=rf"case {code}: cannot write evidence .*No space left.*free space"):
                await store.save(code, AT, EVIDENCE)
        assert sorted(p.name for p in (small_disk / "evidence").rglob("*.*")) == ["case-0.jpg"]  # no .tmp left
        filler.unlink()
        ref = await store.save("case-3", AT, EVIDENCE)  # the writer goes on once there is room
        assert (small_disk / "evidence" / ref.path).stat().st_size == ref.bytes
    finally:
        store.close()


async def test_evidence_interrupted_mid_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same at the writer's edge, where no tmpfs can be mounted: the data is written, fsync says ENOSPC."""
    store = EvidenceStore(EvidenceSettings(dir=tmp_path / "evidence"))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("xueliang.events.evidence.os.fsync", full)
    try:
        with pytest.raises(EvidenceError, match=r"case case-1: cannot write evidence .*No space left"):
            await store.save("case-1", AT, EVIDENCE)
    finally:
        store.close()
    assert [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()] == []


async def test_stores_on_a_full_disk_fail_clearly_and_recover(small_disk: Path) -> None:
    db = await Database.open(small_disk / "gateway.sqlite3")
    events = SqliteEventStore(small_disk / "events.sqlite3")
    await events.open()
    row = "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (1, 'a', 'b', 'c', 'd', ?)"
    try:
        filler = fill(small_disk)
        with pytest.raises(StoreUnavailable, match=r"gateway\.sqlite3 failed \(SQLITE_FULL.*the disk is not full"):
            for _ in range(100):
                await db.write(lambda c: c.execute(row, ("x" * 3000,)))
        with pytest.raises(EventStoreError, match=r"events\.sqlite3.*full"):
            for n in range(100):
                await events.next_sequence(f"scope-{n}-" + "x" * 3000)
        filler.unlink()
        await db.write(lambda c: c.execute(row, ("after",)))
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM audit WHERE detail = 'after'").fetchone()) == (1,)
        assert await events.next_sequence("after") == 1
    finally:
        await events.close()
        await db.close()


def fsync_full_under(directory: Path) -> Callable[[int], None]:
    """``os.fsync`` as on a full disk for the files under ``directory`` only (ENOSPC); the others are synced."""
    full = directory.resolve()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(full):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    return fsync


async def test_a_case_whose_evidence_cannot_be_written_says_so_in_its_history_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_outbox: SqliteOutbox
) -> None:
    """The disk under events.evidence.dir is full (ENOSPC at the writer's edge, only for evidence files):
    the case is still made and queued, without evidence; its history tells the operator why and what to
    do, and the service counts it among its exported figures."""
    settings = make_settings(tmp_path)
    service = CaseService(settings, gateway_outbox)
    await service.start()
    try:
        [kept] = await service.handle(anomaly(1, "loitering", 0, 400, evidence=EVIDENCE), camera(1))
        assert kept.evidence is not None and service.stats()["evidence_failures"] == 0
        monkeypatch.setattr("xueliang.events.evidence.os.fsync", fsync_full_under(settings.evidence.dir))
        [case] = await service.handle(anomaly(2, "loitering", 0, 400, evidence=EVIDENCE), camera(2))
        assert case.evidence is None
        stored = await service.store.get_case(case.code)
        notes = [entry.note for entry in stored.history]
        assert stored.status == CaseStatus.QUEUED and stored.evidence is None
        assert notes[0] == "created (auto)" and notes[-1] == "in the outbox", notes
        [note] = [n for n in notes if "evidence not saved" in n]
        assert note.startswith("证据未保存：证据文件写入失败，请释放磁盘空间或修正 events.evidence.dir 的权限 / ")
        assert f"evidence not saved: case {case.code}: cannot write evidence" in note
        assert "No space left on device; free space or fix the rights under events.evidence.dir" in note
        assert service.stats()["evidence_failures"] == 1
        assert (await gateway_outbox.get(case.code)).payload["case"]["evidence"] is None  # forwarded all the same
    finally:
        service.stop()
        await service.close()
