"""The live feed: per-subscriber bounded queues, filters, and the drop-oldest policy, counted."""

from __future__ import annotations

from xueliang.gateway.live import LiveFeed


async def test_subscribers_get_what_they_asked_for_and_slow_ones_lose_the_oldest() -> None:
    live = LiveFeed(queue_size=2)
    with (
        live.subscribe(kinds=frozenset({"detections"}), cameras=frozenset({"c1"})) as picky,
        live.subscribe() as everything,
    ):
        assert live.subscribers == 2
        live.publish("detections", "c1", {"n": 1})
        live.publish("detections", "c2", {"n": 2})
        live.publish("incident", "", {"n": 3})
        live.publish("detections", "c1", {"n": 4})
        assert [picky.queue.get_nowait().data["n"] for _ in range(2)] == [1, 4]
        assert [everything.queue.get_nowait().data["n"] for _ in range(2)] == [3, 4]
        assert (picky.dropped, everything.dropped, live.dropped, live.published) == (0, 2, 2, 4)
    assert live.subscribers == 0
    assert await live.stats() == {"published": 4, "dropped": 2, "subscribers": 0}
