"""Live fan-out of what operators watch: detections (for overlays), incidents and camera status.

In-process publish/subscribe with one bounded queue per subscriber. Policy when a subscriber is
slow: its OLDEST undelivered item is dropped for the newest (live views want the present), and the
drop is counted (``stats``, sampled into the node's metrics). The feed is per process: in scale-out
a node's viewers see what that node publishes (nothing relays other nodes' items from the bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_QUEUE = 256


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One thing to show. ``kind``: "detections", "incident", "camera_status", ...; ``camera_id``
    may be empty for items that concern no single camera."""

    kind: str
    camera_id: str
    data: dict[str, Any]
    seq: int = 0


@dataclass(slots=True, eq=False)  # identity semantics: subscriptions live in a set
class Subscription:
    kinds: frozenset[str] | None
    cameras: frozenset[str] | None
    queue: asyncio.Queue[LiveItem]
    dropped: int = 0

    def wants(self, item: LiveItem) -> bool:
        if self.kinds is not None and item.kind not in self.kinds:
            return False
        return self.cameras is None or not item.camera_id or item.camera_id in self.cameras


@dataclass
class LiveFeed:
    queue_size: int = DEFAULT_QUEUE
    published: int = 0
    dropped: int = 0
    _subs: set[Subscription] = field(default_factory=set)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def publish(self, kind: str, camera_id: str, data: dict[str, Any]) -> None:
        item = LiveItem(kind, camera_id, data, next(self._seq))
        self.published += 1
        for sub in self._subs:
            if not sub.wants(item):
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
                self.dropped += 1
            sub.queue.put_nowait(item)

    @contextlib.contextmanager
    def subscribe(
        self, kinds: frozenset[str] | None = None, cameras: frozenset[str] | None = None
    ) -> Iterator[Subscription]:
        sub = Subscription(kinds, cameras, asyncio.Queue(self.queue_size))
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def stats(self) -> dict[str, float]:
        return {"published": self.published, "dropped": self.dropped, "subscribers": self.subscribers}
