"""The part of the gateway's ``Outbox`` the case side uses, as a structural protocol.

``xueliang.events`` never imports the gateway; the gateway passes its outbox (SQLite or Redis, see
``xueliang.gateway.stores.base.Outbox``) in, and it fits this protocol as is: the method signatures
are identical, and ``OutboxEntry`` names the attributes of the gateway's ``OutboxItem`` we read.

Failures of the outbox itself surface as the gateway's ``StoreError`` family, which this part cannot
name: the forwarder logs them with the item's key and relies on the lease (an item claimed but never
marked comes back when its lease expires), so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

JSON = dict[str, Any]


class OutboxEntry(Protocol):
    """One claimed item (the gateway's ``OutboxItem``)."""

    @property
    def key(self) -> str: ...
    @property
    def payload(self) -> JSON: ...
    @property
    def attempts(self) -> int: ...


class OutboxPort(Protocol):
    async def add(self, key: str, payload: JSON) -> bool:
        """Commit durably. False (and no change) if ``key`` exists already."""

    async def claim(self, sender: str, *, limit: int, lease_s: float) -> Sequence[OutboxEntry]:
        """Lease up to ``limit`` due items to ``sender``."""

    async def get(self, key: str) -> OutboxEntry:
        """The item under ``key`` (the gateway's ``NotFound`` if there is none)."""

    async def mark_delivered(self, key: str, response: Mapping[str, Any]) -> None: ...

    async def mark_failed(self, key: str, error: str, *, retry_at: datetime | None) -> None:
        """Count an attempt; back to pending at ``retry_at``, or dead if it is None."""
