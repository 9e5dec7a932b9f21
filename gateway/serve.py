"""Runs the API server for ``xueliang run`` / ``xueliang demo`` and greets the person who started it.

A gateway error raised while the app starts (a broken grading table, a store that cannot be opened,
a data directory another node holds) ends the process the way the CLI reports configuration errors
(the problems named, exit code 2; other gateway errors exit 1), not as a logged traceback:
``StartupGuard`` keeps it from uvicorn.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from rich.console import Console
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xueliang.gateway import logs
from xueliang.gateway.errors import GatewayError
from xueliang.gateway.node import Node
from xueliang.gateway.security import write_private
from xueliang.gateway.settings import Environment, Settings

log = logging.getLogger(__name__)


def greet(node: Node, created: tuple[str, str] | None) -> None:
    console = Console(soft_wrap=True)  # URLs and passwords stay on one line, whatever the terminal
    settings = node.settings
    url = settings.http.base_url
    console.print(f"\n[bold green]Xueliang Gateway 雪亮网关[/] is up at [bold]{url}[/]  (API docs: {url}/docs)")
    kept = settings.node.data_dir / "admin-credentials.txt"
    if created is not None:
        username, password = created
        console.print(
            f"  first admin created — username [bold]{username}[/], password [bold]{password}[/] (shown once)"
        )
        if settings.environment == Environment.DEVELOPMENT:
            write_private(kept, f"{username}\n{password}\n")  # never readable by others, not even briefly
            console.print(f"  (development mode: also kept in {kept})")
    if settings.demo.enabled:
        from xueliang.gateway.demo_scene import CREDENTIALS_FILE, OPERATOR

        console.print(
            f"  [bold]video wall 视频墙: {url}/wall/[/]  (saved wall 演示墙 Demo wall: the streaming cameras)"
        )
        if created is None:
            where = f"password in {kept}" if kept.is_file() else "password as first printed"
            console.print(f"  admin: [bold]{settings.security.bootstrap_admin}[/] ({where})")
        console.print(f"  operator: [bold]{OPERATOR}[/] (password in {settings.node.data_dir / CREDENTIALS_FILE})")
        if settings.demo.intake:
            console.print(
                f"  demo intake 受理接口: {settings.events.forwarder.intake_url} "
                f"(cases walk received → closed, {settings.demo.intake_step_s:g} s a step)"
            )
    console.print("  stop with Ctrl-C\n")


class StartupGuard:
    """Wraps the app: a ``GatewayError`` from its startup is kept in ``error`` (for ``serve`` to
    raise) instead of being logged by uvicorn with a traceback; everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: GatewayError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # its text is a traceback: sent on only if it is not ours
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except GatewayError as exc:
            if not held:
                raise
            self.error = exc
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        except BaseException:
            for message in held:
                await send(message)
            raise
        for message in held:
            await send(message)


def serve(settings: Settings) -> None:
    from xueliang.api.app import create_app
    from xueliang.api.wall.feed import MAX_MESSAGE_CHARS

    logs.configure(settings.logging.level, settings.logging.json_format)
    settings.node.data_dir.mkdir(parents=True, exist_ok=True)
    app = StartupGuard(create_app(settings, announce=greet))
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # a WebSocket frame is refused before it is buffered beyond what the feed's own limit
        # (MAX_MESSAGE_CHARS characters, up to 4 bytes each in UTF-8) could accept; uvicorn's default is 16 MiB
        ws_max_size=4 * MAX_MESSAGE_CHARS,
    )
    try:
        asyncio.run(uvicorn.Server(config).serve())
    except SystemExit:
        if app.error is not None:
            raise app.error from None  # the CLI names the problems and exits 2 (configuration) or 1
        raise
