"""Singleton roles in scale-out: work that exactly one node may do at a time (the patrol scheduler,
the case side) runs only while this node holds the role's lease in the shared store.

``lead(node, role, work)`` takes the lease, runs ``work`` and renews every ``renew_s``; if the lease
is lost (another node took it after a stall, or the store is unreachable) the work is cancelled at
once, and the node tries again. On the embedded store the lease is always this node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from xueliang.gateway.errors import StoreError
from xueliang.gateway.node import Node

log = logging.getLogger(__name__)

RENEW_S = 5.0
TTL_S = 20.0


class Role:
    """Whether this node leads a role now (read by routes that only the leader can answer)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.leading = False


async def _take(node: Node, role: str, ttl_s: float) -> bool:
    try:
        return await node.stores.leases.acquire(role, node.name, ttl_s)
    except StoreError as exc:
        log.warning("role %s: lease not taken: %s", role, exc, extra={"node": node.name})
        return False


async def lead(
    node: Node,
    role: Role,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    renew_s: float = RENEW_S,
    ttl_s: float = TTL_S,
) -> None:
    """Run ``work`` while holding ``role``'s lease, for ever (cancel to stop)."""
    while True:
        if not await _take(node, role.name, ttl_s):
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
                if not await _take(node, role.name, ttl_s):
                    log.warning("role %s: lease lost; stopping the work", role.name, extra={"node": node.name})
                    break
        finally:
            role.leading = False
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(StoreError):
                await node.stores.leases.release(role.name, node.name)
