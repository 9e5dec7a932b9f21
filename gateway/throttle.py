"""Failed-login throttling: after ``max_failures`` failures within ``window_s`` for one user name
(four times as many for one client address, an ``address:`` key), further attempts are refused for
a lockout that doubles on each repeat, up to ``MAX_LOCKOUT_S``. In memory, per node, bounded
(oldest keys forgotten first)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_KEYS = 100_000
MAX_LOCKOUT_S = 900.0
ADDRESS_FACTOR = 4  # one address (a monitoring room behind NAT) may fail more often than one user name


@dataclass(slots=True)
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockouts: int = 0


class LoginThrottle:
    def __init__(
        self, max_failures: int, window_s: float, lockout_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self.refused = 0

    def wait_s(self, *keys: str) -> float:
        """Seconds before any of ``keys`` may try again (0: now)."""
        now = self._clock()
        wait = max((r.locked_until - now for k in keys if (r := self._records.get(k))), default=0.0)
        if wait > 0:
            self.refused += 1
        return max(wait, 0.0)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            record = self._records.pop(key, None) or _Record()
            record.failures = [t for t in record.failures if now - t < self.window_s] + [now]
            limit = self.max_failures * (ADDRESS_FACTOR if key.startswith("address:") else 1)
            if len(record.failures) >= limit:
                record.lockouts += 1
                record.locked_until = now + min(self.lockout_s * 2 ** (record.lockouts - 1), MAX_LOCKOUT_S)
                record.failures.clear()
            self._records[key] = record
            while len(self._records) > MAX_KEYS:
                self._records.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)
