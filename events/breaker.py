"""A circuit breaker for the intake: stop hammering a centre that is down, probe it now and then.

::

    CLOSED --(failures consecutive transient failures)--> OPEN
    OPEN --(reset_s passed; one probe allowed)--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED      HALF_OPEN --probe fails--> OPEN

Only transient failures count (timeouts, refused connections, 5xx, 401, 408, 429, a 2xx that is not
a receipt): a 4xx that refuses one case says the centre is up. Every transition is counted in ``stats``.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class BreakerStats:
    opened: int = 0
    half_opened: int = 0
    closed: int = 0  # recoveries (half-open probe succeeded)
    refused: int = 0  # requests not made because the breaker was open
    failures: int = 0  # consecutive transient failures now


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_out = False
        self.stats = BreakerStats()

    @property
    def state(self) -> BreakerState:
        return self._state

    def wait_s(self) -> float:
        """Seconds until a probe may go (0 when requests may go now)."""
        if self._state != BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.reset_s - self._clock())

    def allow(self) -> bool:
        """May one request go now? In half-open only one probe at a time."""
        if self._state == BreakerState.CLOSED:
            return True
        if self._state == BreakerState.OPEN:
            if self._clock() < self._opened_at + self.reset_s:
                self.stats.refused += 1
                return False
            self._state = BreakerState.HALF_OPEN
            self.stats.half_opened += 1
            log.info("intake breaker half-open: one probe request")
        if self._probe_out:
            self.stats.refused += 1
            return False
        self._probe_out = True
        return True

    def success(self) -> None:
        if self._state == BreakerState.HALF_OPEN:
            self.stats.closed += 1
            log.info("intake breaker closed: the probe succeeded")
        self._state = BreakerState.CLOSED
        self._probe_out = False
        self.stats.failures = 0

    def failure(self) -> None:
        self.stats.failures += 1
        if self._state == BreakerState.HALF_OPEN or (
            self._state == BreakerState.CLOSED and self.stats.failures >= self.threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._probe_out = False
            self.stats.opened += 1
            log.warning(
                "intake breaker open after %s failure(s); next probe in %.1f s", self.stats.failures, self.reset_s
            )

    def cancel_probe(self) -> None:
        """The reserved probe was not used (nothing was due): allow another later."""
        self._probe_out = False
