"""Singleton roles in scale-out: work that exactly one node may do at a time (the patrol scheduler,
the case side) runs only while this node holds the role's lease in the shared store.

``lead(node, role, work)`` takes the lease, runs ``work`` and renews every ``renew_s``; if the lease
is lost (another node took it after a stall, or the store is unreachable) the work is cancelled at
once, and the node tries again. On the embedded store the lease is always this node's.

A lease taken by a call that started at ``t`` is this node's until ``t + ttl_s`` at the latest, so
every call is cut off ``margin`` before the lease it relies on runs out: a store that answers slowly
(or not at all, until the socket times out) stops the work before another node can take the role.
While the store is unreachable one warning says so, and one line says when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from xueliang.gateway.errors import StoreError
from xueliang.gateway.node import Node
from xueliang.gateway.outage import OutageLog

log = logging.getLogger(__name__)

RENEW_S = 5.0
TTL_S = 20.0


class Role:
    """Whether this node leads a role now (read by routes that only the leader can answer)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.leading = False


class _Lease:
    """This node's calls on one role's lease: each bounded by the lease's end, one log line per outage."""

    def __init__(self, node: Node, role: str, ttl_s: float, margin_s: float) -> None:
        self.node, self.role, self.ttl_s, self.margin_s = node, role, ttl_s, margin_s
        self.held_until: float | None = None  # loop time the lease is surely ours until
        self.outage = OutageLog(
            log,
            f"role {role}",
            store="the lease store",
            meanwhile="retrying quietly until the store answers",
            extra={"node": node.name},
        )

    async def take(self) -> bool:
        """Take or renew the lease; False if another node holds it or the store did not answer in time."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        end = started + self.ttl_s if self.held_until is None else self.held_until
        try:
            async with asyncio.timeout_at(end - self.margin_s):
                taken = await self.node.stores.leases.acquire(self.role, self.node.name, self.ttl_s)
        except (StoreError, TimeoutError) as exc:
            self.held_until = None
            reason = str(exc) or "the store did not answer before the lease would run out"
            self.outage.failed(f"lease not taken: {reason}")
            return False
        self.outage.answered()
        self.held_until = started + self.ttl_s if taken else None
        return taken

    async def release(self) -> None:
        self.held_until = None
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(self.margin_s):
                await self.node.stores.leases.release(self.role, self.node.name)


async def lead(
    node: Node,
    role: Role,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    renew_s: float = RENEW_S,
    ttl_s: float = TTL_S,
) -> None:
    """Run ``work`` while holding ``role``'s lease, for ever (cancel to stop)."""
    lease = _Lease(node, role.name, ttl_s, margin_s=min(renew_s, ttl_s / 2))
    while True:
        if not await lease.take():
            await asyncio.sleep(renew_s)
            continue
        role.leading = True
        log.info("role %s: this node leads", role.name, extra={"node": node.name})
        task = asyncio.create_task(work(), name=f"lead-{role.name}")
        try:
            while True:
                await asyncio.wait({task}, timeout=renew_s)
                if task.done():
                    task.result()  # a failure surfaces to the supervisor
                    return
                if not await lease.take():
                    log.warning("role %s: lease lost; stopping the work", role.name, extra={"node": node.name})
                    break
        finally:
            role.leading = False
            try:
                await _end(task)
            finally:
                await lease.release()


async def _end(work: asyncio.Task[None]) -> None:
    """Cancel ``work`` and wait until it has ended, so that the lease is never given up while it still
    runs. A cancellation of this task meanwhile is raised once the work has ended: never lost. Work
    that had already ended is left alone: its failure went to the supervisor through ``lead``."""
    if work.done():
        return
    work.cancel()
    interrupted = False
    while not work.done():
        try:
            await asyncio.wait({work})
        except asyncio.CancelledError:
            interrupted = True
    if not work.cancelled() and (exc := work.exception()) is not None:
        log.warning("%s failed while stopping: %s", work.get_name(), exc, exc_info=exc)
    if interrupted:
        raise asyncio.CancelledError
