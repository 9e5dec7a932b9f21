"""Leases: one holder per role; renew by the holder; release only by the holder; expiry frees the role."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from xueliang.gateway.stores import Stores

Poll = Callable[..., Awaitable[Any]]


async def test_one_holder_at_a_time_renew_and_release(stores: Stores) -> None:
    assert await stores.leases.holder("scheduler") is None
    assert await stores.leases.acquire("scheduler", "node-a", ttl_s=60)
    assert await stores.leases.holder("scheduler") == "node-a"
    assert not await stores.leases.acquire("scheduler", "node-b", ttl_s=60)  # exclusive
    assert await stores.leases.acquire("scheduler", "node-a", ttl_s=60)  # renewed
    assert await stores.leases.acquire("forwarder", "node-b", ttl_s=60)  # another role is another lease

    await stores.leases.release("scheduler", "node-b")  # not the holder: nothing happens
    assert await stores.leases.holder("scheduler") == "node-a"
    await stores.leases.release("scheduler", "node-a")
    assert await stores.leases.holder("scheduler") is None
    assert await stores.leases.acquire("scheduler", "node-b", ttl_s=60)
    assert await stores.leases.holder("forwarder") == "node-b"


async def test_an_expired_lease_can_be_taken_over(stores: Stores, poll: Poll) -> None:
    assert await stores.leases.acquire("forwarder", "node-a", ttl_s=0.2)  # node-a stops renewing

    async def take_over() -> bool:
        return await stores.leases.acquire("forwarder", "node-b", ttl_s=60)

    await poll(take_over)
    assert await stores.leases.holder("forwarder") == "node-b"
    assert not await stores.leases.acquire("forwarder", "node-a", ttl_s=60)  # the old holder cannot renew
    await stores.leases.release("forwarder", "node-a")  # nor release the new holder's lease
    assert await stores.leases.holder("forwarder") == "node-b"


async def test_a_renewal_extends_the_lease(stores: Stores) -> None:
    assert await stores.leases.acquire("scheduler", "node-a", ttl_s=0.3)
    assert await stores.leases.acquire("scheduler", "node-a", ttl_s=3600)
    await asyncio.sleep(0.4)  # past the first ttl: only the renewal keeps node-b out
    assert not await stores.leases.acquire("scheduler", "node-b", ttl_s=60)
