"""The small interfaces the gateway stores its state behind.

Two implementations each: embedded (``sqlite`` module: SQLite in WAL mode and in-process queues,
the default) and scale-out (``redis`` module). One contract suite (``tests/contract``) runs
against both. Semantics are modelled on Redis Streams so both sides behave alike:

- ``JobQueue``: bounded work queue with acknowledgement. ``put`` refuses when full (policy:
  *refuse newest*, counted in ``stats().refused``) and coalesces by key (a key already waiting is
  not queued twice). A taken job not acknowledged within ``visibility_s`` is handed out again.
- ``EventBus``: durable topics read by consumer groups; each group sees every message once,
  messages are acknowledged; pending ones idle longer than ``min_idle_s`` can be claimed by
  another consumer. Topics are capped at ``maxlen`` messages. A topic no group reads is trimmed
  oldest first (policy: *trim oldest*, nobody loses anything). A topic with groups never loses a
  message some group still needs: when it reaches ``maxlen``, the messages every group has been
  delivered *and* has acknowledged are trimmed; if that frees nothing, ``publish`` refuses the new
  message with ``BusFull`` (policy: *refuse newest*, counted in ``stats().refused``).
- ``Outbox``: durable, idempotent by key. Committed before any send; ``claim`` leases due items
  to one sender; an expired lease (crashed sender) makes them due again.
- ``AuditLog``: append-only; ``UserStore``: users and API keys; ``CameraRegistry``: cameras.
- ``Leases``: one holder per singleton role (scheduler, forwarder) in scale-out.

Counters ("counted" above) are per process, like Prometheus counters: ``JobQueue.stats()``
(refused, coalesced) and ``EventBus.stats()`` (published, trimmed, refused). Payloads are JSON objects;
one that is not JSON-serialisable is refused with ``StoreError`` naming the topic, queue or key.
Every operation raises ``StoreUnavailable`` when the backing service cannot be reached.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from xueliang.gateway.errors import StoreError
from xueliang.gateway.models import (
    ApiKey,
    AuditEntry,
    CameraQuery,
    CameraRecord,
    CameraStatus,
    User,
)

JSON = dict[str, Any]


class CameraRegistry(Protocol):
    async def upsert(self, camera: CameraRecord) -> None:
        """Insert or replace by ``id``. Raises ``Conflict`` if another id has the same host:port."""

    async def get(self, camera_id: str) -> CameraRecord:
        """Raises ``NotFound``."""

    async def find_by_address(self, host: str, port: int) -> CameraRecord | None: ...

    async def list(self, query: CameraQuery) -> list[CameraRecord]:
        """Ordered by id."""

    async def count(self, query: CameraQuery) -> int:
        """How many match, ignoring ``limit``/``offset``. ``search`` is a case-insensitive substring."""

    async def delete(self, camera_id: str) -> None:
        """Raises ``NotFound``."""

    async def status_counts(self) -> dict[CameraStatus, int]:
        """Every status, zero included."""


class UserStore(Protocol):
    async def add_user(self, user: User) -> None:
        """Raises ``Conflict`` if the username exists."""

    async def get_user(self, username: str) -> User:
        """Raises ``NotFound``."""

    async def list_users(self) -> list[User]:
        """Ordered by username."""

    async def update_user(self, user: User) -> None:
        """Raises ``NotFound``."""

    async def add_api_key(self, key: ApiKey) -> None:
        """Raises ``Conflict`` if the key id exists."""

    async def get_api_key(self, key_id: str) -> ApiKey:
        """Raises ``NotFound``."""

    async def update_api_key(self, key: ApiKey) -> None:
        """Replace the key with the same ``key_id`` (disable, enable, revoke). Raises ``NotFound``."""

    async def list_api_keys(self) -> list[ApiKey]:
        """Ordered by key id."""


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first (by ``at``, then by insertion); ``since`` is inclusive."""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    key: str
    payload: JSON
    deliveries: int  # 1 on first hand-out


@dataclass(slots=True)
class QueueStats:
    depth: int = 0  # waiting, not yet taken
    in_flight: int = 0  # taken, not yet acknowledged
    refused: int = 0  # puts refused because the queue was full
    coalesced: int = 0  # puts skipped because the key was already waiting


