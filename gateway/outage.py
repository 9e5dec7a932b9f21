"""A shared store (Redis) going away and coming back, as one of its users sees it: one warning when
the outage starts, debug lines while it lasts, one line when the store answers again, and the pace
of the retries meanwhile.

Lives in gateway: its users are the gateway's own loops (leadership, the patrol's job queue, the
case side's bus consumer); events/ may not import gateway, so the forwarder keeps its own three lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 10.0


class OutageLog:
    """The outage state of one user of a store.

    ``failed(reason)`` after each failed call (a warning for the first of an outage, debug after),
    ``answered()`` after each call that went through (an info line if an outage ends),
    ``retry_in_s()`` how long to wait before the next call: as long as the outage has lasted so far,
    from ``first_s`` up to ``cap_s`` (about a doubling per retry, whatever the number of callers)."""

    def __init__(
        self,
        logger: logging.Logger,
        subject: str,
        *,
        store: str,
        meanwhile: str,
        extra: Mapping[str, object] | None = None,
        first_s: float = FIRST_RETRY_S,
        cap_s: float = MAX_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self.subject, self.store, self.meanwhile = logger, subject, store, meanwhile
        self._extra = dict(extra or {})
        self.first_s, self.cap_s = first_s, cap_s
        self._clock = clock
        self.since: float | None = None  # clock time of the outage's first failure; None: no outage
        self.failures = 0  # failed calls in the current outage
        self.outages = 0  # outages seen (ended or not)

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(self, reason: str) -> None:
        if self.since is None:
            self.since = self._clock()
            self.failures = 1
            self.outages += 1
            self._log.warning("%s: %s; %s", self.subject, reason, self.meanwhile, extra=self._extra)
            return
        self.failures += 1
        self._log.debug("%s: still failing: %s", self.subject, reason, extra=self._extra)

    def answered(self) -> None:
        if self.since is None:
            return
        lasted = self._clock() - self.since
        self._log.info(
            "%s: %s answers again (%d failed call(s) in %.1f s)",
            self.subject,
            self.store,
            self.failures,
            lasted,
            extra=self._extra,
        )
        self.since, self.failures = None, 0

    def retry_in_s(self) -> float:
        """Seconds to wait before calling the store again (``first_s`` when there is no outage)."""
        lasted = 0.0 if self.since is None else self._clock() - self.since
        return min(self.cap_s, max(self.first_s, lasted))
