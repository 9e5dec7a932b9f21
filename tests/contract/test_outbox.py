"""Outbox: idempotent add, leased claims, delivered / failed / dead / retry, expired leases, counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.stores import Stores
from xueliang.gateway.stores.base import OutboxItem, OutboxStatus

Poll = Callable[..., Awaitable[Any]]


def case(n: int) -> dict[str, Any]:
    return {"case_code": f"5119-2026-{n:04d}", "grade": "orange", "camera": f"cam-{n}"}


async def test_add_is_idempotent_by_key(stores: Stores) -> None:
    assert await stores.outbox.add("5119-2026-0001", case(1))
    assert not await stores.outbox.add("5119-2026-0001", {"something": "else"})
    item = await stores.outbox.get("5119-2026-0001")
    assert (item.key, item.payload, item.status, item.attempts) == ("5119-2026-0001", case(1), OutboxStatus.PENDING, 0)
    assert item.created_at is not None and item.delivered_at is None
    assert item.next_attempt_at <= datetime.now(UTC)
    with pytest.raises(NotFound, match="nope"):
        await stores.outbox.get("nope")


async def test_claim_leases_due_items_to_one_sender(stores: Stores) -> None:
    for n in range(3):
        await stores.outbox.add(f"k{n}", case(n))
    claimed = await stores.outbox.claim("forwarder-a", limit=2, lease_s=60)
    assert len(claimed) == 2 and all(item.status is OutboxStatus.SENDING for item in claimed)
    rest = await stores.outbox.claim("forwarder-b", limit=10, lease_s=60)
    assert len(rest) == 1 and {i.key for i in claimed + rest} == {"k0", "k1", "k2"}
    assert await stores.outbox.claim("forwarder-b", limit=10, lease_s=60) == []  # leased, not due
    assert (await stores.outbox.get("k0")).status is OutboxStatus.SENDING


async def test_concurrent_claimers_never_get_the_same_item(stores: Stores) -> None:
    keys = {f"case-{n:03d}" for n in range(30)}
    for key in sorted(keys):
        await stores.outbox.add(key, {"key": key})

    async def sender(name: str) -> list[str]:
        got: list[str] = []
        while items := await stores.outbox.claim(name, limit=4, lease_s=60):
            got += [item.key for item in items]
            await asyncio.sleep(0)
        return got

    a, b, c = await asyncio.gather(sender("a"), sender("b"), sender("c"))
    assert len(a) + len(b) + len(c) == len(keys)
    assert set(a) | set(b) | set(c) == keys


async def test_delivered_items_keep_the_response_and_are_never_claimed_again(stores: Stores) -> None:
    await stores.outbox.add("k", case(1))
    [item] = await stores.outbox.claim("a", limit=5, lease_s=60)
    await stores.outbox.mark_delivered(item.key, {"status": 201, "intake_id": "GC-778"})
    done = await stores.outbox.get("k")
    assert done.status is OutboxStatus.DELIVERED and done.attempts == 1
    assert done.response == {"status": 201, "intake_id": "GC-778"}
    assert done.delivered_at is not None
    assert await stores.outbox.claim("a", limit=5, lease_s=60) == []
    await stores.outbox.mark_failed("k", "late failure from a sender whose lease ran out", retry_at=None)
    assert (await stores.outbox.get("k")).status is OutboxStatus.DELIVERED  # delivery wins
    with pytest.raises(NotFound):
        await stores.outbox.mark_delivered("missing", {})
    with pytest.raises(NotFound):
        await stores.outbox.mark_failed("missing", "x", retry_at=None)


async def test_a_failed_item_is_due_again_at_retry_at(stores: Stores, poll: Poll) -> None:
    await stores.outbox.add("k", case(1))
    await stores.outbox.claim("a", limit=1, lease_s=60)
    await stores.outbox.mark_failed("k", "HTTP 503 from intake", retry_at=datetime.now(UTC) + timedelta(hours=1))
    item = await stores.outbox.get("k")
    assert (item.status, item.attempts, item.last_error) == (OutboxStatus.PENDING, 1, "HTTP 503 from intake")
    assert item.next_attempt_at > datetime.now(UTC) + timedelta(minutes=59)
    assert await stores.outbox.claim("a", limit=1, lease_s=60) == []  # not yet due

    await stores.outbox.claim("a", limit=1, lease_s=60)
    await stores.outbox.mark_failed("k", "timeout", retry_at=datetime.now(UTC) + timedelta(seconds=0.2))

    async def due_again() -> list[OutboxItem]:
        return await stores.outbox.claim("b", limit=1, lease_s=60)

    [again] = await poll(due_again)
    assert (again.key, again.attempts, again.last_error, again.status) == ("k", 2, "timeout", OutboxStatus.SENDING)


async def test_dead_items_wait_for_an_operator_retry(stores: Stores) -> None:
    await stores.outbox.add("k", case(1))
    await stores.outbox.add("other", case(2))
    await stores.outbox.claim("a", limit=1, lease_s=60)
    await stores.outbox.mark_failed("k", "HTTP 400: bad grade", retry_at=None)
    item = await stores.outbox.get("k")
    assert (item.status, item.attempts) == (OutboxStatus.DEAD, 1)
    assert [i.key for i in await stores.outbox.claim("a", limit=5, lease_s=60)] == ["other"]

    await stores.outbox.retry("k")
    item = await stores.outbox.get("k")
    assert (item.status, item.attempts, item.last_error) == (OutboxStatus.PENDING, 0, "HTTP 400: bad grade")
    assert [i.key for i in await stores.outbox.claim("a", limit=5, lease_s=60)] == ["k"]
    with pytest.raises(Conflict, match="sending"):
        await stores.outbox.retry("k")
    with pytest.raises(NotFound):
        await stores.outbox.retry("missing")


async def test_an_expired_lease_makes_the_item_claimable_again(stores: Stores, poll: Poll) -> None:
    await stores.outbox.add("k", case(1))
    [leased] = await stores.outbox.claim("crashed-sender", limit=1, lease_s=0.2)
    assert leased.status is OutboxStatus.SENDING

    async def reclaim() -> list[OutboxItem]:
        return await stores.outbox.claim("sender-2", limit=1, lease_s=60)

    [again] = await poll(reclaim)
    assert (again.key, again.status, again.attempts) == ("k", OutboxStatus.SENDING, 0)
    assert await stores.outbox.claim("sender-3", limit=1, lease_s=60) == []  # sender-2's lease holds
    assert (await stores.outbox.counts())[OutboxStatus.SENDING] == 1


async def test_counts_and_list_newest_first(stores: Stores) -> None:
    assert await stores.outbox.counts() == {status: 0 for status in OutboxStatus}
    for n in range(5):
        await stores.outbox.add(f"k{n}", case(n))
    claimed = await stores.outbox.claim("a", limit=3, lease_s=60)  # k0, k1, k2
    assert [i.key for i in claimed] == ["k0", "k1", "k2"]
    await stores.outbox.mark_delivered("k0", {"ok": True})
    await stores.outbox.mark_failed("k1", "gone", retry_at=None)

    counts = await stores.outbox.counts()
    assert counts == {
        OutboxStatus.PENDING: 2,
        OutboxStatus.SENDING: 1,
        OutboxStatus.DELIVERED: 1,
        OutboxStatus.DEAD: 1,
    }
    assert [i.key for i in await stores.outbox.list()] == ["k4", "k3", "k2", "k1", "k0"]
    assert [i.key for i in await stores.outbox.list(limit=2)] == ["k4", "k3"]
    assert [i.key for i in await stores.outbox.list(OutboxStatus.PENDING)] == ["k4", "k3"]
    assert [i.key for i in await stores.outbox.list(OutboxStatus.DEAD)] == ["k1"]
    assert [i.status for i in await stores.outbox.list(OutboxStatus.DELIVERED)] == [OutboxStatus.DELIVERED]