class JobQueue(Protocol):
    capacity: int

    async def put(self, key: str, payload: JSON) -> bool:
        """Queue a job. False if refused (full) or coalesced (``key`` already waiting)."""

    async def take(self, consumer: str, timeout_s: float) -> Job | None:
        """Next job, waiting up to ``timeout_s``; expired unacknowledged jobs come back first."""

    async def ack(self, job: Job) -> None:
        """Done with ``job``; acknowledging an unknown or already acknowledged job does nothing."""

    async def stats(self) -> QueueStats:
        """``refused``/``coalesced`` count this process's puts; depth and in_flight are the queue's."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    id: str  # monotonically increasing within a topic (Redis stream id form "ms-seq")
    payload: JSON
    deliveries: int = 1


@dataclass(slots=True)
class BusStats:
    published: int = 0  # messages this process published
    trimmed: int = 0  # messages removed to keep topics within ``maxlen`` (by this process's publishes)
    refused: int = 0  # publishes refused with ``BusFull``: the topic's unconsumed backlog was at ``maxlen``


class BusFull(StoreError):
    """A topic's consumer groups have ``maxlen`` messages not yet delivered and acknowledged; the
    new message was refused (not stored) rather than any of those trimmed."""

    def __init__(self, topic: str, backlog: int, maxlen: int, group: str) -> None:
        self.topic = topic
        self.backlog = backlog
        self.group = group  # the group furthest behind
        super().__init__(
            f"bus topic {topic} is full: {backlog} messages are not yet delivered to and acknowledged by "
            f"every consumer group (storage.bus_maxlen is {maxlen}); group {group} is furthest behind. "
            f"The message was not stored: publish it again later, and start or speed up the consumers of "
            f"group {group} (or claim its stale pending messages), or raise storage.bus_maxlen"
        )


class EventBus(Protocol):
    async def publish(self, topic: str, payload: JSON) -> str:
        """Append durably; returns the message id.

        At ``maxlen`` messages, a topic without groups drops its oldest; a topic with groups drops
        those every group has been delivered and has acknowledged, and raises ``BusFull`` (storing
        nothing) when none are."""

    async def read(
        self, topic: str, group: str, consumer: str, *, count: int = 100, block_s: float = 1.0
    ) -> list[Message]:
        """New messages for ``group`` (created on first use, from the start of the topic).

        Waits up to ``block_s`` when there are none (``0``: do not wait)."""

    async def ack(self, topic: str, group: str, ids: Sequence[str]) -> None: ...

    async def claim_stale(
        self, topic: str, group: str, consumer: str, *, min_idle_s: float, count: int = 100
    ) -> list[Message]:
        """Take over messages of ``group`` delivered but not acknowledged for ``min_idle_s``."""

    async def pending(self, topic: str, group: str) -> int:
        """Delivered to ``group`` but not acknowledged (0 for an unknown group)."""

    async def stats(self) -> BusStats: ...


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # leased to a sender
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the configured attempts; an operator may retry it


@dataclass(frozen=True, slots=True)
class OutboxItem:
    key: str
    payload: JSON
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str = ""
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    response: JSON = field(default_factory=dict)


class Outbox(Protocol):
    async def add(self, key: str, payload: JSON) -> bool:
        """Commit durably. False (and no change) if ``key`` exists already."""

    async def claim(self, sender: str, *, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease up to ``limit`` due items (pending with ``next_attempt_at`` passed, or sending
        with an expired lease) to ``sender``; they become ``sending``."""

    async def mark_delivered(self, key: str, response: Mapping[str, Any]) -> None:
        """Count the attempt; the item is ``delivered`` (kept, never claimed again). ``NotFound``."""

    async def mark_failed(self, key: str, error: str, *, retry_at: datetime | None) -> None:
        """Count an attempt; back to ``pending`` at ``retry_at``, or ``dead`` if it is None. ``NotFound``."""

    async def retry(self, key: str) -> None:
        """Operator action: a ``dead`` item becomes ``pending`` now (attempts reset).

        ``NotFound``; ``Conflict`` if the item is not dead."""

    async def get(self, key: str) -> OutboxItem:
        """Raises ``NotFound``."""

    async def list(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxItem]:
        """Newest first (by creation)."""

    async def counts(self) -> dict[OutboxStatus, int]:
        """Every status, zero included."""


class Leases(Protocol):
    async def acquire(self, role: str, holder: str, ttl_s: float) -> bool:
        """True if ``holder`` now holds ``role`` (newly, or renewed)."""

    async def release(self, role: str, holder: str) -> None: ...

    async def holder(self, role: str) -> str | None: ...


async def _nothing_to_close() -> None:
    return None


@dataclass(slots=True)
class Stores:
    """Everything one node stores its state in; built by ``open_stores`` in the lifespan.

    Close it exactly once when the node stops (``await stores.close()``, or ``async with``); the
    backend's ``closer`` releases its connections and worker threads.
    """

    cameras: CameraRegistry
    users: UserStore
    audit: AuditLog
    jobs: JobQueue
    bus: EventBus
    outbox: Outbox
    leases: Leases
    backend: str  # "sqlite" or "redis"
    closer: Callable[[], Awaitable[None]] = _nothing_to_close

    async def close(self) -> None:
        await self.closer()

    async def __aenter__(self) -> Stores:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
