"""The keyframe cache: every access unit since the last IDR, so a new viewer starts at once.

Bounded by frames and bytes. A GOP that outgrows the bound is given up (counted by the caller)
and caching resumes at the next IDR: new viewers then wait for that keyframe, as without a cache.

``replay()`` re-times the cached units for a new viewer: their timestamps are squeezed into the
last few ticks before the newest one, so the browser decodes the whole GOP at once and shows the
present picture instead of playing the past seconds in real time (which would add the GOP's age
to that viewer's latency until its jitter buffer caught up).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from xueliang.api.wall.models import AccessUnit


class GopCache:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._units: deque[AccessUnit] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._units)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._units.clear()
        self._bytes = 0

    def add(self, unit: AccessUnit) -> bool:
        """Keep ``unit``; False when the current GOP outgrew the bounds and was given up."""
        if unit.keyframe:
            self.clear()
        elif not self._units:
            return True  # no keyframe seen yet (or given up): nothing decodable to keep
        if len(self._units) + 1 > self.max_frames or self._bytes + len(unit.data) > self.max_bytes:
            self.clear()
            return False
        self._units.append(unit)
        self._bytes += len(unit.data)
        return True

    def replay(self) -> list[AccessUnit]:
        """The cached units re-timed to end at the newest one's timestamp, one tick apart."""
        if not self._units:
            return []
        last = self._units[-1].pts
        count = len(self._units)
        return [replace(unit, pts=last - (count - 1 - i)) for i, unit in enumerate(self._units)]
