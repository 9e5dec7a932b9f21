"""``CameraService``: the registry's owner. Provisions cameras (guard, probe, encrypt, upsert),
re-probes, updates and deletes them, and records what the health sweep finds.

One shared HTTP session for every camera (the connector's pooled ``create_session``), opened with
the service (``async with CameraService(node) as cameras``) and closed with it. Single adds and
re-probes share ``cameras.probe_concurrency``; a bulk import bounds its own rows
(``bounded=False``). Operations on one address are serialised by a per-address lock, so two
requests for the same camera never interleave their read-probe-write.

Provisioning is idempotent by ``host:port``: adding an address that is registered updates that
camera and keeps its id (and its password, when the new description gives none). A row that
names an id already registered elsewhere moves that camera to the new address. A probe that
fails still registers the camera, with the status the error implies
(:mod:`xueliang.gateway.cameras.mapping`). Passwords are encrypted with ``node.cipher`` and
never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import weakref
from collections.abc import AsyncIterator
from types import TracebackType

import aiohttp

from xueliang.connectors.onvif import OnvifClient, OnvifError, OnvifSettings, ProbeResult, Timeout, create_session
from xueliang.gateway.cameras.endpoints import EndpointCache
from xueliang.gateway.cameras.mapping import apply_failure, apply_probe, describe, probe_notes
from xueliang.gateway.cameras.models import CameraChanges, CameraSpec, HealthResult, Provisioned
from xueliang.gateway.cameras.notify import StatusNotifier, address_of
from xueliang.gateway.cameras.settings import CameraSettings
from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus, utcnow
from xueliang.gateway.node import Node

log = logging.getLogger(__name__)

PROBE_CALLS_BOUND = 4  # a whole probe may take this many call timeouts before it is cut short


class ServiceState(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def new_camera_id() -> str:
    return f"cam-{secrets.token_hex(5)}"


class CameraService:
    def __init__(
        self, node: Node, *, settings: CameraSettings | None = None, onvif: OnvifSettings | None = None
    ) -> None:
        self.node = node
        self.settings = settings or node.settings.cameras
        self.onvif = (onvif or node.settings.onvif).model_copy(update={"timeout_s": self.settings.probe_timeout_s})
        self.guard = node.guard
        self.notifier = StatusNotifier(node)
        self.endpoints = EndpointCache()
        self.state = ServiceState.NEW
        self._session: aiohttp.ClientSession | None = None
        self._probes = asyncio.Semaphore(self.settings.probe_concurrency)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        assert self.state is ServiceState.NEW, f"open() on a {self.state} camera service"
        self._session = create_session(self.onvif, policy=self.guard)  # every connection, redirect or XAddr included
        self.state = ServiceState.OPEN

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.state = ServiceState.CLOSED

    async def __aenter__(self) -> CameraService:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"the camera service is {self.state}: open it first")
        return self._session

    @contextlib.asynccontextmanager
    async def locked(self, host: str, port: int) -> AsyncIterator[None]:
        """Serialise work on one address (provision, re-probe, health write)."""
        key = f"{host}:{port}"
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield

    # ------------------------------------------------------------------ reading

    async def get(self, camera_id: str) -> CameraRecord:
        return await self.node.stores.cameras.get(camera_id)

    async def list(self, query: CameraQuery) -> list[CameraRecord]:
        return await self.node.stores.cameras.list(query)

    async def count(self, query: CameraQuery) -> int:
        return await self.node.stores.cameras.count(query)

    async def summary(self) -> dict[CameraStatus, int]:
        return await self.node.stores.cameras.status_counts()

    def password_of(self, record: CameraRecord) -> str:
        """The camera's password in clear, for a connection; never log it."""
        return self.node.cipher.decrypt(record.password_enc)

    # ------------------------------------------------------------------ probing

    async def _probe(self, host: str, port: int, username: str, password: str) -> ProbeResult:
        bound = self.settings.probe_timeout_s * PROBE_CALLS_BOUND
        async with OnvifClient(host, port, username, password, session=self.session, settings=self.onvif) as client:
            try:
                async with asyncio.timeout(bound):
                    return await client.probe()
            except TimeoutError:
                raise Timeout(client.camera, "probe", f"the whole probe took longer than {bound:g} s") from None

    async def _probe_into(self, base: CameraRecord, password: str) -> tuple[CameraRecord, str]:
        """``base`` updated by a probe (or marked with the failure); the reason or notes."""
        try:
            result = await self._probe(base.host, base.port, base.username, password)
        except OnvifError as exc:
            log.info("camera %s (%s): probe failed: %s", base.id, address_of(base), exc)
            return apply_failure(base, exc, utcnow()), describe(exc)
        self.endpoints.learn(base.id, result)
        notes = probe_notes(result, self.onvif.max_clock_skew_s)
        return apply_probe(base, result, utcnow()), "; ".join(notes)

    # ------------------------------------------------------------------ writing

    async def add(self, spec: CameraSpec, actor: str, *, bounded: bool = True) -> CameraRecord:
        return (await self.provision(spec, actor, bounded=bounded)).record

    async def provision(self, spec: CameraSpec, actor: str, *, bounded: bool = True, audit: bool = True) -> Provisioned:
        """Register or update the camera ``spec`` describes and probe it. Raises ``CameraAddressError``
        (guard) and ``Conflict`` (the address and the id name different cameras); a failed probe does
        not raise: the camera is stored with the status the error implies."""
        await self.guard.check(spec.host)
        async with self.locked(spec.host, spec.port):
            existing = await self._existing(spec)
            base = self._merge(existing, spec)
            password = self.password_of(base)
            if bounded:
                async with self._probes:
                    record, reason = await self._probe_into(base, password)
            else:
                record, reason = await self._probe_into(base, password)
            await self.node.stores.cameras.upsert(record)
        if existing is not None and (existing.host, existing.port) != (record.host, record.port):
            log.info("camera %s: moved from %s to %s", record.id, address_of(existing), address_of(record))
        await self.notifier.changed(existing.status if existing else None, record)
        if audit:
            detail = f"{address_of(record)} {record.status.value}"
            await self.node.audit(actor, "cameras.add", "ok", target=record.id, detail=detail)
        level = logging.INFO if audit else logging.DEBUG  # a bulk import reports rows in its result file
        log.log(level, "camera %s (%s): %s, %s", record.id, address_of(record),
                "added" if existing is None else "updated", record.status.value)  # fmt: skip
        return Provisioned(record=record, created=existing is None, reason=reason)

    async def _existing(self, spec: CameraSpec) -> CameraRecord | None:
        registry = self.node.stores.cameras
        existing = await registry.find_by_address(spec.host, spec.port)
        if existing is not None and spec.id and existing.id != spec.id:
            raise Conflict(
                f"address {spec.address} is registered as camera {existing.id}, but camera id {spec.id} was given: "
                "correct the id, or delete the other camera first"
            )
        if existing is None and spec.id:
            with contextlib.suppress(NotFound):
                existing = await registry.get(spec.id)  # the camera moved to a new address
        return existing

    def _merge(self, existing: CameraRecord | None, spec: CameraSpec) -> CameraRecord:
        fields = {
            "name": spec.name or (existing.name if existing else spec.address),
            "host": spec.host,
            "port": spec.port,
            "username": spec.username,
            # A row without a password keeps the one on record (an exported list has none).
            "password_enc": self.node.cipher.encrypt(spec.password)
            if spec.password or existing is None
            else existing.password_enc,
            "location": spec.location,
            "category": spec.category,
            "policy": spec.policy,
        }
        if existing is None:
            fresh = CameraRecord(id=spec.id or new_camera_id(), name=spec.name or spec.address, host=spec.host)
            return fresh.model_copy(update=fields)
        if (existing.host, existing.port) != (spec.host, spec.port):
            self.endpoints.forget(existing.id)
        return existing.model_copy(update=fields)

    async def reprobe(self, camera_id: str, actor: str) -> CameraRecord:
        """Probe a registered camera again and store what it says now."""
        record = await self.get(camera_id)
        await self.guard.check(record.host)
        async with self.locked(record.host, record.port):
            record = await self.get(camera_id)  # fresh, under the lock
            async with self._probes:
                updated, _reason = await self._probe_into(record, self.password_of(record))
            await self.node.stores.cameras.upsert(updated)
        await self.notifier.changed(record.status, updated)
        await self.node.audit(actor, "cameras.reprobe", "ok", target=camera_id, detail=updated.status.value)
        return updated

    async def update(self, camera_id: str, changes: CameraChanges, actor: str) -> CameraRecord:
        """Change name, location, category, policy or credentials; new credentials are probed at once."""
        record = await self.get(camera_id)
        async with self.locked(record.host, record.port):
            record = await self.get(camera_id)
            update: dict[str, object] = {"updated_at": utcnow()}
            for name in ("name", "location", "category", "policy", "username"):
                value = getattr(changes, name)
                if value is not None:
                    update[name] = value
            if changes.password is not None:
                update["password_enc"] = self.node.cipher.encrypt(changes.password)
            record = record.model_copy(update=update)
            await self.node.stores.cameras.upsert(record)
        changed = ",".join(sorted(changes.model_dump(exclude_none=True, exclude={"password"})))
        changed += ",password" if changes.password is not None else ""
        await self.node.audit(actor, "cameras.update", "ok", target=camera_id, detail=changed.strip(","))
        if changes.credentials_changed:
            return await self.reprobe(camera_id, actor)
        return record

    async def delete(self, camera_id: str, actor: str) -> None:
        await self.node.stores.cameras.delete(camera_id)
        self.endpoints.forget(camera_id)
        await self.node.audit(actor, "cameras.delete", "ok", target=camera_id)
        log.info("camera %s: deleted by %s", camera_id, actor)

    async def record_health(self, record: CameraRecord, health: HealthResult) -> CameraRecord | None:
        """Store what a health check of ``record`` found (status, last_seen, last_error, clock offset)
        when it differs from ``record``; publishes a status change. Returns the stored record, or
        None when nothing had to be written (or the camera is gone)."""
        sweep = self.settings.sweep
        now = health.checked_at or utcnow()
        seen = health.status is not CameraStatus.OFFLINE
        offset = health.clock_offset_s if health.clock_offset_s is not None else record.clock_offset_s
        stale = record.last_seen is None or (now - record.last_seen).total_seconds() >= sweep.last_seen_write_s
        changed = (
            record.status is not health.status
            or record.last_error != health.error
            or abs(offset - record.clock_offset_s) > sweep.clock_change_s
            or (seen and stale)
        )
        if not changed:
            return None
        async with self.locked(record.host, record.port):
            try:
                fresh = await self.get(record.id)  # a technician may have changed it meanwhile
            except NotFound:
                return None
            update: dict[str, object] = {"status": health.status, "last_error": health.error, "clock_offset_s": offset}
            if seen:
                update["last_seen"] = now
            updated = fresh.model_copy(update=update)
            await self.node.stores.cameras.upsert(updated)
        await self.notifier.changed(fresh.status, updated)
        return updated
