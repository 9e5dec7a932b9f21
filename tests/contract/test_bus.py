"""EventBus: durable topics, consumer groups, ack, pending, claim of stale messages, and the
``maxlen`` policy: a topic nobody consumes is trimmed oldest first; a consumed topic loses only
what every group has been delivered and acknowledged, and refuses a publish (``BusFull``) when
that much is still unconsumed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.contract.conftest import ReaderStarted
from xueliang.gateway.errors import StoreError
from xueliang.gateway.stores import Stores
from xueliang.gateway.stores.base import BusFull, BusStats, Message

Poll = Callable[..., Awaitable[Any]]


def order(message_id: str) -> tuple[int, int]:
    ms, _, seq = message_id.partition("-")
    return int(ms), int(seq)


async def test_every_group_sees_every_message_in_order(stores: Stores) -> None:
    ids = [await stores.bus.publish("anomalies", {"camera": f"cam-{n}", "n": n}) for n in range(5)]
    assert [order(i) for i in ids] == sorted(order(i) for i in ids) and len(set(ids)) == 5

    incidents = await stores.bus.read("anomalies", "incidents", "node-a", block_s=0)
    wall = await stores.bus.read("anomalies", "wall", "node-b", block_s=0)
    for got in (incidents, wall):
        assert [m.id for m in got] == ids
        assert [m.payload for m in got] == [{"camera": f"cam-{n}", "n": n} for n in range(5)]
        assert all(m.topic == "anomalies" and m.deliveries == 1 for m in got)
    assert await stores.bus.read("anomalies", "incidents", "node-a", block_s=0) == []  # each message once


async def test_consumers_of_one_group_share_the_messages(stores: Stores) -> None:
    for n in range(6):
        await stores.bus.publish("cases", {"n": n})
    first = await stores.bus.read("cases", "forwarder", "node-a", count=4, block_s=0)
    second = await stores.bus.read("cases", "forwarder", "node-b", count=4, block_s=0)
    assert [m.payload["n"] for m in first] == [0, 1, 2, 3]
    assert [m.payload["n"] for m in second] == [4, 5]


async def test_topics_are_separate(stores: Stores) -> None:
    await stores.bus.publish("a", {"x": 1})
    assert await stores.bus.read("b", "g", "c", block_s=0) == []
    assert [m.payload for m in await stores.bus.read("a", "g", "c", block_s=0)] == [{"x": 1}]


async def test_ack_and_pending(stores: Stores) -> None:
    assert await stores.bus.pending("anomalies", "never-read") == 0
    for n in range(3):
        await stores.bus.publish("anomalies", {"n": n})
    got = await stores.bus.read("anomalies", "incidents", "node-a", block_s=0)
    assert await stores.bus.pending("anomalies", "incidents") == 3
    await stores.bus.ack("anomalies", "incidents", [got[0].id, got[2].id])
    assert await stores.bus.pending("anomalies", "incidents") == 1
    await stores.bus.ack("anomalies", "incidents", [got[0].id])  # again: nothing happens
    await stores.bus.ack("anomalies", "incidents", [])
    assert await stores.bus.pending("anomalies", "incidents") == 1
    assert await stores.bus.pending("anomalies", "wall") == 0  # another group's pending is its own


async def test_ack_of_something_that_is_not_a_message_id_is_refused(stores: Stores) -> None:
    with pytest.raises(StoreError, match="not-an-id"):
        await stores.bus.ack("anomalies", "incidents", ["not-an-id"])


async def test_a_blocked_read_wakes_up_for_a_new_message(
    stores: Stores, poll: Poll, reader_started: ReaderStarted
) -> None:
    reader = asyncio.create_task(stores.bus.read("cases", "wall", "node-a", block_s=3600))
    try:
        await poll(lambda: reader_started("cases", "wall"))  # it read, found nothing, and waits
        message_id = await stores.bus.publish("cases", {"case": "5119-0001"})
        # Only a wake-up by the publish ends the hour-long wait; the bound keeps a broken one from hanging.
        got = await asyncio.wait_for(reader, 5)
    finally:
        reader.cancel()
    assert [(m.id, m.payload) for m in got] == [(message_id, {"case": "5119-0001"})]


async def test_stale_messages_are_claimed_by_another_consumer(stores: Stores, poll: Poll) -> None:
    for n in range(3):
        await stores.bus.publish("anomalies", {"n": n})
    read = await stores.bus.read("anomalies", "incidents", "node-a", block_s=0)  # node-a dies before acking
    await stores.bus.ack("anomalies", "incidents", [read[1].id])
    assert await stores.bus.claim_stale("anomalies", "incidents", "node-b", min_idle_s=3600) == []

    async def claim() -> list[Message]:
        return await stores.bus.claim_stale("anomalies", "incidents", "node-b", min_idle_s=0.1)

    claimed = await poll(claim)
    assert [(m.id, m.payload, m.deliveries) for m in claimed] == [(read[0].id, {"n": 0}, 2), (read[2].id, {"n": 2}, 2)]
    assert await stores.bus.pending("anomalies", "incidents") == 2  # still pending, now node-b's
    assert await stores.bus.claim_stale("anomalies", "incidents", "node-c", min_idle_s=3600) == []
    await stores.bus.ack("anomalies", "incidents", [m.id for m in claimed])
    assert await stores.bus.pending("anomalies", "incidents") == 0
    assert await stores.bus.claim_stale("anomalies", "unknown-group", "node-b", min_idle_s=0) == []


async def test_claim_stale_respects_count(stores: Stores, poll: Poll) -> None:
    for n in range(5):
        await stores.bus.publish("t", {"n": n})
    await stores.bus.read("t", "g", "node-a", block_s=0)

    async def claim_two() -> list[Message]:
        return await stores.bus.claim_stale("t", "g", "node-b", min_idle_s=0.05, count=2)

    assert [m.payload["n"] for m in await poll(claim_two)] == [0, 1]


MAXLEN = 100  # the contract fixture's bus_maxlen


async def drain(stores: Stores, topic: str, group: str) -> list[Message]:
    """Everything ``group`` has not been delivered yet, acknowledged."""
    got = await stores.bus.read(topic, group, "node-a", count=10_000, block_s=0)
    await stores.bus.ack(topic, group, [m.id for m in got])
    return got


async def test_a_topic_nobody_consumes_is_trimmed_to_maxlen_oldest_first_and_counted(stores: Stores) -> None:
    total = 350
    ids = [await stores.bus.publish("telemetry", {"n": n}) for n in range(total)]
    kept = await stores.bus.read("telemetry", "late-group", "node-a", count=10_000, block_s=0)

    assert [m.id for m in kept] == ids[total - MAXLEN :]  # the newest maxlen survive, in order
    assert await stores.bus.stats() == BusStats(published=total, trimmed=total - MAXLEN, refused=0)


async def test_trimming_never_removes_a_message_a_group_has_not_acknowledged(stores: Stores, poll: Poll) -> None:
    ids = [await stores.bus.publish("anomalies", {"n": n}) for n in range(MAXLEN)]
    incidents = await stores.bus.read("anomalies", "incidents", "node-a", count=60, block_s=0)
    await stores.bus.ack("anomalies", "incidents", [m.id for m in incidents if m.payload["n"] != 10])  # 10 pending
    wall = await stores.bus.read("anomalies", "wall", "node-b", count=80, block_s=0)
    await stores.bus.ack("anomalies", "wall", [m.id for m in wall])

    # Only 0..9 were delivered to and acknowledged by both groups: trimming them makes room for 10 more.
    ids += [await stores.bus.publish("anomalies", {"n": n}) for n in range(MAXLEN, MAXLEN + 10)]
    with pytest.raises(BusFull) as full:
        await stores.bus.publish("anomalies", {"n": "refused"})
    assert (full.value.topic, full.value.backlog, full.value.group) == ("anomalies", MAXLEN, "incidents")
    message = str(full.value)
    assert "bus topic anomalies is full" in message and f"{MAXLEN} messages" in message
    assert "group incidents" in message and "storage.bus_maxlen" in message and "not stored" in message
    assert isinstance(full.value, StoreError)  # the patrol sink turns it into a retry of the job
    assert await stores.bus.stats() == BusStats(published=MAXLEN + 10, trimmed=10, refused=1)

    async def claim() -> list[Message]:  # the unacknowledged message is still there, whole
        return await stores.bus.claim_stale("anomalies", "incidents", "node-c", min_idle_s=0.05)

    assert [(m.id, m.payload) for m in await poll(claim)] == [(ids[10], {"n": 10})]
    await stores.bus.ack("anomalies", "incidents", [ids[10]])
    ids.append(await stores.bus.publish("anomalies", {"n": "accepted"}))  # 10..59 consumed by both now

    rest = await drain(stores, "anomalies", "incidents")
    assert [m.id for m in rest] == ids[60:]  # nothing either group still needed was lost
    assert [m.payload["n"] for m in rest][-2:] == [MAXLEN + 9, "accepted"]
    assert [m.id for m in await drain(stores, "anomalies", "wall")] == ids[80:]
    stats = await stores.bus.stats()
    assert (stats.published, stats.refused) == (MAXLEN + 11, 1)
    kept = await stores.bus.read("anomalies", "late-group", "node-d", count=10_000, block_s=0)
    assert stats.trimmed == stats.published - len(kept) and stats.trimmed >= 60  # counted exactly


async def test_a_full_backlog_refuses_until_the_group_catches_up(stores: Stores) -> None:
    assert await stores.bus.read("cases", "forwarder", "node-a", block_s=0) == []  # the group exists, read nothing
    ids = [await stores.bus.publish("cases", {"n": n}) for n in range(MAXLEN)]
    for attempt in range(3):
        with pytest.raises(BusFull, match=f"bus topic cases is full: {MAXLEN} messages"):
            await stores.bus.publish("cases", {"n": "late", "attempt": attempt})
    assert await stores.bus.stats() == BusStats(published=MAXLEN, trimmed=0, refused=3)

    assert [m.id for m in await drain(stores, "cases", "forwarder")] == ids  # every one, none refused
    later = await stores.bus.publish("cases", {"n": "late"})
    assert [m.id for m in await drain(stores, "cases", "forwarder")] == [later]
    assert (await stores.bus.stats()).trimmed == MAXLEN  # all consumed, then trimmed to make room


async def test_a_payload_that_is_not_json_is_refused_clearly(stores: Stores) -> None:
    with pytest.raises(StoreError, match="bus topic anomalies"):
        await stores.bus.publish("anomalies", {"when": object()})
    assert await stores.bus.read("anomalies", "g", "c", block_s=0) == []
