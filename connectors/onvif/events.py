"""Camera-side events over a PullPoint subscription (ONVIF Event service, WS-BaseNotification).

Use it as an async context manager and iterator::

    async with client.events() as events:
        async for event in events:
            ...

One ``PullMessages`` is in flight at a time (the camera's answer is buffered, at most
``pull_message_limit`` events, and drained before the next pull), the subscription is renewed
before it expires (at 80 % of the lifetime the camera granted), and leaving the ``async with``
unsubscribes. A failed call raises its ``OnvifError`` from the iterator and leaves the manager
``FAILED``: open a new subscription to go on.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from xueliang.connectors.onvif.errors import DeviceFault, MalformedResponse, OnvifError, Unsupported
from xueliang.connectors.onvif.models import CameraEvent
from xueliang.connectors.onvif.parsers import Element, parse_pull_messages, parse_subscription, parse_termination
from xueliang.connectors.onvif.settings import OnvifSettings
from xueliang.connectors.onvif.soap import SoapChannel
from xueliang.connectors.onvif.urls import AddressFixer

logger = logging.getLogger(__name__)

RENEW_AT_FRACTION = 0.8
MIN_LIFETIME_S = 10.0  # shorter grants are taken as a clock quirk, not as the real lifetime
UNSUBSCRIBE_TIMEOUT_S = 5.0


class PullPointState(enum.Enum):
    IDLE = "idle"
    SUBSCRIBING = "subscribing"
    ACTIVE = "active"  # subscribed, no request in flight
    PULLING = "pulling"  # the one PullMessages in flight
    RENEWING = "renewing"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: dict[PullPointState, frozenset[PullPointState]] = {
    PullPointState.IDLE: frozenset({PullPointState.SUBSCRIBING, PullPointState.CLOSING}),
    PullPointState.SUBSCRIBING: frozenset({PullPointState.ACTIVE, PullPointState.FAILED, PullPointState.CLOSING}),
    PullPointState.ACTIVE: frozenset({PullPointState.PULLING, PullPointState.RENEWING, PullPointState.CLOSING}),
    PullPointState.PULLING: frozenset({PullPointState.ACTIVE, PullPointState.FAILED, PullPointState.CLOSING}),
    PullPointState.RENEWING: frozenset({PullPointState.ACTIVE, PullPointState.FAILED, PullPointState.CLOSING}),
    PullPointState.FAILED: frozenset({PullPointState.CLOSING}),
    PullPointState.CLOSING: frozenset({PullPointState.CLOSED}),
    PullPointState.CLOSED: frozenset(),
}


@dataclass(slots=True)
class PullPointStats:
    pulls: int = 0
    events: int = 0
    skipped: int = 0  # notifications that could not be read
    dropped: int = 0  # beyond pull_message_limit in one answer (a camera ignoring MessageLimit): oldest dropped
    renewals: int = 0
    resubscribes: int = 0


class PullPointSubscription:
    """A PullPoint subscription on one camera, iterated as :class:`CameraEvent`s."""

    def __init__(
        self,
        camera: str,
        endpoint: Callable[[], Awaitable[tuple[SoapChannel, str]]],
        fixer: AddressFixer,
        settings: OnvifSettings,
    ) -> None:
        self.camera = camera
        self._endpoint = endpoint  # resolves (channel, event service XAddr) when the subscription starts
        self._channel: SoapChannel | None = None
        self._events_xaddr = ""
        self._fixer = fixer
        self._settings = settings
        self._state = PullPointState.IDLE
        self._address: str | None = None
        self._reference_parameters: tuple[Element, ...] = ()
        self._renew_at = 0.0
        self._buffer: collections.deque[CameraEvent] = collections.deque(maxlen=settings.pull_message_limit)
        self.stats = PullPointStats()

    @property
    def _soap(self) -> SoapChannel:
        if self._channel is None:
            raise RuntimeError(f"camera {self.camera}: the PullPoint subscription was not started")
        return self._channel

    @property
    def state(self) -> PullPointState:
        return self._state

    @property
    def address(self) -> str | None:
        """The subscription manager's address (rewritten like every other camera address)."""
        return self._address

    def _set(self, new: PullPointState) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise RuntimeError(f"camera {self.camera}: PullPoint cannot go from {self._state.value} to {new.value}")
        self._state = new

    async def __aenter__(self) -> PullPointSubscription:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> PullPointSubscription:
        return self

    async def start(self) -> None:
        self._set(PullPointState.SUBSCRIBING)
        try:
            self._channel, self._events_xaddr = await self._endpoint()
            await self._subscribe()
        except OnvifError:
            self._set(PullPointState.FAILED)
            raise
        self._set(PullPointState.ACTIVE)

    async def __anext__(self) -> CameraEvent:
        while not self._buffer:
            if self._state in (PullPointState.CLOSING, PullPointState.CLOSED):
                raise StopAsyncIteration
            if self._state is PullPointState.FAILED:
                raise RuntimeError(f"camera {self.camera}: the PullPoint subscription failed; open a new one")
            if self._state is PullPointState.IDLE:
                await self.start()
            await self._pull()
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Unsubscribe (best effort: an unanswered subscription expires on the camera) and close."""
        if self._state in (PullPointState.CLOSING, PullPointState.CLOSED):
            return
        self._set(PullPointState.CLOSING)
        if self._address is not None:
            try:
                await self._soap.call_optional(
                    "subscription",
                    "Unsubscribe",
                    {},
                    self._address,
                    timeout_s=min(UNSUBSCRIBE_TIMEOUT_S, self._settings.timeout_s),
                    reference_parameters=self._reference_parameters,
                )
            except OnvifError as exc:
                logger.info("camera %s: Unsubscribe failed, the subscription will expire: %s", self.camera, exc)
        self._buffer.clear()
        self._set(PullPointState.CLOSED)

    # ------------------------------------------------------------------ steps

    async def _subscribe(self) -> None:
        answer = await self._soap.call(
            "events",
            "CreatePullPointSubscription",
            {"InitialTerminationTime": f"PT{self._settings.subscription_s}S"},
            self._events_xaddr,
        )
        info = self._soap.read("CreatePullPointSubscription", parse_subscription, answer)
        self._address = self._fixer.service(info.address)
        self._reference_parameters = info.reference_parameters
        self._schedule_renewal(info.current_time, info.termination_time)
        logger.debug("camera %s: PullPoint subscription at %s", self.camera, self._address)

    def _schedule_renewal(self, current: datetime | None, termination: datetime | None) -> None:
        lifetime = float(self._settings.subscription_s)
        if current is not None and termination is not None:
            lifetime = (termination - current).total_seconds()
        self._renew_at = asyncio.get_running_loop().time() + max(lifetime, MIN_LIFETIME_S) * RENEW_AT_FRACTION

    async def _pull(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._renew_at:
            await self.renew()
        assert self._address is not None  # set by _subscribe before ACTIVE
        wait_s = max(1, min(self._settings.pull_timeout_s, int(self._renew_at - loop.time())))
        self._set(PullPointState.PULLING)
        started = loop.time()
        try:
            answer = await self._soap.call(
                "pullpoint",
                "PullMessages",
                {"Timeout": timedelta(seconds=wait_s), "MessageLimit": self._settings.pull_message_limit},
                self._address,
                timeout_s=wait_s + self._settings.timeout_s,
                reference_parameters=self._reference_parameters,
            )
            result = self._soap.read("PullMessages", functools.partial(parse_pull_messages, camera=self.camera), answer)
        except OnvifError:
            self._set(PullPointState.FAILED)
            raise
        self._set(PullPointState.ACTIVE)
        self.stats.pulls += 1
        self.stats.events += len(result.events)
        self.stats.skipped += result.skipped
        overflow = len(result.events) - self._settings.pull_message_limit
        if overflow > 0:
            self.stats.dropped += overflow
            logger.warning(
                "camera %s: PullMessages returned %d events, over MessageLimit; dropped the %d oldest",
                self.camera,
                len(result.events),
                overflow,
            )
        self._buffer.extend(result.events)  # bounded deque: keeps the newest pull_message_limit
        if not result.events and loop.time() - started < min(1.0, wait_s):
            # Camera quirk: some firmwares answer PullMessages at once instead of waiting for
            # events up to Timeout; pause so such a camera does not get a request storm.
            await asyncio.sleep(self._settings.empty_pull_pause_s)

    async def renew(self) -> None:
        """Extend the subscription now (done by itself before it expires); subscribes anew when refused."""
        if self._address is None:
            raise RuntimeError(f"camera {self.camera}: the PullPoint subscription was not started")
        self._set(PullPointState.RENEWING)
        try:
            try:
                answer = await self._soap.call(
                    "subscription",
                    "Renew",
                    {"TerminationTime": f"PT{self._settings.subscription_s}S"},
                    self._address,
                    reference_parameters=self._reference_parameters,
                )
                current, termination = self._soap.read("Renew", parse_termination, answer)
                self._schedule_renewal(current, termination)
                self.stats.renewals += 1
            except (DeviceFault, Unsupported, MalformedResponse) as exc:
                # Camera quirk: some firmwares refuse Renew on PullPoint subscriptions, and a
                # rebooted camera has forgotten the subscription: subscribe anew.
                logger.info("camera %s: Renew refused (%s); subscribing again", self.camera, exc.detail)
                await self._subscribe()
                self.stats.resubscribes += 1
        except OnvifError:
            self._set(PullPointState.FAILED)
            raise
        self._set(PullPointState.ACTIVE)
