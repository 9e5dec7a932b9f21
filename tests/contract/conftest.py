"""The contract suite runs every test against both backends: SQLite in ``tmp_path`` and a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings
from xueliang.gateway.stores import Stores, open_stores

T = TypeVar("T")

MakeStores = Callable[..., Awaitable[Stores]]
Poll = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

DEFAULT_STORAGE: dict[str, Any] = {
    "redis_prefix": "t:",
    "job_queue_capacity": 100,
    "job_visibility_s": 30.0,
    "bus_maxlen": 100,
}


def settings_for(backend: str, data_dir: Path, redis_url: str = "redis://127.0.0.1:1/0", **storage: Any) -> Settings:
    mode = "scaleout" if backend == "redis" else "embedded"
    return load_settings(
        environ={},
        environment="development",
        node={"mode": mode, "data_dir": str(data_dir)},
        storage={**DEFAULT_STORAGE, "redis_url": redis_url, **storage},
        events={"codes": {"node_tag": "T01"}},  # scale-out refuses the default case-code tag
    )


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """``settings_for(backend, data_dir, redis_url, **storage)``, for tests that open stores themselves."""
    return settings_for


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_stores(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStores]:
    """Open stores of the test's backend with storage overrides; all are closed after the test."""
    url = request.getfixturevalue("redis_url") if backend == "redis" else "redis://127.0.0.1:1/0"
    opened: list[Stores] = []

    async def make(**storage: Any) -> Stores:
        stores = await open_stores(settings_for(backend, tmp_path / "data", url, **storage))
        opened.append(stores)
        return stores

    yield make
    for stores in opened:
        await stores.close()


@pytest.fixture
async def stores(make_stores: MakeStores) -> Stores:
    return await make_stores()


ReaderStarted = Callable[[str, str], Awaitable[bool]]


@pytest.fixture
def reader_started(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> ReaderStarted:
    """``await reader_started(topic, group)``: has a bus read for ``group`` reached the backend (and,
    finding nothing, gone to wait)? Looked at from outside: SQLite records the group in the read's
    transaction; Redis lists a client blocked in XREADGROUP (7.0 adds the consumer only on delivery)."""
    if backend == "sqlite":
        path = settings_for(backend, tmp_path / "data").sqlite_file

        async def sqlite_started(topic: str, group: str) -> bool:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                sql = "SELECT count(*) FROM bus_groups WHERE topic = ? AND grp = ?"
                return bool(conn.execute(sql, (topic, group)).fetchone()[0])

        return sqlite_started
    url = str(request.getfixturevalue("redis_url"))

    async def redis_started(topic: str, group: str) -> bool:
        key = DEFAULT_STORAGE["redis_prefix"] + "bus:" + topic
        with contextlib.closing(redis.Redis.from_url(url, decode_responses=True)) as client:
            groups: Any = client.xinfo_groups(key) if client.exists(key) else []
            clients: Any = client.client_list()
        blocked = any(row["cmd"] == "xreadgroup" and "b" in row["flags"] for row in clients)
        return blocked and any(row["name"] == group for row in groups)

    return redis_started


async def _poll(check: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    """Call ``check`` until it returns something truthy; fail if it never does (not a timing assertion:
    the deadline only stops a broken implementation from hanging the suite)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout_s} s; last result {result!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
def poll() -> Callable[..., Awaitable[Any]]:
    return _poll
