"""The demo's reference intake (综治中心受理接口参考实现), served in the gateway's own process.

``DemoIntake.prepare(node)`` runs while the node is assembled, before the case side is built: it
binds the intake's listening socket on 127.0.0.1 (``demo.intake_port``, 0 = a free port), so the
URL is known and owned before the forwarder is pointed at it (no port chosen now and bound later,
which another process could take in between), and makes sure the API key (role ``intake``) its
status callbacks carry exists. ``run()`` is the node service ``demo-intake``: the intake's app on
that socket until the node stops.

What it shares with the gateway: the HMAC secret of ``events.forwarder`` (cases in), the key id and
secret of ``events.callback`` (status callbacks out, to ``/api/intake/callback``), and the API key
kept in ``<data_dir>/demo-intake-key`` (mode 0600; created on first start, never printed or logged).
Its SQLite file is ``<data_dir>/demo-intake.sqlite3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from xueliang.events.intake.app import create_app
from xueliang.events.intake.settings import IntakeSettings
from xueliang.gateway.errors import AuthError, GatewayError, NotFound
from xueliang.gateway.models import ApiKey, Role
from xueliang.gateway.node import Node
from xueliang.gateway.security import api_key_id, api_key_matches, new_api_key, write_private
from xueliang.gateway.settings import Settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
KEY_FILE = "demo-intake-key"
KEY_NAME = "demo-intake"
DB_FILE = "demo-intake.sqlite3"
CALLBACK_PATH = "/api/intake/callback"


class DemoError(GatewayError):
    """A part of the demo cannot run (the intake's port, its store)."""


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside the gateway's process: signals stay with the gateway's own server
    (uvicorn would otherwise take SIGINT/SIGTERM over for as long as this one runs)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit as exc:  # uvicorn's answer to a failed app startup would end the whole process
            raise DemoError("the demo intake did not start (its store?); see the log above") from exc


def gateway_url(settings: Settings) -> str:
    """Where the gateway's API answers on this machine (for the intake's callbacks)."""
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):
        host = HOST
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http.port}"


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: a free port); ``DemoError`` if taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"the demo intake cannot listen on {HOST}:{port} ({exc.strerror}); set demo.intake_port to a free "
            "port, or 0 for any"
        ) from exc
    sock.setblocking(False)
    return sock


async def intake_api_key(node: Node) -> str:
    """The demo intake's API key (role intake): the one kept in ``<data_dir>/demo-intake-key`` when
    the user store still has it, else a new one (stored hashed; the file keeps the key, mode 0600)."""
    path = node.settings.node.data_dir / KEY_FILE
    kept = await asyncio.to_thread(_read_key, path)
    if kept:
        try:
            stored = await node.stores.users.get_api_key(api_key_id(kept))
        except (NotFound, AuthError):
            stored = None
        usable = stored is not None and not stored.disabled and stored.role is Role.INTAKE
        if usable and stored is not None and api_key_matches(kept, stored.key_hash):
            return kept
    key, key_id, key_hash = new_api_key()
    await asyncio.to_thread(_write_key, path, key)
    await node.stores.users.add_api_key(ApiKey(key_id=key_id, name=KEY_NAME, key_hash=key_hash, role=Role.INTAKE))
    await node.audit("system:demo", "api_keys.create", "ok", target=key_id, detail="demo intake callbacks")
    log.info("demo: API key %s (role intake) created for the demo intake's callbacks", key_id)
    return key


def _read_key(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise DemoError(f"cannot read the demo intake's API key {path}: {exc.strerror}; delete the file") from exc


def _write_key(path: Path, key: str) -> None:
    try:
        write_private(path, key + "\n")
    except OSError as exc:
        raise DemoError(f"cannot keep the demo intake's API key in {path}: {exc.strerror}") from exc


class DemoIntake:
    """The reference intake on a socket bound at assembly; ``run`` serves it until cancelled."""

    def __init__(self, settings: IntakeSettings, sock: socket.socket) -> None:
        self.settings = settings
        self.port = int(sock.getsockname()[1])
        self._sock: socket.socket | None = sock
        self.server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @classmethod
    async def prepare(cls, node: Node) -> DemoIntake:
        """Bind the port and build the intake's settings from the node's (see the module doc)."""
        settings = node.settings
        events = settings.events
        api_key = await intake_api_key(node)
        intake = IntakeSettings(
            db=settings.node.data_dir / DB_FILE,
            key_id=events.forwarder.key_id,
            secret=events.forwarder.secret,
            callback_url=gateway_url(settings) + CALLBACK_PATH,
            callback_key_id=events.callback.key_id,
            callback_secret=events.callback.secret,
            callback_api_key=SecretStr(api_key),
            step_s=settings.demo.intake_step_s,
        )
        return cls(intake, bind(settings.demo.intake_port))

    def with_forwarder(self, settings: Settings) -> Settings:
        """``settings`` with ``events.forwarder.intake_url`` pointing at this intake."""
        events = settings.events
        forwarder = events.forwarder.model_copy(update={"intake_url": self.url})
        return settings.model_copy(update={"events": events.model_copy(update={"forwarder": forwarder})})

    async def run(self) -> None:
        """The node service ``demo-intake``. A restart after a failure binds the same port again."""
        sock, self._sock = self._sock, None
        if sock is None:
            sock = bind(self.port)
        config = uvicorn.Config(create_app(self.settings), log_config=None, access_log=False, lifespan="on")
        server = _EmbeddedServer(config)
        self.server = server
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="demo-intake-server")
        log.info("demo: reference intake at %s (status step %.1f s)", self.url, self.settings.step_s)
        try:
            await asyncio.shield(serving)
        finally:
            if not serving.done():  # the node stops: let the intake finish its lifespan (store, progress)
                server.should_exit = True
                await serving
            sock.close()
