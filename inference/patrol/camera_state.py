"""Per-camera analysis state kept by the patrol workers, in a bounded LRU map.

What a camera's visits share: its quality memory (last thumbnail, reference), its rule state
(parked vehicles), its run of consecutive source failures, and a lock so that two visits of one
camera never analyse at once. The map holds at most ``capacity`` cameras; the least recently
visited is forgotten first (counted in ``evicted``): it only costs relearning a reference.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from xueliang.inference.quality import QualityState
from xueliang.inference.rules.engine import CameraRules

V = TypeVar("V")


class LruMap(Generic[V]):
    """A dict bounded to ``capacity`` entries, least recently used evicted first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"LRU capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.evicted = 0
        self._items: OrderedDict[str, V] = OrderedDict()

    def get_or_create(self, key: str, create: Callable[[], V]) -> V:
        value = self._items.get(key)
        if value is None:
            value = create()
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
                self.evicted += 1
        else:
            self._items.move_to_end(key)
        return value

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


@dataclass(slots=True)
class CameraState:
    quality: QualityState
    rules: CameraRules
    failures: int = 0  # consecutive source failures
    last_error: tuple[str, str, bool] = ("", "", False)  # kind, message, credentials refused
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
