"""Redis backend: clear errors when Redis is away, and every key under the configured prefix."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import free_port
from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.models import AuditEntry, CameraQuery, CameraRecord, Role, User
from xueliang.gateway.settings import Settings
from xueliang.gateway.stores import open_stores
from xueliang.gateway.stores.redis.connection import RedisConnection

MakeSettings = Callable[..., Settings]


async def test_an_unreachable_redis_is_a_clear_error_without_the_password(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    port = free_port()  # nothing listens on it
    settings = make_settings("redis", tmp_path, f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    with pytest.raises(StoreUnavailable) as caught:
        await open_stores(settings)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "storage.redis_url" in message and "start Redis" in message
    assert "s3cret-pw" not in message


async def test_a_url_that_is_not_a_redis_url_is_a_clear_error(tmp_path: Path, make_settings: MakeSettings) -> None:
    with pytest.raises(StoreUnavailable, match=r"not a Redis URL.*redis://host:port/db"):
        await open_stores(make_settings("redis", tmp_path, "http://127.0.0.1:6379/0"))


async def test_redis_going_away_mid_run_is_a_clear_error(
    tmp_path: Path, make_settings: MakeSettings, disposable_redis: Any
) -> None:
    async with await open_stores(make_settings("redis", tmp_path, disposable_redis.url)) as stores:
        await stores.cameras.upsert(CameraRecord(id="cam-1", name="n", host="127.0.0.1"))
        disposable_redis.stop()
        with pytest.raises(StoreUnavailable, match=rf"127\.0\.0\.1:{disposable_redis.port}.*reading camera cam-1"):
            await stores.cameras.get("cam-1")
        with pytest.raises(StoreUnavailable, match="publishing to bus topic cases"):
            await stores.bus.publish("cases", {"n": 1})
        with pytest.raises(StoreUnavailable, match="claiming outbox items"):
            await stores.outbox.claim("a", limit=1, lease_s=1)


async def test_every_key_is_under_the_prefix_and_prefixes_keep_gateways_apart(
    tmp_path: Path, make_settings: MakeSettings, redis_url: str
) -> None:
    async with (
        await open_stores(make_settings("redis", tmp_path, redis_url, redis_prefix="gw1:")) as one,
        await open_stores(make_settings("redis", tmp_path, redis_url, redis_prefix="gw2:")) as two,
    ):
        await one.cameras.upsert(CameraRecord(id="cam-1", name="n", host="127.0.0.1", category="road"))
        await one.users.add_user(User(username="u", password_hash="h", role=Role.ADMIN))
        await one.audit.record(AuditEntry(actor="u", action="a", outcome="ok"))
        await one.jobs.put("cam-1", {})
        job = await one.jobs.take("n", timeout_s=1)
        assert job is not None
        await one.bus.publish("t", {})
        await one.bus.read("t", "g", "c", block_s=0)
        await one.outbox.add("k", {})
        await one.outbox.claim("s", limit=1, lease_s=60)
        await one.leases.acquire("scheduler", "n", ttl_s=60)

        assert await two.cameras.count(CameraQuery()) == 0
        assert await two.users.list_users() == []
        assert await two.outbox.claim("s", limit=1, lease_s=60) == []

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = client.keys("*")
    finally:
        client.close()
    assert len(keys) > 10
    assert [key for key in keys if not key.startswith(("gw1:", "gw2:"))] == []


async def test_a_cancelled_command_is_never_lost_and_the_connection_stays_in_step(redis_url: str) -> None:
    """Failed on the old code (about a third of the cancels lost): redis-py bounds each send with
    ``asyncio.wait_for``, which on Python 3.11 returns normally when the task is cancelled just as
    the write completes; a node being stopped then ran on for ever (a CI hang in scale-out)."""
    conn = RedisConnection(redis_url, "cancel-test:")
    try:
        await conn.client.set(conn.key("n"), "0")
        lost = 0
        for attempt in range(600):
            call = asyncio.create_task(conn.client.incr(conn.key("n")))
            for _ in range(attempt % 12):  # cancel at every point of the command's way
                await asyncio.sleep(0)
            if not call.cancel():
                continue  # it had finished already
            try:
                await call
                lost += 1
            except asyncio.CancelledError:
                pass
        assert lost == 0, f"{lost} cancellations were lost"
        for expected in ("a", "b", "c"):  # no answer of a cancelled command is read as the next one's
            await conn.client.set(conn.key("echo"), expected)
            assert await conn.client.get(conn.key("echo")) == expected
    finally:
        await conn.close()
