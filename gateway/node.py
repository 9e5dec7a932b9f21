"""The composition root: one gateway node, its stores, security and running services.

``open_node(settings)`` builds everything in order inside one ``AsyncExitStack`` and tears it
down in reverse; the API's lifespan and the CLI both use it. Background services run in one
``asyncio.TaskGroup`` owned by ``Node.run_services``; stopping cancels them and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xueliang.events.store_file import Held, OwnerLock
from xueliang.gateway.cameras.guard import NetworkGuard
from xueliang.gateway.cameras.models import fingerprint_key
from xueliang.gateway.errors import ConfigError, ConfigProblem, Conflict, NotFound, StoreUnavailable
from xueliang.gateway.live import LiveFeed
from xueliang.gateway.metrics import Metrics
from xueliang.gateway.models import AuditEntry, Role, User
from xueliang.gateway.security import CameraCipher, Passwords, Tokens, resolve_secrets
from xueliang.gateway.settings import Settings
from xueliang.gateway.stores import open_stores
from xueliang.gateway.stores.base import Stores
from xueliang.gateway.throttle import LoginThrottle

if TYPE_CHECKING:
    from xueliang.gateway.cameras.runtime import CameraRuntime
    from xueliang.gateway.casework import CaseWork
    from xueliang.gateway.patrol import Patrol

log = logging.getLogger(__name__)

Service = Callable[[], Coroutine[Any, Any, None]]
METRICS_PERIOD_S = 5.0
RESTART_PAUSE_S = 1.0
MAX_RESTART_PAUSE_S = 60.0
NODE_LOCK = "node.lock"  # in node.data_dir: held by the serving node (``open_node(..., exclusive=True)``)


@dataclass
class Node:
    """Everything one gateway process runs on; passed down to the API as typed state."""

    settings: Settings
    name: str
    stores: Stores
    passwords: Passwords
    tokens: Tokens
    cipher: CameraCipher
    metrics: Metrics
    logins: LoginThrottle
    guard: NetworkGuard  # security.allowed_networks, one DNS cache for every part that connects out
    import_key: bytes  # keys bulk-import row fingerprints (``fingerprint_key``), from the resolved secrets
    live: LiveFeed = field(default_factory=LiveFeed)
    # The parts, once assembled (gateway/wiring.py); None on a node opened for a CLI command.
    cameras: CameraRuntime | None = None
    cases: CaseWork | None = None
    patrol: Patrol | None = None
    services: dict[str, Service] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: dict[str, int] = field(default_factory=dict)  # service name -> times restarted after a failure

    def add_service(self, name: str, service: Service) -> None:
        """Register a long-running coroutine; it runs until the node stops."""
        self.services[name] = service

    async def audit(self, actor: str, action: str, outcome: str, target: str = "", detail: str = "") -> None:
        await self.stores.audit.record(
            AuditEntry(actor=actor, action=action, target=target, outcome=outcome, detail=detail)
        )

    async def run_services(self) -> None:
        """Run every registered service until cancelled. A service that fails is logged with its
        traceback and restarted after a growing pause: one broken part never stops the others."""
        async with asyncio.TaskGroup() as group:
            for name, service in self.services.items():
                group.create_task(self._supervise(name, service), name=name)
            self.ready.set()
            group.create_task(self._supervise("metrics", self._sample_metrics), name="metrics")

    async def _supervise(self, name: str, service: Service) -> None:
        pause = RESTART_PAUSE_S
        while True:
            started = time.monotonic()
            try:
                await service()
                log.info("service %s finished", name, extra={"node": self.name})
                return
            except Exception:  # the supervisor's job: any failure of a service is logged and restarted
                self.restarts[name] = self.restarts.get(name, 0) + 1
                if time.monotonic() - started > MAX_RESTART_PAUSE_S:
                    pause = RESTART_PAUSE_S
                log.exception("service %s failed; restarting it in %.0f s", name, pause, extra={"node": self.name})
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE_S)

    async def _sample_metrics(self) -> None:
        self.metrics.add_sampler("services", self._service_stats)
        self.metrics.add_sampler("live", self.live.stats)
        while True:
            await self.metrics.sample()
            await asyncio.sleep(METRICS_PERIOD_S)

    async def _service_stats(self) -> dict[str, float]:
        return {f"restarts_{name}": float(count) for name, count in self.restarts.items()}


async def ensure_admin(node: Node) -> tuple[str, str] | None:
    """Create the bootstrap admin with a random password if no user exists yet.

    Returns (username, password) when one was created: the caller shows it once."""
    if await node.stores.users.list_users():
        return None
    username = node.settings.security.bootstrap_admin
    password = secrets.token_urlsafe(12)
    try:
        await node.stores.users.add_user(
            User(username=username, password_hash=await node.passwords.hash(password), role=Role.ADMIN)
        )
    except Conflict:
        return None
    await node.audit("system", "users.bootstrap_admin", "ok", target=username)
    return username, password


def claim_data_dir(data_dir: Path) -> OwnerLock:
    """Hold ``<data_dir>/node.lock`` (its pid and host written in it) until released: ``ConfigError`` naming
    the holder when another node holds it, ``StoreUnavailable`` when the directory or file cannot be made."""
    lock_path = data_dir / NODE_LOCK
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = OwnerLock.take(lock_path)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot take the node lock {lock_path} ({exc.strerror}); set node.data_dir to a writable directory"
        ) from exc
    if isinstance(lock, Held):
        problem = ConfigProblem(
            "node.data_dir",
            f"{data_dir} is in use by another gateway node ({lock.owner}, holding {lock_path}); two nodes "
            "sharing it would both write its files",
            "stop the other gateway, or give this one its own node.data_dir",
        )
        raise ConfigError(str(data_dir), [problem])
    return lock


@contextlib.asynccontextmanager
async def open_node(settings: Settings, *, exclusive: bool = False) -> AsyncIterator[Node]:
    """Build a node (stores opened, secrets resolved); services are started by ``run_services``.

    ``exclusive``: the node serves (the API's lifespan, ``xueliang run``): it holds ``<data_dir>/node.lock``
    (``claim_data_dir``) from before anything in ``node.data_dir`` is touched until it is closed, so a
    second serving node given the same data_dir is refused with ``ConfigError`` (in scale-out mode too: the
    nodes share Redis, never their local data_dir). CLI commands open a node beside the serving one (the
    SQLite stores are made for several processes) and leave it False."""
    name = settings.node.name or socket.gethostname()
    async with contextlib.AsyncExitStack() as stack:
        if exclusive:
            stack.callback(claim_data_dir(settings.node.data_dir).release)
        secret = resolve_secrets(settings)
        stores = await open_stores(settings)
        stack.push_async_callback(stores.close)
        node = Node(
            settings=settings,
            name=name,
            stores=stores,
            passwords=Passwords(),
            tokens=Tokens(secret.token_secret, settings.security.token_ttl_s),
            cipher=CameraCipher(secret.camera_key),
            metrics=Metrics(name),
            logins=LoginThrottle(
                settings.security.login_max_failures,
                settings.security.login_window_s,
                settings.security.login_lockout_s,
            ),
            guard=NetworkGuard(settings.security.allowed_networks, dns_cache_s=settings.cameras.dns_cache_s),
            import_key=fingerprint_key(secret.token_secret),
        )
        log.info("node %s open (%s mode, %s stores)", name, settings.node.mode, stores.backend, extra={"node": name})
        yield node


async def get_user_or_none(node: Node, username: str) -> User | None:
    try:
        return await node.stores.users.get_user(username)
    except NotFound:
        return None
