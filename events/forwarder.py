"""The forwarder: hands outbox items to the governance centre's intake, at least once, signed.

Each round claims due items with a lease (as many as there are free request slots), POSTs each
item's committed body with ``Idempotency-Key: <case code>`` and the HMAC headers (``signing``), and
marks the outcome in the outbox:

- 2xx with a JSON object (the receipt), or 409 "already have it" (a duplicate, whatever its body):
  delivered (the receipt is kept);
- timeout (``connect_timeout_s + request_timeout_s`` bounds the whole request, so a trickling answer
  cannot outlast the lease), refused connection, 5xx, 408, 429, 401 (the signature was refused:
  clock skew or a rotated secret, a fault of the link, not of the case), and a 2xx that is not a
  receipt (a proxy's page: nothing says the intake has the case; the repeat meets the idempotency
  key): transient; retried after an exponential backoff with full jitter (``Retry-After`` honoured,
  in seconds or as an HTTP date), dead after ``max_attempts`` (operators retry it);
- any other 4xx (and 3xx: redirects are never followed): permanent; dead at once with the reason.

A circuit breaker (``breaker``) stops claiming while the intake is down and lets one probe through
after ``breaker_reset_s``. A sender killed mid-request leaves its items ``sending``; their lease
expires and they are claimed again: the intake's idempotency on the case code makes the repeat
harmless, so every case arrives exactly once at the intake's side.

TLS is verified by default (an extra CA bundle can be given); the HTTP client is this forwarder's
own, never a global setting.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from xueliang.events.breaker import BreakerState, CircuitBreaker
from xueliang.events.errors import DeliveryError, EventsError, PermanentDeliveryError, TransientDeliveryError
from xueliang.events.outbox import OutboxEntry, OutboxPort
from xueliang.events.settings import ForwarderSettings
from xueliang.events.signing import signed_headers

log = logging.getLogger(__name__)
STOP_GRACE_S = 5.0
_TRANSIENT_CODES = frozenset({401, 408, 429})


class ForwarderState(enum.StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # 409: the intake had it already; counts as delivered
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    key: str
    outcome: Outcome
    attempt: int
    status_code: int | None = None
    receipt: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    retry_at: datetime | None = None
    sent_at: datetime | None = None  # when the attempt that got this answer was sent


@dataclass(slots=True)
class ForwarderStats:
    attempts: int = 0
    delivered: int = 0
    duplicates: int = 0
    transient_failures: int = 0
    permanent_failures: int = 0
    dead: int = 0
    outbox_errors: int = 0
    in_flight: int = 0


def full_jitter(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """AWS-style full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    return rng.uniform(0.0, min(cap_s, base_s * 2.0 ** max(0, attempt - 1)))


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): stable across attempts."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def build_client(settings: ForwarderSettings) -> httpx.AsyncClient:
    """The forwarder's own HTTP client: explicit timeouts, TLS verified (plus an optional CA bundle)."""
    verify: ssl.SSLContext | bool = True
    if settings.ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
    if not settings.verify_tls:
        log.warning("TLS verification of the intake %s is OFF (forwarder.verify_tls=false)", settings.intake_url)
        verify = False
    timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
    limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    return httpx.AsyncClient(base_url=settings.intake_url, verify=verify, timeout=timeout, limits=limits)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, from either form RFC 9110 allows (delay seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(response: httpx.Response) -> Mapping[str, Any]:
    """The receipt of a successful answer; raises ``TransientDeliveryError``/``PermanentDeliveryError``.

    A 409 is a duplicate whatever its body says (marked ``"duplicate": true``); a 2xx must carry a
    JSON object, or nothing tells that the intake holds the case (retried: the repeat is idempotent)."""
    code = response.status_code
    if 200 <= code < 300 or code == 409:
        try:
            data = response.json()
        except ValueError:
            data = None
        if code == 409:
            return {**data, "duplicate": True} if isinstance(data, dict) else {"duplicate": True}
        if isinstance(data, dict):
            return data
        raise TransientDeliveryError(
            f"HTTP {code} without a JSON receipt (not the intake?): {response.text[:200]!r}", status_code=code
        )
    reason = f"HTTP {code}: {response.text[:200]}"
    if code >= 500 or code in _TRANSIENT_CODES:
        raise TransientDeliveryError(reason, status_code=code, retry_after_s=_retry_after(response))
    raise PermanentDeliveryError(reason, status_code=code)


class Forwarder:
    """Delivers outbox items until stopped. ``on_result`` hears every outcome (after the outbox has it)."""

    def __init__(
        self,
        settings: ForwarderSettings,
        outbox: OutboxPort,
        *,
        on_result: Callable[[DeliveryResult], Awaitable[None]] | None = None,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.sender = settings.sender or f"forwarder-{os.getpid()}"
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self.stats = ForwarderStats()
        self.state = ForwarderState.NEW
        self._on_result = on_result
        self._client = client
        self._rng = rng or random.Random()
        self._path = urlsplit(settings.intake_url).path.rstrip("/") + settings.cases_path
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outbox_failing = False  # claims fail now (an outage of the store): logged once

    def wake(self) -> None:
        """Something was added to the outbox: look now instead of after the poll interval."""
        self._wake.set()

    def stop(self) -> None:
        if self.state in (ForwarderState.NEW, ForwarderState.RUNNING):
            self.state = ForwarderState.STOPPING
        self._stopping.set()
        self._wake.set()

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(max(0.001, seconds)):
                await self._wake.wait()
        except TimeoutError:
            return

    async def run(self) -> None:
        """Claim and deliver until ``stop()``; in-flight requests get ``STOP_GRACE_S`` to finish."""
        if self.state == ForwarderState.NEW:
            self.state = ForwarderState.RUNNING
        own_client = self._client is None
        client = self._client or build_client(self.settings)
        try:
            async with asyncio.TaskGroup() as group:
                while not self._stopping.is_set():
                    await self._round(group, client)
                if self._in_flight:
                    _, pending = await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_S)
                    for task in pending:
                        task.cancel()  # its lease expires; the item is claimed again later
        finally:
            if own_client:
                await client.aclose()
            self.state = ForwarderState.STOPPED

    async def _round(self, group: asyncio.TaskGroup, client: httpx.AsyncClient) -> None:
        slots = self.settings.concurrency - len(self._in_flight)
        if self.breaker.state != BreakerState.CLOSED:
            wait = self.breaker.wait_s()
            if wait > 0:
                await self._idle(min(wait, self.settings.poll_interval_s))
                return
            slots = 1 if slots > 0 and self.breaker.allow() else 0
        if slots <= 0:
            await self._idle(self.settings.poll_interval_s)
            return
        try:
            items = await self.outbox.claim(
                self.sender, limit=min(slots, self.settings.batch), lease_s=self.settings.lease_s
            )
        except Exception as exc:  # the gateway's StoreError family, unknown here; try again next round
            self.stats.outbox_errors += 1
            self._outbox_failed(exc)
            await self._idle(self.settings.poll_interval_s)
            return
        if self._outbox_failing:  # one line per outage (gateway's OutageLog; events/ may not import it)
            self._outbox_failing = False
            log.info("forwarder %s: the outbox answers again", self.sender)
        if not items:
            if self.breaker.state == BreakerState.HALF_OPEN:
                self.breaker.cancel_probe()
            await self._idle(self.settings.poll_interval_s)
            return
        for item in items:
            task = group.create_task(self._deliver(client, item), name=f"deliver-{item.key}")
            self._in_flight.add(task)
            self.stats.in_flight = len(self._in_flight)
            task.add_done_callback(self._done)

    def _outbox_failed(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self._outbox_failing:
            log.debug("forwarder %s: claiming from the outbox still fails: %s", self.sender, reason)
            return
        self._outbox_failing = True
        log.warning(
            "forwarder %s: claiming from the outbox failed: %s; retrying every %.1f s quietly until it answers",
            self.sender,
            reason,
            self.settings.poll_interval_s,
        )

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.stats.in_flight = len(self._in_flight)
        self._wake.set()

    async def send(self, client: httpx.AsyncClient, item: OutboxEntry) -> Mapping[str, Any]:
        """One attempt; the receipt, or ``DeliveryError``."""
        body = encode_body(item.payload["body"])
        secret = self.settings.secret.get_secret_value()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": item.key,
            **signed_headers(self.settings.key_id, secret, "POST", self._path, body),
        }
        bound = self.settings.connect_timeout_s + self.settings.request_timeout_s
        try:
            async with asyncio.timeout(bound):  # httpx's timeouts bound each read, not the request
                response = await client.post(self.settings.cases_path, content=body, headers=headers)
        except TimeoutError as exc:
            raise TransientDeliveryError(f"timeout (no complete answer within {bound:.1f} s)") from exc
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return classify(response)

    async def _deliver(self, client: httpx.AsyncClient, item: OutboxEntry) -> None:
        attempt = item.attempts + 1
        self.stats.attempts += 1
        sent_at = datetime.now(UTC)
        try:
            receipt = await self.send(client, item)
        except DeliveryError as exc:
            result = self._failed(item, attempt, exc)
        else:
            self.breaker.success()
            duplicate = receipt.get("duplicate") is True
            outcome = Outcome.DUPLICATE if duplicate else Outcome.DELIVERED
            result = DeliveryResult(item.key, outcome, attempt, receipt=receipt, sent_at=sent_at)
        try:
            if result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE):
                await self.outbox.mark_delivered(item.key, dict(result.receipt))
                self.stats.delivered += 1
                self.stats.duplicates += result.outcome == Outcome.DUPLICATE
                log.info("case %s: delivered to the intake (attempt %s)", item.key, attempt)
            else:
                await self.outbox.mark_failed(item.key, result.error, retry_at=result.retry_at)
        except Exception:  # the gateway's StoreError family; the lease brings the item back
            self.stats.outbox_errors += 1
            log.exception("case %s: recording the delivery outcome in the outbox failed", item.key)
            return
        if self._on_result is not None:
            try:
                await self._on_result(result)
            except EventsError as exc:  # the case's own status lags; the outbox has the truth
                log.warning("case %s: updating the case after delivery failed: %s", item.key, exc)

    def _failed(self, item: OutboxEntry, attempt: int, exc: DeliveryError) -> DeliveryResult:
        if isinstance(exc, PermanentDeliveryError):
            self.breaker.success()  # the intake answered: it is up
            self.stats.permanent_failures += 1
            self.stats.dead += 1
            log.error("case %s: the intake refused it for good: %s; the item is dead", item.key, exc.reason)
            return DeliveryResult(item.key, Outcome.DEAD, attempt, exc.status_code, error=exc.reason)
        self.breaker.failure()
        self.stats.transient_failures += 1
        if attempt >= self.settings.max_attempts:
            self.stats.dead += 1
            log.error("case %s: %s attempts failed (last: %s); the item is dead", item.key, attempt, exc.reason)
            return DeliveryResult(
                item.key, Outcome.DEAD, attempt, exc.status_code, error=f"{attempt} attempts; last: {exc.reason}"
            )
        delay = full_jitter(attempt, self.settings.backoff_base_s, self.settings.backoff_cap_s, self._rng)
        if exc.retry_after_s is not None:
            delay = max(delay, min(exc.retry_after_s, self.settings.backoff_cap_s))
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        log.warning("case %s: attempt %s failed (%s); retry in %.1f s", item.key, attempt, exc.reason, delay)
        return DeliveryResult(item.key, Outcome.RETRY, attempt, exc.status_code, error=exc.reason, retry_at=retry_at)
