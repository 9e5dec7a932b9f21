"""JobQueue: bounded (refuse newest, counted), coalescing by key (counted), take/ack, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from xueliang.gateway.errors import StoreError
from xueliang.gateway.stores import Stores
from xueliang.gateway.stores.base import Job

MakeStores = Callable[..., Awaitable[Stores]]
Poll = Callable[..., Awaitable[Any]]


async def test_put_take_ack_round_trip(stores: Stores) -> None:
    assert await stores.jobs.put("cam-1", {"camera": "cam-1", "profile": "sub", "n": 1})
    assert await stores.jobs.put("cam-2", {"camera": "cam-2"})
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.in_flight) == (2, 0)

    job = await stores.jobs.take("node-a", timeout_s=1)
    assert job is not None
    assert (job.key, job.payload, job.deliveries) == ("cam-1", {"camera": "cam-1", "profile": "sub", "n": 1}, 1)
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.in_flight) == (1, 1)

    await stores.jobs.ack(job)
    await stores.jobs.ack(job)  # twice: nothing happens
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.in_flight) == (1, 0)
    second = await stores.jobs.take("node-a", timeout_s=1)
    assert second is not None and second.key == "cam-2" and second.id != job.id


async def test_take_on_an_empty_queue_returns_none(stores: Stores) -> None:
    assert await stores.jobs.take("node-a", timeout_s=0.05) is None
    assert await stores.jobs.take("node-a", timeout_s=0) is None


async def test_a_waiting_take_gets_a_job_put_meanwhile(stores: Stores) -> None:
    waiter = asyncio.create_task(stores.jobs.take("node-a", timeout_s=10))
    await asyncio.sleep(0.1)
    assert await stores.jobs.put("cam-9", {"camera": "cam-9"})
    job = await waiter
    assert job is not None and job.key == "cam-9"


async def test_a_key_already_waiting_is_coalesced_and_counted(stores: Stores) -> None:
    assert await stores.jobs.put("cam-1", {"round": 1})
    assert not await stores.jobs.put("cam-1", {"round": 2})
    assert not await stores.jobs.put("cam-1", {"round": 3})
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.coalesced, stats.refused) == (1, 2, 0)

    job = await stores.jobs.take("node-a", timeout_s=1)
    assert job is not None and job.payload == {"round": 1}
    assert await stores.jobs.put("cam-1", {"round": 4})  # taken is no longer waiting: queued again
    assert (await stores.jobs.stats()).coalesced == 2


async def test_a_full_queue_refuses_the_newest_and_counts_it(make_stores: MakeStores) -> None:
    stores = await make_stores(job_queue_capacity=3)
    assert stores.jobs.capacity == 3
    for n in range(3):
        assert await stores.jobs.put(f"cam-{n}", {"n": n})
    assert not await stores.jobs.put("cam-3", {"n": 3})
    job = await stores.jobs.take("node-a", timeout_s=1)
    assert job is not None
    assert not await stores.jobs.put("cam-4", {"n": 4})  # a job in flight still takes a place
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.in_flight, stats.refused, stats.coalesced) == (2, 1, 2, 0)

    await stores.jobs.ack(job)
    assert await stores.jobs.put("cam-5", {"n": 5})
    keys = []
    while (next_job := await stores.jobs.take("node-a", timeout_s=0)) is not None:
        keys.append(next_job.key)
    assert keys == ["cam-1", "cam-2", "cam-5"]  # the refused ones were never queued


async def test_an_unacknowledged_job_is_handed_out_again_after_the_visibility_timeout(
    make_stores: MakeStores, poll: Poll
) -> None:
    stores = await make_stores(job_visibility_s=0.2)
    await stores.jobs.put("cam-1", {"camera": "cam-1"})
    first = await stores.jobs.take("node-a", timeout_s=1)
    assert first is not None and first.deliveries == 1  # node-a "crashes" and never acks

    async def take_again() -> Job | None:
        return await stores.jobs.take("node-b", timeout_s=0.5)

    again = await poll(take_again)
    assert (again.id, again.key, again.payload, again.deliveries) == (first.id, "cam-1", {"camera": "cam-1"}, 2)
    await stores.jobs.ack(again)
    stats = await stores.jobs.stats()
    assert (stats.depth, stats.in_flight) == (0, 0)
    assert await stores.jobs.take("node-b", timeout_s=0.3) is None  # acknowledged: never again


async def test_an_expired_job_comes_back_before_new_ones(make_stores: MakeStores) -> None:
    stores = await make_stores(job_visibility_s=0.2)
    await stores.jobs.put("old", {})
    taken = await stores.jobs.take("node-a", timeout_s=1)
    assert taken is not None
    await stores.jobs.put("new", {})

    await asyncio.sleep(0.3)  # past the visibility timeout (sleep never returns early)
    job = await stores.jobs.take("node-b", timeout_s=1)
    assert job is not None and (job.key, job.deliveries) == ("old", 2)


async def test_two_consumers_never_get_the_same_job(stores: Stores) -> None:
    keys = [f"cam-{n:03d}" for n in range(40)]
    for key in keys:
        assert await stores.jobs.put(key, {"camera": key})

    async def consume(name: str) -> list[str]:
        got = []
        while (job := await stores.jobs.take(name, timeout_s=0.2)) is not None:
            got.append(job.key)
            await stores.jobs.ack(job)
            await asyncio.sleep(0)
        return got

    a, b = await asyncio.gather(consume("node-a"), consume("node-b"))
    assert not set(a) & set(b)
    assert sorted(a + b) == keys


async def test_a_payload_that_is_not_json_is_refused_clearly(stores: Stores) -> None:
    with pytest.raises(StoreError, match="job cam-1"):
        await stores.jobs.put("cam-1", {"frame": object()})
    assert (await stores.jobs.stats()).depth == 0
