"""Runs the API server for ``xueliang run`` / ``xueliang demo`` and greets the person who started it."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from rich.console import Console

from xueliang.gateway import logs
from xueliang.gateway.node import Node
from xueliang.gateway.settings import Environment, Settings

log = logging.getLogger(__name__)


def base_url(settings: Settings) -> str:
    host = settings.http.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return settings.http.public_url or f"http://{shown}:{settings.http.port}"


def greet(node: Node, created: tuple[str, str] | None) -> None:
    console = Console()
    url = base_url(node.settings)
    console.print(f"\n[bold green]Xueliang Gateway 雪亮网关[/] is up at [bold]{url}[/]  (API docs: {url}/docs)")
    if created is not None:
        username, password = created
        console.print(
            f"  first admin created — username [bold]{username}[/], password [bold]{password}[/] (shown once)"
        )
        if node.settings.environment == Environment.DEVELOPMENT:
            path = node.settings.node.data_dir / "admin-credentials.txt"
            path.write_text(f"{username}\n{password}\n")
            path.chmod(0o600)
            console.print(f"  (development mode: also kept in {path})")
    console.print("  stop with Ctrl-C\n")


def serve(settings: Settings) -> None:
    from xueliang.api.app import create_app

    logs.configure(settings.logging.level, settings.logging.json_format)
    settings.node.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, announce=greet)
    config = uvicorn.Config(app, host=settings.http.host, port=settings.http.port, log_config=None, access_log=False)
    asyncio.run(uvicorn.Server(config).serve())
